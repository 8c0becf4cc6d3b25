import type { IncomingMessage } from "node:http";

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

const content_security_policy = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "font-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'self'",
  // No page may be framed anywhere; X-Frame-Options says the same to browsers without CSP 2.
  "frame-ancestors 'none'",
].join("; ");

const always = [
  "Content-Security-Policy", content_security_policy,
  "X-Frame-Options", "DENY",
  "X-Content-Type-Options", "nosniff",
  // Nothing to other sites; our own forms keep a real Origin (under no-referrer, Chromium sends
  // "Origin: null" with a same-origin form post, which the cross-site check must refuse).
  "Referrer-Policy", "same-origin",
  "Cross-Origin-Opener-Policy", "same-origin",
  "Cross-Origin-Resource-Policy", "same-origin",
  "Origin-Agent-Cluster", "?1",
  "X-DNS-Prefetch-Control", "off",
  "X-Permitted-Cross-Domain-Policies", "none",
  // The old XSS auditor did more harm than good; "0" turns it off where it still exists.
  "X-XSS-Protection", "0",
] as const;

export class SecurityHeaders {
  private readonly plain: readonly string[] = always;
  private readonly tls: readonly string[];

  constructor(policy: HeaderPolicy, private readonly trust: TrustProxy) {
    // Only over TLS: a browser ignores HSTS over plain HTTP, and whether TLS was used is the proxy's word.
    const hsts = `max-age=${policy.hsts_max_age_s}${policy.hsts_include_subdomains ? "; includeSubDomains" : ""}`;
    this.tls = policy.hsts_max_age_s === 0 ? always : [...always, "Strict-Transport-Security", hsts];
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
