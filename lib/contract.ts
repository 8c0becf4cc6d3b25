// The contract between materia's processes and threads, in one place: what crosses a process or
// thread boundary (IPC messages, exit codes, the inherited socket) and the records on disk that
// one process writes and another reads (runs.jsonl, daemon.json). Both sides import their types
// from here, so a change to a message is a compile error on the side that was not changed.
//
// The launcher is the one process a self-update never reloads: a worker or web process of a newer
// commit must still understand an older launcher. So this contract only grows (new message types,
// new optional fields); it never renames or removes.
import type { Config } from "../config/schema.js";
import { ConfigError } from "../config/load.js";

/** How every materia process exits; the launcher judges its worker by these. */
export const exit_codes = {
  ok: 0,
  /** A crash, or a stop that overran its bound: the launcher restarts the worker after a growing delay. */
  failure: 1,
  /** The configuration is invalid: restarting will not mend it, so the launcher stops too. */
  config_error: 2,
  /** The worker exits with this to be started again on the checkout as it is now (EX_TEMPFAIL). */
  restart: 75,
} as const;

// ---- web process ⇄ launcher (web/main.ts, daemon/web_child.ts) ----

/** Names the fd of the listening socket a forked web process inherits (set by the launcher only). */
export const listen_fd_variable = "MATERIA_WEB_LISTEN_FD";

/** The listening socket's fd in a web process: the stdio slot after stdin, stdout, stderr and the IPC channel. */
export const web_listen_fd = 4;

/** What a web process tells the launcher: that it takes connections now, or the admin page's "Run now". */
export type WebMessage = { type: "web_listening"; url: string } | { type: "run_now" };

/** The inherited listening socket's fd from `MATERIA_WEB_LISTEN_FD`; undefined when run alone (`npm run web`). */
export function inherited_listen_fd(env: NodeJS.ProcessEnv): number | undefined {
  const value = env[listen_fd_variable];
  if (value === undefined) return undefined;
  const fd = Number(value);
  if (!/^\d+$/.test(value) || fd < 3) {
    throw new ConfigError(`config: ${listen_fd_variable} must name an inherited file descriptor, 3 or more (got "${value}")`);
  }
  return fd;
}

// ---- launcher ⇄ worker process (daemon/launcher.ts, daemon/supervisor.ts) ----
// The web processes are the launcher's (they outlive any worker); the worker hears about them here.

/** Launcher → worker: the web process taking connections, one that exited, the admin page's "Run now". */
export type LauncherMessage =
  | { type: "web_listening"; pid: number; url: string }
  | { type: "web_exited"; pid: number }
  | { type: "run_now" };

/** Worker → launcher: its handlers are in place; the launcher answers with the web process serving, if any. */
export type WorkerMessage = { type: "worker_started" };

// ---- worker process ⇄ job thread (daemon/job_runner.ts, daemon/job_worker.ts) ----

/** What a job thread starts with. */
export interface JobThreadData {
  job_name: string;
  config: Config;
}

/** Worker → job thread: stop now; `reason` says why ("timed out after …", "cancelled"), for the job's error. */
export type JobThreadCommand = { type: "stop"; reason: string };

/** Job thread → worker: every subprocess's process group as it starts, then one result. */
export type JobThreadMessage =
  | { type: "subprocess"; pgid: number }
  | { type: "result"; ok: true; summary: string; output_tail: string }
  | { type: "result"; ok: false; error: string };

// ---- on disk: the worker writes, `materia status` and the web's admin page read ----

/** How a job run ended; "timeout" is the job's deadline (*_TIMEOUT_S), "cancelled" a stop or reload. */
export type RunOutcome = "running" | "ok" | "failed" | "timeout" | "cancelled";

/** One job run: a line of runs.jsonl (the later line of a run_id wins). */
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

/** What the daemon is doing now (daemon.json): rewritten at every change of state. */
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
