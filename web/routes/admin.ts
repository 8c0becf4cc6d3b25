import express, { type Express } from "express";
import type { Config } from "../../config/schema.js";
import type { RunRecord } from "../../lib/contract.js";
import { read_daemon_status, read_run_history, run_duration_ms } from "../../lib/run_history.js";
import { running_commit } from "../../lib/version.js";
import { basic_auth } from "../admin_guard.js";
import type { Catalog } from "../catalog.js";
import type { Csrf } from "../csrf.js";
import { LoginLimiter } from "../login_limiter.js";
import { HttpError, not_found } from "../errors.js";
import type { ResponseCacheStats } from "../response_cache.js";
import type { ServingReader } from "../serving.js";

/** How many runs the status page lists; the history file itself holds RUN_HISTORY_ENTRIES_MAX. */
const runs_shown_max = 50;

/** Asks the supervising daemon for a pipeline cycle; false when no daemon is listening. */
export type RequestRun = () => boolean;

/** Off (404) without ADMIN_PASSWORD. */
export function mount_admin(app: Express, reader: ServingReader<Catalog>, config: Config, csrf: Csrf,
  request_run: RequestRun | undefined, page_cache: () => ResponseCacheStats): void {
  if (config.admin_password === "") return;
  const limiter = new LoginLimiter({ failures_max: config.web_admin_login_failures_max,
    window_ms: config.web_admin_login_window_s * 1000, clients_max: config.web_admin_login_clients_max });
  const form = express.urlencoded({ extended: false, limit: config.web_body_bytes_max, parameterLimit: 10 });
  app.use(["/admin", "/api/admin"], basic_auth(config.admin_password, limiter));

  const status = () => ({
    commit: running_commit(),
    daemon: read_daemon_status(config.materia_state_dir) ?? null,
    serving: reader.serving_file() ?? null,
    refused: reader.refused_file() ?? null,
    page_cache: page_cache(),
    supervised: request_run !== undefined,
    runs: read_run_history(config.materia_state_dir).slice(0, runs_shown_max)
      .map(({ output_tail: _tail, ...run }) => ({ ...run, duration_s: duration_s(run) })),
  });

  app.get("/admin", (req, res) => {
    res.set("Cache-Control", "no-store")
      .render("admin", { title: "Pipeline", ...status(), csrf_token: csrf.token(req, res), requested: req.query.requested === "1" });
  });
  app.get("/api/admin", (_req, res) => {
    res.set("Cache-Control", "no-store").json(status());
  });
  app.get("/admin/runs/:run_id", (req, res) => {
    const run = read_run_history(config.materia_state_dir).find((record) => record.run_id === req.params.run_id);
    if (!run) throw not_found(`no run ${req.params.run_id.slice(0, 80)} in the run history`);
    res.set("Cache-Control", "no-store").render("run", { title: `Run ${run.run_id}`, run, duration_s: duration_s(run) });
  });
  app.post("/admin/run-now", form, (req, res) => {
    csrf.check(req);
    if (!request_run?.()) throw new HttpError(503, "no daemon is supervising this web process: run `materia pipeline run all` instead");
    res.redirect(303, "/admin?requested=1");
  });
}

/** Seconds, to a tenth. */
function duration_s(run: Pick<RunRecord, "started_at" | "ended_at">): number {
  return Math.round(run_duration_ms(run, Date.now()) / 100) / 10;
}
