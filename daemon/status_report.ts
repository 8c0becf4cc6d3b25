import { pid_alive } from "../lib/pipeline_lock.js";
import { read_daemon_status, read_run_history, type DaemonStatus, type RunRecord } from "./run_history.js";

function duration(run: RunRecord): string {
  if (!run.ended_at) return "";
  const ms = Date.parse(run.ended_at) - Date.parse(run.started_at);
  return ms < 10_000 ? `${ms} ms` : `${Math.round(ms / 1000)} s`;
}

/** What `materia status` prints: the daemon's state, then the newest `runs_max` runs. */
export function format_status_report(status: DaemonStatus | undefined, alive: boolean, runs: RunRecord[]): string {
  const lines: string[] = [];
  if (!status) lines.push("daemon: never ran here (no status file)");
  else if (!alive) lines.push(`daemon: not running (pid ${status.pid} gone; last state ${status.state} at ${status.updated_at}, commit ${status.commit})`);
  else {
    const job = status.current_job ? ` ${status.current_job}` : "";
    lines.push(`daemon: ${status.state}${job} (pid ${status.pid}, commit ${status.commit})`);
    if (status.next_run_at) lines.push(`next run: ${status.next_run_at}`);
    if (status.last_error) lines.push(`last error: ${status.last_error}`);
    lines.push(`web: ${status.web_url ?? "not listening"}`);
  }
  lines.push(runs.length === 0 ? "runs: none recorded" : "runs (newest first):");
  for (const run of runs) {
    lines.push(`  ${run.started_at}  ${run.job.padEnd(15)} ${run.outcome.padEnd(9)} ${duration(run).padStart(8)}  ${run.message}`);
  }
  return lines.join("\n");
}

export function status_report(state_dir: string, runs_max: number): string {
  const status = read_daemon_status(state_dir);
  return format_status_report(status, status !== undefined && pid_alive(status.pid), read_run_history(state_dir).slice(0, runs_max));
}
