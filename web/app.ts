import path from "node:path";
import express, { type NextFunction, type Request, type Response } from "express";
import helmet from "helmet";
import type { Config } from "../config/schema.js";
import { log } from "../lib/log.js";
import { repo_root } from "../lib/paths.js";
import type { Catalog } from "./catalog.js";
import { HttpError } from "./errors.js";
import { format_cell, mount_page } from "./pages.js";
import { mount_admin, type RequestRun } from "./routes/admin.js";
import { changes_page } from "./routes/changes.js";
import { mount_country_picker, country_page } from "./routes/country.js";
import { mount_health } from "./routes/health.js";
import { overview_page } from "./routes/overview.js";
import { rankings_page } from "./routes/rankings.js";
import { mount_settings } from "./routes/settings.js";
import type { ServingReader } from "./serving.js";
import { SettingsCookieError, settings_cookie_name } from "./settings.js";

// The wiring: security headers, bounds and the access log first, then the pages, then one error
// handler that turns every failure into a status and a one-line message (never a stack trace).

const views_dir = path.join(repo_root, "web/views");
const public_dir = path.join(repo_root, "web/public");
/** Chart.js from node_modules, served by the app itself: the box may have no internet. */
const chartjs_dir = path.join(repo_root, "node_modules/chart.js/dist");
const logged_url_chars_max = 300;

export function create_app(config: Config, reader: ServingReader<Catalog>, request_run: RequestRun | undefined) {
  const app = express();
  app.disable("x-powered-by");
  app.set("views", views_dir);
  app.set("view engine", "ejs");
  app.set("query parser", "simple");
  app.locals.format_cell = format_cell;

  app.use(access_log);
  app.use((req, _res, next) => {
    if (Buffer.byteLength(req.originalUrl) > config.web_url_bytes_max) {
      return next(new HttpError(414, `the address is longer than WEB_URL_BYTES_MAX=${config.web_url_bytes_max} bytes`));
    }
    next();
  });
  app.use(helmet({
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
        frameAncestors: ["'none'"],
      },
    },
  }));
  app.use("/static/vendor/chartjs", express.static(chartjs_dir, { index: false, maxAge: "1d" }));
  app.use("/static", express.static(public_dir, { index: false, maxAge: "1h" }));
  app.use((_req, res, next) => {
    // The data changes when a new serving file is swapped in: always revalidate (ETag).
    res.set("Cache-Control", "no-cache");
    // Freshness for pages without a snapshot of their own (errors, admin); pages pass their own.
    res.locals.catalog = reader.serving_meta();
    next();
  });

  mount_health(app, reader);
  for (const page of [overview_page, rankings_page, country_page, changes_page]) mount_page(app, reader, page);
  mount_country_picker(app, reader);
  mount_settings(app, reader, config);
  mount_admin(app, reader, config, request_run);

  app.use((_req, _res, next) => next(new HttpError(404, "no such page")));
  app.use(error_handler);
  return app;
}

function access_log(req: Request, res: Response, next: NextFunction): void {
  const started = process.hrtime.bigint();
  res.once("close", () => {
    const duration_ms = Number(process.hrtime.bigint() - started) / 1e6;
    const url = req.originalUrl.length > logged_url_chars_max ? req.originalUrl.slice(0, logged_url_chars_max) + "…" : req.originalUrl;
    const outcome = res.writableFinished ? String(res.statusCode) : `${res.statusCode} aborted`;
    log.info(`web: ${req.method} ${url} ${outcome} ${duration_ms.toFixed(1)} ms`);
  });
  next();
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
