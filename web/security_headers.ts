import assert from "node:assert/strict";
import type { IncomingMessage, ServerResponse } from "node:http";
import helmet, { type HelmetOptions } from "helmet";

// The one header policy of every response. Express applies it as middleware; responses written
// without Express (the fast path for cached pages and assets) send the same lists from here, so
// the two can never disagree. The headers depend on one fact about a request: whether it came
// over TLS, as told by a trusted proxy (we never terminate TLS ourselves), which decides HSTS.

export interface HeaderPolicy {
  /** 0: no HSTS at all. */
  hsts_max_age_s: number;
  hsts_include_subdomains: boolean;
}

/** Express's compiled "trust proxy" setting: may the peer at `address`, `hop` proxies away, be believed? */
export type TrustProxy = (address: string, hop: number) => boolean;

/** helmet's options for every response; only HSTS differs between the two variants. */
function helmet_options(hsts: HeaderPolicy | undefined): HelmetOptions {
  return {
    contentSecurityPolicy: {
      useDefaults: false,
      directives: {
        defaultSrc: ["'self'"],
        scriptSrc: ["'self'"],
        styleSrc: ["'self'"],
        imgSrc: ["'self'", "data:"],
        connectSrc: ["'self'"],
        fontSrc: ["'self'"],
        objectSrc: ["'none'"],
        baseUri: ["'none'"],
        formAction: ["'self'"],
        // No page may be framed anywhere; X-Frame-Options says the same to browsers without CSP 2.
        frameAncestors: ["'none'"],
      },
    },
    xFrameOptions: { action: "deny" },
    // Nothing to other sites; our own forms keep a real Origin (under no-referrer, Chromium sends
    // "Origin: null" with a same-origin form post, which the cross-site check must refuse).
    referrerPolicy: { policy: "same-origin" },
    strictTransportSecurity: hsts && hsts.hsts_max_age_s > 0
      ? { maxAge: hsts.hsts_max_age_s, includeSubDomains: hsts.hsts_include_subdomains }
      : false,
  };
}

/**
 * What helmet sets on a response, recorded once as a flat [name, value, …] list for writeHead:
 * helmet's headers depend on its options only, never on the request (asserted).
 */
function recorded(options: HelmetOptions): readonly string[] {
  const headers = new Map<string, string>();
  const recorder = {
    setHeader(name: string, value: unknown) {
      headers.set(name, String(value));
      return recorder;
    },
    removeHeader(name: string) {
      headers.delete(name);
    },
  };
  let finished = false;
  helmet(options)({} as IncomingMessage, recorder as unknown as ServerResponse, (error?: unknown) => {
    if (error) throw error;
    finished = true;
  });
  assert.ok(finished, "helmet runs synchronously and reads nothing of the request");
  return [...headers].flat();
}

export class SecurityHeaders {
  private readonly plain: readonly string[];
  private readonly tls: readonly string[];

  constructor(policy: HeaderPolicy, private readonly trust: TrustProxy) {
    // Only over TLS: a browser ignores HSTS over plain HTTP, and whether TLS was used is the proxy's word.
    this.plain = recorded(helmet_options(undefined));
    this.tls = recorded(helmet_options(policy));
  }

  /** The headers of an answer, as a flat [name, value, …] list for writeHead. */
  for_request(req: IncomingMessage): readonly string[] {
    return this.over_tls(req) ? this.tls : this.plain;
  }

  /** Every list for_request can return (so a cache can prepare one variant per list). */
  variants(): { plain: readonly string[]; tls: readonly string[] } {
    return { plain: this.plain, tls: this.tls };
  }

  /** As Express's req.secure: the socket's own TLS, or X-Forwarded-Proto's first value from a trusted proxy. */
  over_tls(req: IncomingMessage): boolean {
    if ((req.socket as { encrypted?: boolean }).encrypted === true) return true;
    if (!this.trust(req.socket.remoteAddress ?? "", 0)) return false;
    const forwarded = req.headers["x-forwarded-proto"];
    return typeof forwarded === "string" && forwarded.split(",")[0]!.trim() === "https";
  }
}
