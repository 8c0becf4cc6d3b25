import crypto from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import zlib from "node:zlib";
import Negotiator from "negotiator";
import { running_commit } from "../lib/version.js";

// A response computed once and sent many times: its body in every encoding we offer, compressed
// when it is made, and a strong ETag per encoding. Sending it is header lists and a write, with
// no per-request work that depends on its size.

export type Encoding = "br" | "gzip" | "identity";

/** Ours first when the client likes several equally: brotli is the smallest. */
const encodings_preferred: Encoding[] = ["br", "gzip", "identity"];
const etag_suffix: Record<Encoding, string> = { br: "-br", gzip: "-gz", identity: "" };
/**
 * Brotli 5: a 93 KB page takes ~3 ms and ends within 10 % of quality 11's size, which took ~165 ms
 * (measured on this box); bodies are compressed on a cache miss, so a reader waits for this.
 */
const brotli_quality = 5;
const gzip_level = 6;
/** Distinct Accept-Encoding values remembered with their choice; browsers send a handful. */
const negotiated_memo_entries_max = 64;
/** Map, headers and strings per entry, beyond its bodies: counted so the cache's bound holds. */
const entry_overhead_bytes = 1024;

export interface PreparedResponse {
  /** Bodies, ETags and headers, counted against the cache's bound. */
  size_bytes: number;
  /** The quoted ETag of each encoding's body. */
  etags: Record<Encoding, string>;
  bodies: Record<Encoding, Buffer>;
  /** Content-Type and, for downloads, Content-Disposition: a flat [name, value, …] list. */
  headers: readonly string[];
}

export interface ResponseBody {
  body: string | Buffer;
  content_type: string;
  content_disposition?: string;
}

/**
 * A strong validator for whatever `identity` names: the response is a function of it and of the
 * code that renders it, so the running commit is part of it (a self-update changes the HTML).
 */
export function strong_etag(identity: string): string {
  return `"${crypto.createHash("sha256").update(running_commit()).update("\n").update(identity).digest("base64url").slice(0, 32)}"`;
}

/** Compresses `response` both ways and derives each encoding's ETag from `etag` (a strong_etag). */
export function prepare_response(response: ResponseBody, etag: string): PreparedResponse {
  const identity = typeof response.body === "string" ? Buffer.from(response.body) : response.body;
  const gzip = zlib.gzipSync(identity, { level: gzip_level });
  const br = zlib.brotliCompressSync(identity, { params: {
    [zlib.constants.BROTLI_PARAM_QUALITY]: brotli_quality,
    [zlib.constants.BROTLI_PARAM_SIZE_HINT]: identity.length,
    // A window no larger than the body: the default (4 MB) is allocated and freed on every call,
    // which left the web's malloc heap tens of MB larger after a few hundred pages.
    [zlib.constants.BROTLI_PARAM_LGWIN]: Math.min(Math.max(Math.ceil(Math.log2(identity.length + 1)), 10), 24),
  } });
  const headers = ["Content-Type", response.content_type];
  if (response.content_disposition !== undefined) headers.push("Content-Disposition", response.content_disposition);
  const bare = etag.slice(1, -1);
  const etags = Object.fromEntries(encodings_preferred.map((encoding) => [encoding, `"${bare}${etag_suffix[encoding]}"`])) as Record<Encoding, string>;
  const bodies = in_one_block({ identity, gzip, br });
  const size_bytes = identity.length + gzip.length + br.length + entry_overhead_bytes;
  return { size_bytes, etags, bodies, headers };
}

/**
 * The bodies copied side by side into one allocation of exactly their size. zlib's sync output
 * below its 16 KB chunk is a slice that keeps the whole chunk alive, and three allocations per
 * entry fragment the heap: either way the cache would hold more memory than it counts.
 */
function in_one_block(parts: Record<Encoding, Buffer>): Record<Encoding, Buffer> {
  const block = Buffer.allocUnsafeSlow(parts.identity.length + parts.gzip.length + parts.br.length);
  let offset = 0;
  const view = (part: Buffer) => {
    part.copy(block, offset);
    offset += part.length;
    return block.subarray(offset - part.length, offset);
  };
  return { identity: view(parts.identity), gzip: view(parts.gzip), br: view(parts.br) };
}

const negotiated = new Map<string, Encoding>();

/** The encoding to send for an Accept-Encoding header; identity when nothing offered is acceptable. */
export function negotiate_encoding(accept_encoding: string | undefined): Encoding {
  if (accept_encoding === undefined || accept_encoding === "") return "identity";
  const known = negotiated.get(accept_encoding);
  if (known !== undefined) return known;
  const chosen = (new Negotiator({ headers: { "accept-encoding": accept_encoding } })
    .encoding(encodings_preferred, { preferred: encodings_preferred }) as Encoding | undefined) ?? "identity";
  if (negotiated.size >= negotiated_memo_entries_max) negotiated.clear();
  negotiated.set(accept_encoding, chosen);
  return chosen;
}

/**
 * The tag of `etag`'s family (any encoding's variant) that If-None-Match names, if any. Weak
 * comparison, as RFC 9110 asks for If-None-Match; `*` matches.
 */
export function matched_etag(if_none_match: string | undefined, etag: string): string | undefined {
  if (if_none_match === undefined) return undefined;
  const bare = etag.slice(1, -1);
  const family = Object.values(etag_suffix).map((suffix) => `"${bare}${suffix}"`);
  for (const raw of if_none_match.split(",")) {
    const tag = raw.trim().replace(/^W\//, "");
    if (tag === "*") return etag;
    if (family.includes(tag)) return tag;
  }
  return undefined;
}

/**
 * 304 with the validator the client holds. `shared` are the headers a 200 of the same resource
 * carries apart from its body's (security policy, Cache-Control, Vary): a flat list.
 */
export function send_not_modified(res: ServerResponse, shared: readonly string[], etag: string): void {
  res.writeHead(304, [...shared, "ETag", etag]);
  res.end();
}

/** Sends `response` in the encoding the client prefers, or 304 when it holds the current one. */
export function send_prepared(req: IncomingMessage, res: ServerResponse, shared: readonly string[], response: PreparedResponse): void {
  const held = matched_etag(req.headers["if-none-match"], response.etags.identity);
  if (held !== undefined) return send_not_modified(res, shared, held);
  const encoding = negotiate_encoding(req.headers["accept-encoding"]);
  const body = response.bodies[encoding];
  const headers = [...shared, ...response.headers, "ETag", response.etags[encoding], "Content-Length", String(body.length)];
  if (encoding !== "identity") headers.push("Content-Encoding", encoding);
  res.writeHead(200, headers);
  res.end(body);
}
