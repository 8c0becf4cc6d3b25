import type { FreshnessVerdict } from "../lib/freshness.js";
import type { DaemonStatus } from "../lib/contract.js";

/** Local wall-clock time of an ISO instant, as an operator reads it in `systemctl status`. */
export function clock_time(iso: string): string {
  return new Date(iso).toTimeString().slice(0, 8);
}

/** Local date and minute of an ISO instant: for instants that may lie days back. */
export function date_time(iso: string): string {
  const at = new Date(iso);
  const two = (n: number) => String(n).padStart(2, "0");
  return `${at.getFullYear()}-${two(at.getMonth() + 1)}-${two(at.getDate())} ${at.toTimeString().slice(0, 5)}`;
}

/**
 * The one-line STATUS= text for systemd: what the daemon is doing now, led by a warning while the
 * data is stale. The warning names an instant, not an age: STATUS is sent on changes only, so
 * an age in it would be wrong a minute later.
 */
export function status_text(status: DaemonStatus, backoff_cause: string | null, freshness?: FreshnessVerdict): string {
  const doing = activity(status, backoff_cause);
  if (!freshness?.stale_reason) return doing;
  const since = freshness.last_success_at !== null
    ? `no successful cycle since ${date_time(freshness.last_success_at)}`
    : `no successful cycle, data published ${date_time(freshness.last_publish_at!)}`;
  return `STALE DATA (${since}); ${doing}`;
}

function activity(status: DaemonStatus, backoff_cause: string | null): string {
  switch (status.state) {
    case "starting": return "starting";
    case "updating": return "updating from git";
    case "running": return `${status.current_job ?? "pipeline"} running`;
    case "idle": return status.next_run_at ? `idle, next run ${clock_time(status.next_run_at)}` : "idle";
    case "backoff": return `backoff after ${backoff_cause ?? "a failure"}, retry ${clock_time(status.next_run_at!)}`;
    case "stopping": return "stopping";
    case "stopped": return "stopped";
  }
}
