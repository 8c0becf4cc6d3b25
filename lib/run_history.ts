import fs from "node:fs";
import path from "node:path";
import type { DaemonStatus, RunRecord } from "./contract.js";
import { write_file_atomic } from "./durable_fs.js";

// The durable record of pipeline runs and the daemon's state, in MATERIA_STATE_DIR (their shapes
// are in contract.ts). The daemon writes them; the web's admin page and `materia status` read
// them. Bounded: only the newest RUN_HISTORY_ENTRIES_MAX runs are kept, and each output tail is
// bounded by SUBPROCESS_OUTPUT_TAIL_BYTES_MAX.

export const run_history_path = (state_dir: string) => path.join(state_dir, "runs.json");
export const daemon_status_path = (state_dir: string) => path.join(state_dir, "daemon.json");

/** How long `run` took, or has been running at `now_ms`. */
export function run_duration_ms(run: Pick<RunRecord, "started_at" | "ended_at">, now_ms: number): number {
  const end_ms = run.ended_at ? Date.parse(run.ended_at) : now_ms;
  return Math.max(0, end_ms - Date.parse(run.started_at));
}

/** Newest first. A missing or unreadable file is an empty history, never an error for a reader. */
export function read_run_history(state_dir: string): RunRecord[] {
  try {
    const records = JSON.parse(fs.readFileSync(run_history_path(state_dir), "utf8")) as unknown;
    return Array.isArray(records) ? (records as RunRecord[]) : [];
  } catch {
    return [];
  }
}

/** Inserts or replaces the record with the same run_id, keeping the newest `entries_max`. */
export function record_run(state_dir: string, record: RunRecord, entries_max: number): void {
  const others = read_run_history(state_dir).filter((existing) => existing.run_id !== record.run_id);
  const records = [record, ...others].slice(0, entries_max);
  fs.mkdirSync(state_dir, { recursive: true });
  write_file_atomic(run_history_path(state_dir), JSON.stringify(records));
}

/**
 * Marks runs left "running" by a daemon that died (a crash, a kill -9) as cancelled, so that
 * no reader waits for them. Call only while holding the pipeline lock: no run is under way then.
 */
export function close_unfinished_runs(state_dir: string, message: string, entries_max: number): number {
  const unfinished = read_run_history(state_dir).filter((run) => run.outcome === "running");
  for (const run of unfinished) {
    record_run(state_dir, { ...run, outcome: "cancelled", ended_at: new Date().toISOString(), message }, entries_max);
  }
  return unfinished.length;
}

export function read_daemon_status(state_dir: string): DaemonStatus | undefined {
  try {
    return JSON.parse(fs.readFileSync(daemon_status_path(state_dir), "utf8")) as DaemonStatus;
  } catch {
    return undefined;
  }
}

export function write_daemon_status(state_dir: string, status: DaemonStatus): void {
  fs.mkdirSync(state_dir, { recursive: true });
  write_file_atomic(daemon_status_path(state_dir), JSON.stringify(status));
}

/**
 * The launcher's last word, once its worker and web processes are gone: without it, a daemon.json
 * left at "stopping" (or "running") by a dead PID is how `materia status` knows the daemon died.
 * The commit is the last worker's (it may have updated itself), else `commit()`'s.
 */
export function stopped_status(last: DaemonStatus | undefined, pid: number, commit: () => string, exit_code: number, now: Date): DaemonStatus {
  const at = now.toISOString();
  const ours = last?.pid === pid ? last : undefined;
  return {
    pid, worker_pid: null, web_pid: null, commit: ours?.commit ?? commit(), state: "stopped",
    current_job: null, next_run_at: null, last_error: ours?.last_error ?? null, web_url: null,
    updated_at: at, stopped_at: at, exit_code,
  };
}
