import type { IncomingMessage, ServerResponse } from "node:http";
import { match, type MatchFunction } from "path-to-regexp";
import type { Assets } from "./assets.js";
import { search_param } from "./inputs.js";
import type { PageResponses } from "./page_responses.js";
import type { Page, PageInput, RepresentationKind } from "./pages.js";
import { send_prepared } from "./prepared_response.js";
import { read_settings } from "./settings.js";

// In front of Express: a request for a hashed asset, or for a page whose response is cached, is
// answered here with the same headers Express would send, without Express's router and
// middleware (which cost more than half the time of answering an 18 KB JSON from memory).
// Anything else returns false and goes to Express unchanged: misses, errors, admin, forms.

/** node:querystring, which parses Express's query, keeps the first 1000 parameters; past that the two could disagree. */
const query_params_max = 1000;

interface PageRoute {
  matches: MatchFunction<Record<string, string>>;
  page: Page;
  kind: RepresentationKind;
}

export type FastPath = (req: IncomingMessage, res: ServerResponse) => boolean;

export function make_fast_path(options: { pages: readonly Page[]; responses: PageResponses; assets: Assets; url_bytes_max: number }): FastPath {
  // Matched as Express's router matches them: case-insensitive, an optional trailing slash, params
  // percent-decoded (a malformed one throws, and Express answers the 400).
  const route = (path: string, page: Page, kind: RepresentationKind): PageRoute =>
    ({ matches: match(path, { sensitive: false, end: true, trailing: true, decode: decodeURIComponent }), page, kind });
  // In the order app.ts mounts them: the CSV route before the JSON one.
  const routes = options.pages.flatMap((page) =>
    [route(page.html_path, page, "html"), route(page.csv_path, page, "csv"), route(page.api_path, page, "json")]);

  return (req, res) => {
    if (req.method !== "GET" && req.method !== "HEAD") return false;
    const url = req.url ?? "/";
    if (Buffer.byteLength(url) > options.url_bytes_max) return false;
    const query_at = url.indexOf("?");
    const pathname = query_at === -1 ? url : url.slice(0, query_at);
    const asset = options.assets.find(pathname);
    if (asset !== undefined) {
      send_prepared(req, res, options.assets.shared_headers(req), asset);
      return true;
    }
    for (const { matches, page, kind } of routes) {
      let matched;
      try {
        matched = matches(pathname);
      } catch {
        return false;
      }
      if (matched === false) continue;
      const search = new URLSearchParams(query_at === -1 ? "" : url.slice(query_at + 1));
      if (search.size > query_params_max) return false;
      let input: PageInput;
      try {
        input = { path_params: matched.params, query: (name) => search_param(search, name), settings: read_settings(req.headers.cookie) };
      } catch {
        return false; // a bad settings cookie: Express refuses it and clears it
      }
      return options.responses.answer_from_cache(req, res, page, kind, input);
    }
    return false;
  };
}
