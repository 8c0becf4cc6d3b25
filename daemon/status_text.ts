import type { DaemonStatus } from "./run_history.js";

/** Local wall-clock time of an ISO instant, as an operator reads it in `systemctl status`. */
export function clock_time(iso: string): string {
  return new Date(iso).toTimeString().slice(0, 8);
}

/** The one-line STATUS= text for systemd: what the daemon is doing now. */
export function status_text(status: DaemonStatus, backoff_cause: string | null): string {
  switch (status.state) {
    case "starting": return "starting";
    case "updating": return "updating from git";
    case "running": return `${status.current_job ?? "pipeline"} running`;
    case "idle": return status.next_run_at ? `idle, next run ${clock_time(status.next_run_at)}` : "idle";
    case "backoff": return `backoff after ${backoff_cause ?? "a failure"}, retry ${clock_time(status.next_run_at!)}`;
    case "stopping": return "stopping";
  }
}
