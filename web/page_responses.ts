import type { IncomingMessage, ServerResponse } from "node:http";
import type { Request, Response } from "express";
import type { Catalog } from "./catalog.js";
import { cache_key, express_page_input, render_page, representation_of, serving_version, type Page, type PageInput,
  type RenderHtml, type RepresentationKind } from "./pages.js";
import { matched_etag, prepare_response, send_not_modified, send_prepared, strong_etag,
  type PreparedResponse } from "./prepared_response.js";
import { ResponseCache, type ResponseCacheStats } from "./response_cache.js";
import type { SecurityHeaders } from "./security_headers.js";
import type { ServingFile, ServingReader } from "./serving.js";
import { cookie_matters } from "./settings.js";

// Every page response is a function of its cache key (serving file version, page,
// representation, params), so it is rendered once per key and release and then sent from memory:
// by Express on a miss, by the fast path in front of Express on a hit. A conditional request
// whose ETag (derived from the key) still holds gets its 304 without a query, even after the
// entry was evicted or the process restarted.

export interface PageResponsesOptions {
  reader: ServingReader<Catalog>;
  cache_bytes_max: number;
  /** For data pages: what browsers and a CDN in front may do with them. */
  cache_control: string;
  security_headers: SecurityHeaders;
  render_html: RenderHtml;
  /** The stale-data banner now (web/freshness.ts): part of every key, so a page never shows the wrong one. */
  freshness_banner: () => string | null;
}

type Answer = { held: string; shared: readonly string[] } | { response: PreparedResponse; shared: readonly string[] };

export class PageResponses {
  private readonly cache: ResponseCache<PreparedResponse>;
  /** Headers a data page's 200 and 304 share, by whether it came over TLS and whether the settings cookie can change it. */
  private readonly shared_headers: Record<"plain" | "tls", { cookie: readonly string[]; no_cookie: readonly string[] }>;
  private version_memo: { file: ServingFile; meta: Catalog; version: string } | undefined;

  constructor(private readonly options: PageResponsesOptions) {
    this.cache = new ResponseCache(options.cache_bytes_max);
    const variants = options.security_headers.variants();
    const shared = (security: readonly string[], vary: string) => [...security, "Cache-Control", options.cache_control, "Vary", vary];
    const both = (security: readonly string[]) =>
      ({ cookie: shared(security, "Accept-Encoding, Cookie"), no_cookie: shared(security, "Accept-Encoding") });
    this.shared_headers = { plain: both(variants.plain), tls: both(variants.tls) };
    options.reader.on_serve((file, meta) => this.cache.reset(this.version_of(file, meta)));
  }

  stats(): ResponseCacheStats {
    return this.cache.stats();
  }

  /** Express's route for a page: from the cache, or computed once for every request that waits for it. */
  async respond(req: Request, res: Response, page: Page, kind: RepresentationKind): Promise<void> {
    const answer = await this.options.reader.with_snapshot(async (snapshot): Promise<Answer> => {
      const input = express_page_input(req);
      const representation = representation_of(kind, input);
      const params = page.parse(input, snapshot.meta);
      const version = this.version_of(snapshot.file, snapshot.meta);
      const banner = this.options.freshness_banner();
      const key = cache_key(version, page.name, representation, params, banner);
      const shared = this.shared(req, input);
      const etag = strong_etag(key);
      const held = matched_etag(req.headers["if-none-match"], etag);
      if (held !== undefined) return { held, shared };
      const response = await this.cache.get_or_compute(version, key, async () =>
        prepare_response(await render_page(page, representation, params, snapshot, this.options.render_html, banner), etag));
      return { response, shared };
    });
    if ("held" in answer) send_not_modified(res, answer.shared, answer.held);
    else send_prepared(req, res, answer.shared, answer.response);
  }

  /**
   * The fast path's try: answers (200 or 304) when the response is known without a query and
   * returns true; returns false for everything else (a miss, bad input, a swap in progress), which
   * Express then handles as usual, errors included.
   */
  answer_from_cache(req: IncomingMessage, res: ServerResponse, page: Page, kind: RepresentationKind, input: PageInput): boolean {
    const served = this.options.reader.current_version();
    if (served === undefined) return false;
    let key: string;
    let shared: readonly string[];
    try {
      key = cache_key(this.version_of(served.file, served.meta), page.name, representation_of(kind, input), page.parse(input, served.meta),
        this.options.freshness_banner());
      shared = this.shared(req, input);
    } catch {
      return false; // bad input: Express answers with the error
    }
    const if_none_match = req.headers["if-none-match"];
    if (if_none_match !== undefined) {
      const held = matched_etag(if_none_match, strong_etag(key));
      if (held !== undefined) {
        send_not_modified(res, shared, held);
        return true;
      }
    }
    const response = this.cache.get(key);
    if (response === undefined) return false;
    send_prepared(req, res, shared, response);
    return true;
  }

  private shared(req: IncomingMessage, input: PageInput): readonly string[] {
    const variant = this.shared_headers[this.options.security_headers.over_tls(req) ? "tls" : "plain"];
    return cookie_matters(input) ? variant.cookie : variant.no_cookie;
  }

  /** serving_version of the file, computed once per file rather than per request. */
  private version_of(file: ServingFile, meta: Catalog): string {
    if (this.version_memo?.file !== file || this.version_memo.meta !== meta) {
      this.version_memo = { file, meta, version: serving_version(meta) };
    }
    return this.version_memo.version;
  }
}
