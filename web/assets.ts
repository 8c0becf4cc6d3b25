import assert from "node:assert/strict";
import crypto from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { repo_root } from "../lib/paths.js";
import type { IncomingMessage } from "node:http";
import { prepare_response, type PreparedResponse } from "./prepared_response.js";
import type { SecurityHeaders } from "./security_headers.js";

// Static files under content-hashed names (/static/style.3f9c0a1b2c4d.css): a changed file is a
// new address, so browsers and CDNs may keep each one for a year without asking again. Read,
// hashed and compressed once at start; pages link them through asset("style.css").

export const public_dir = path.join(repo_root, "web/public");
/** Chart.js from node_modules, served by the app itself: the box may have no internet. */
export const chartjs_dir = path.join(repo_root, "node_modules/chart.js/dist");

/** The name templates use (also its unhashed address under /static/) → the file. */
const asset_files: Readonly<Record<string, string>> = {
  "style.css": path.join(public_dir, "style.css"),
  "charts.js": path.join(public_dir, "charts.js"),
  "vendor/chartjs/chart.umd.min.js": path.join(chartjs_dir, "chart.umd.min.js"),
};
const content_types: Readonly<Record<string, string>> = {
  ".css": "text/css; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
};
const immutable_cache_control = "public, max-age=31536000, immutable";
/** 12 hex digits: a collision between two versions of one file is not a practical concern. */
const hash_hex_chars = 12;

export class Assets {
  private readonly urls = new Map<string, string>();
  private readonly responses = new Map<string, PreparedResponse>();
  /** Headers every asset answer (200 or 304) carries, over plain HTTP and over TLS. */
  private readonly headers: { plain: readonly string[]; tls: readonly string[] };

  constructor(private readonly security: SecurityHeaders) {
    const shared = (security_headers: readonly string[]) =>
      [...security_headers, "Cache-Control", immutable_cache_control, "Vary", "Accept-Encoding"];
    const { plain, tls } = security.variants();
    this.headers = { plain: shared(plain), tls: shared(tls) };
    for (const [name, file] of Object.entries(asset_files)) {
      const content_type = content_types[path.extname(name)];
      assert.ok(content_type, `no content type for the asset ${name}`);
      const body = fs.readFileSync(file);
      const digest = crypto.createHash("sha256").update(body).digest();
      const extension = path.extname(name);
      const url = `/static/${name.slice(0, -extension.length)}.${digest.toString("hex").slice(0, hash_hex_chars)}${extension}`;
      this.urls.set(name, url);
      this.responses.set(url, prepare_response({ body, content_type }, `"${digest.toString("base64url")}"`));
    }
  }

  /** The headers every answer to `req` for an asset carries (200 or 304). */
  shared_headers(req: IncomingMessage): readonly string[] {
    return this.security.over_tls(req) ? this.headers.tls : this.headers.plain;
  }

  /** The hashed address of an asset, for templates; an unknown name is a bug in a template. */
  url(name: string): string {
    const url = this.urls.get(name);
    assert.ok(url !== undefined, `no asset named ${name}`);
    return url;
  }

  /** The asset at a hashed address, if `pathname` is one. */
  find(pathname: string): PreparedResponse | undefined {
    return this.responses.get(pathname);
  }
}
