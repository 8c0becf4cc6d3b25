import fs from "node:fs";
import path from "node:path";
import { write_file_atomic } from "../lib/durable_fs.js";

// The durable record of pipeline runs, in MATERIA_STATE_DIR. The daemon writes it; the web's
// admin page and `materia status` read it. Bounded: only the newest RUN_HISTORY_ENTRIES_MAX runs
// are kept, and each output tail is bounded by SUBPROCESS_OUTPUT_TAIL_BYTES_MAX.
//
// One JSON record per line, appended: a run's start and its end are two lines, the later one
// wins. Rewriting one JSON array whole at every record (as this file once did) parsed and
// rebuilt the whole history six times a cycle, and the worker's memory grew with the history
// until its cap (≈ +45 MB at 500 runs, measured; bench/README.md, the soak). An append costs
// one line whatever the history holds; once the file has 2 × RUN_HISTORY_ENTRIES_MAX lines it is
// rewritten with the newest RUN_HISTORY_ENTRIES_MAX runs, atomically.

export type RunOutcome = "running" | "ok" | "failed" | "timeout" | "cancelled";

export interface RunRecord {
  /** One id per job run: `${cycle_id}.${job}`. */
  run_id: string;
  cycle_id: string;
  job: string;
  started_at: string;
  ended_at: string | null;
  outcome: RunOutcome;
  /** One line: the job's summary when ok, its error otherwise. */
  message: string;
  output_tail: string;
}

/** What the daemon is doing now: rewritten at every change of state. */
export interface DaemonStatus {
  /** The daemon's PID, the one to signal: stays the same when it restarts on a new commit. */
  pid: number;
  /** The process that runs the loop (and holds the pipeline lock), restarted on a new commit. */
  worker_pid?: number | null;
  /** The forked web child, while one runs. */
  web_pid?: number | null;
  commit: string;
  state: "starting" | "updating" | "running" | "idle" | "backoff" | "stopping" | "stopped";
  current_job: string | null;
  /** When the next cycle starts (idle or backoff), ISO 8601. */
  next_run_at: string | null;
  /** Why the last cycle failed, while in backoff. */
  last_error: string | null;
  /** Where the forked web child listens, once it does. */
  web_url: string | null;
  updated_at: string;
  /** Set with state "stopped" only: when the daemon stopped and its exit code. */
  stopped_at?: string;
  exit_code?: number;
}

export const run_history_path = (state_dir: string) => path.join(state_dir, "runs.jsonl");
/** The history before it was appended to: one JSON array, newest first. Read until the first record after an upgrade moves it over. */
const legacy_run_history_path = (state_dir: string) => path.join(state_dir, "runs.json");
export const daemon_status_path = (state_dir: string) => path.join(state_dir, "daemon.json");

/** Newest first. A missing or unreadable file is an empty history, never an error for a reader. */
export function read_run_history(state_dir: string): RunRecord[] {
  try {
    return newest_first(parse_lines(fs.readFileSync(run_history_path(state_dir), "utf8")));
  } catch {
    return read_legacy_history(state_dir);
  }
}

function read_legacy_history(state_dir: string): RunRecord[] {
  try {
    const records = JSON.parse(fs.readFileSync(legacy_run_history_path(state_dir), "utf8")) as unknown;
    return Array.isArray(records) ? (records as RunRecord[]) : [];
  } catch {
    return [];
  }
}

/** The records of the file's lines, in file order; a line cut short by a crash is left out. */
function parse_lines(text: string): RunRecord[] {
  const records: RunRecord[] = [];
  for (const line of text.split("\n")) {
    if (line === "") continue;
    try {
      const record = JSON.parse(line) as RunRecord;
      if (typeof record?.run_id === "string") records.push(record);
    } catch {
      // a torn last line
    }
  }
  return records;
}

/** One record per run, its latest line; the run recorded last first. */
function newest_first(in_file_order: RunRecord[]): RunRecord[] {
  const latest = new Map<string, RunRecord>();
  for (const record of in_file_order) {
    // Deleted first, so that the Map's insertion order is the order of each run's latest line.
    latest.delete(record.run_id);
    latest.set(record.run_id, record);
  }
  return [...latest.values()].reverse();
}

/** The daemon's writer of the run history: the only writer, so it can count the file's lines instead of reading them. */
export class RunHistory {
  private lines: number | undefined;

  constructor(private readonly state_dir: string, private readonly entries_max: number) {}

  /** Records a run's start or end (the later record of a run_id replaces the earlier). */
  record(run: RunRecord): void {
    const file = run_history_path(this.state_dir);
    this.lines ??= this.open_file(file);
    if (this.lines + 1 >= 2 * this.entries_max) {
      const kept = read_run_history(this.state_dir).filter((existing) => existing.run_id !== run.run_id).slice(0, this.entries_max - 1);
      write_file_atomic(file, [...kept.reverse(), run].map((record) => JSON.stringify(record) + "\n").join(""));
      this.lines = kept.length + 1;
      return;
    }
    append_durably(file, JSON.stringify(run) + "\n");
    this.lines++;
  }

  /**
   * Marks runs left "running" by a daemon that died (a crash, a kill -9) as cancelled, so that
   * no reader waits for them. Call only while holding the pipeline lock: no run is under way then.
   */
  close_unfinished(message: string): number {
    const unfinished = read_run_history(this.state_dir).filter((run) => run.outcome === "running");
    for (const run of unfinished) this.record({ ...run, outcome: "cancelled", ended_at: new Date().toISOString(), message });
    return unfinished.length;
  }

  /** The file's line count, once per process; a history in the old one-array file is moved over first. */
  private open_file(file: string): number {
    fs.mkdirSync(this.state_dir, { recursive: true });
    const legacy = legacy_run_history_path(this.state_dir);
    if (!fs.existsSync(file) && fs.existsSync(legacy)) {
      const records = read_legacy_history(this.state_dir).slice(0, this.entries_max).reverse();
      write_file_atomic(file, records.map((record) => JSON.stringify(record) + "\n").join(""));
      fs.rmSync(legacy, { force: true });
    }
    let text = "";
    try {
      text = fs.readFileSync(file, "utf8");
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
    }
    // A line a crash cut short gets its end, so the next record starts a line of its own.
    if (text !== "" && !text.endsWith("\n")) append_durably(file, "\n");
    return text.split("\n").length - 1;
  }
}

function append_durably(file: string, text: string): void {
  const fd = fs.openSync(file, "a");
  try {
    fs.writeSync(fd, text);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
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
