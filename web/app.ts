import type { IncomingMessage, ServerResponse } from "node:http";
import path from "node:path";
import express, { type NextFunction, type Request, type Response } from "express";
import type { Config } from "../config/schema.js";
import { log } from "../lib/log.js";
import { repo_root } from "../lib/paths.js";
import type { AccessLog } from "./access_log.js";
import { Assets, chartjs_dir, public_dir } from "./assets.js";
import type { Catalog } from "./catalog.js";
import { make_csrf, refuse_cross_site } from "./csrf.js";
import { HttpError } from "./errors.js";
import { make_fast_path } from "./fast_path.js";
import type { FollowView } from "./follow.js";
import { FreshnessMonitor } from "./freshness.js";
import { PageResponses } from "./page_responses.js";
import { format_cell, mount_page, type RenderHtml } from "./pages.js";
import { mount_admin, type RequestRun } from "./routes/admin.js";
import { changes_page } from "./routes/changes.js";
import { mount_country_picker, country_page } from "./routes/country.js";
import { mount_health } from "./routes/health.js";
import { overview_page } from "./routes/overview.js";
import { rankings_page } from "./routes/rankings.js";
import { mount_settings } from "./routes/settings.js";
import { SecurityHeaders, type TrustProxy } from "./security_headers.js";
import type { ServingReader } from "./serving.js";
import { SettingsCookieError, settings_cookie_name } from "./settings.js";

// The wiring: the access log, then the fast path for cached pages and hashed assets; everything
// else goes to Express: security headers and bounds first, then the pages, then one error
// handler that turns every failure into a status and a one-line message (never a stack trace).

const views_dir = path.join(repo_root, "web/views");

/** The web's request listener, for http.createServer. */
export function create_app(config: Config, reader: ServingReader<Catalog>, request_run: RequestRun | undefined, access_log: AccessLog,
  follow_view?: () => FollowView) {
  const app = express();
  app.disable("x-powered-by");
  app.set("views", views_dir);
  app.set("view engine", "ejs");
  app.set("query parser", "simple");
  // req.ip, req.secure and req.host believe X-Forwarded-* only from these proxies (off by default).
  app.set("trust proxy", config.web_trust_proxy);
  const security = new SecurityHeaders({ hsts_max_age_s: config.web_hsts_max_age_s, hsts_include_subdomains: config.web_hsts_include_subdomains },
    app.get("trust proxy fn") as TrustProxy);
  const assets = new Assets(security);
  app.locals.format_cell = format_cell;
  app.locals.asset = (name: string) => assets.url(name);
  const freshness = new FreshnessMonitor(config.materia_state_dir, config.stale_after_s, () => reader.serving_meta()?.exported_at ?? null);
  const render_html: RenderHtml = (view, locals) => new Promise((resolve, reject) =>
    app.render(view, locals, (error, html) => (error ? reject(error as Error) : resolve(html))));
  const responses = new PageResponses({
    reader,
    cache_bytes_max: config.web_cache_bytes_max,
    cache_control: `public, max-age=0, s-maxage=${config.web_cdn_max_age_s}, stale-while-revalidate=${config.web_cdn_stale_while_revalidate_s}`,
    security_headers: security,
    render_html,
    freshness_banner: () => freshness.banner(),
  });
  const pages = [overview_page, rankings_page, country_page, changes_page];
  const fast_path = make_fast_path({ pages, responses, assets, url_bytes_max: config.web_url_bytes_max });

  app.use((req, _res, next) => {
    if (Buffer.byteLength(req.originalUrl) > config.web_url_bytes_max) {
      return next(new HttpError(414, `the address is longer than WEB_URL_BYTES_MAX=${config.web_url_bytes_max} bytes`));
    }
    next();
  });
  app.use((req, res, next) => {
    const headers = security.for_request(req);
    for (let i = 0; i < headers.length; i += 2) res.setHeader(headers[i]!, headers[i + 1]!);
    next();
  });
  // The unhashed addresses stay for pages rendered by an older version, and for Chart.js's source map.
  app.use("/static/vendor/chartjs", express.static(chartjs_dir, { index: false, maxAge: "1d" }));
  app.use("/static", express.static(public_dir, { index: false, maxAge: "1h" }));
  app.use((_req, res, next) => {
    // The data changes when a new serving file is swapped in: always revalidate (ETag).
    res.set("Cache-Control", "no-cache");
    // The settings cookie changes the settings form and what a bad cookie's error says: caches must key on it.
    res.vary("Cookie");
    // Freshness for pages without a snapshot of their own (errors, admin); pages pass their own.
    res.locals.catalog = reader.serving_meta();
    res.locals.freshness_banner = freshness.banner();
    next();
  });

  app.use(refuse_cross_site);
  const csrf = make_csrf();
  mount_health(app, reader, freshness, follow_view);
  for (const page of pages) mount_page(app, responses, page);
  mount_country_picker(app, reader);
  mount_settings(app, reader, config, csrf);
  mount_admin(app, reader, config, csrf, request_run, () => responses.stats());

  app.use((_req, _res, next) => next(new HttpError(404, "no such page")));
  app.use(error_handler);
  return (req: IncomingMessage, res: ServerResponse) => {
    access_log.observe(req, res);
    if (!fast_path(req, res)) app(req, res);
  };
}

function error_handler(error: unknown, req: Request, res: Response, _next: NextFunction): void {
  const { status, message } = client_view(error);
  if (status >= 500 && !(error instanceof HttpError)) log.error(error instanceof Error ? error : new Error(String(error)));
  if (res.headersSent) {
    res.destroy();
    return;
  }
  if (error instanceof SettingsCookieError) res.clearCookie(settings_cookie_name, { path: "/" });
  res.status(status).set("Cache-Control", "no-store");
  if (req.path.startsWith("/api/") || req.path === "/healthz") {
    res.json({ error: message });
  } else if (req.accepts(["html", "text"]) === "html") {
    res.render("error", { title: `Error ${status}`, status, message }, (render_error, html) => {
      if (render_error) res.type("text/plain").send(message);
      else res.send(html);
    });
  } else {
    res.type("text/plain").send(message + "\n");
  }
}

/** What a client may learn from an error: our own messages and body-parser's 4xx, nothing else. */
function client_view(error: unknown): { status: number; message: string } {
  if (error instanceof HttpError) return { status: error.status, message: error.message };
  // The router's own decoding of path parameters (e.g. /country/%E0%A4%A).
  if (error instanceof URIError) return { status: 400, message: "the address holds malformed percent-encoding" };
  const candidate = error as { status?: unknown; expose?: unknown; message?: unknown };
  if (typeof candidate?.status === "number" && candidate.status >= 400 && candidate.status < 500 && candidate.expose === true) {
    return { status: candidate.status, message: String(candidate.message) };
  }
  return { status: 500, message: "internal error: the details are in the server log" };
}
