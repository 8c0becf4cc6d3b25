import type { Config } from "../config/schema.js";
import { format_age, judge_freshness, read_last_success, serving_published_at, type FreshnessVerdict } from "../lib/freshness.js";
import { pid_alive } from "../lib/pipeline_lock.js";
import { exit_codes, type DaemonStatus, type RunRecord } from "../lib/contract.js";
import { read_daemon_status, read_run_history, run_duration_ms } from "../lib/run_history.js";

function duration(run: RunRecord): string {
  if (!run.ended_at) return "";
  const ms = run_duration_ms(run, Date.now());
  return ms < 10_000 ? `${ms} ms` : `${Math.round(ms / 1000)} s`;
}

const when = (at: string | null, age_s: number | null, none: string) => (at === null ? none : `${at} (${format_age(age_s!)} ago)`);

/** What `materia status` prints: the daemon's state, the data's freshness, then the newest `runs_max` runs. */
export function format_status_report(status: DaemonStatus | undefined, alive: boolean, freshness: FreshnessVerdict, runs: RunRecord[]): string {
  const lines: string[] = [];
  if (!status) lines.push("daemon: never ran here (no status file)");
  else if (status.state === "stopped") {
    const how = status.exit_code === exit_codes.ok ? "stopped cleanly" : `stopped with exit code ${status.exit_code}`;
    lines.push(`daemon: ${how} at ${status.stopped_at} (pid ${status.pid}, commit ${status.commit})`);
    if (status.last_error) lines.push(`last error: ${status.last_error}`);
  } else if (!alive) {
    lines.push(`daemon: DIED (pid ${status.pid} is gone without a clean stop; last state ${status.state} at ${status.updated_at}, commit ${status.commit})`);
  } else {
    const job = status.current_job ? ` ${status.current_job}` : "";
    lines.push(`daemon: ${status.state}${job} (pid ${status.pid}, commit ${status.commit})`);
    if (status.next_run_at) lines.push(`next run: ${status.next_run_at}`);
    if (status.last_error) lines.push(`last error: ${status.last_error}`);
    lines.push(`web: ${status.web_url ?? "not listening"}`);
  }
  lines.push(`last successful cycle: ${when(freshness.last_success_at, freshness.last_success_age_s, "none recorded")}`);
  lines.push(`last publish: ${when(freshness.last_publish_at, freshness.last_publish_age_s, "none (no serving file)")}`);
  lines.push(freshness.stale_reason === null ? "data: fresh" : `data: STALE: ${freshness.stale_reason}`);
  lines.push(runs.length === 0 ? "runs: none recorded" : "runs (newest first):");
  for (const run of runs) {
    lines.push(`  ${run.started_at}  ${run.job.padEnd(15)} ${run.outcome.padEnd(9)} ${duration(run).padStart(8)}  ${run.message}`);
  }
  return lines.join("\n");
}

export function status_report(config: Config, runs_max: number): string {
  const state_dir = config.materia_state_dir;
  const status = read_daemon_status(state_dir);
  const freshness = judge_freshness({ last_success_at: read_last_success(state_dir), last_publish_at: serving_published_at(config.serving_duckdb_path) },
    Date.now(), config.stale_after_s);
  return format_status_report(status, status !== undefined && status.state !== "stopped" && pid_alive(status.pid), freshness, read_run_history(state_dir).slice(0, runs_max));
}
