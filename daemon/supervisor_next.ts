import type { Config } from "../config/schema.js";
import { exit_codes, type DaemonStatus } from "../lib/contract.js";
import type { UpdateResult } from "./self_update.js";

// The supervisor's decisions, as a pure function of (state, event) → (state, actions), in the
// manner of web_handover.ts: no clock, no I/O, no process. supervisor.ts carries the actions out
// and turns what happens (signals, messages, the end of an update, of the jobs, of a wait) into
// events. Tested as a table in test/supervisor_next.test.ts.

/** What the loop is doing. */
export type Activity = "starting" | "updating" | "running_jobs" | "reloading" | "waiting" | "exited";

export interface SupervisorState {
  activity: Activity;
  /** SIGTERM/SIGINT or the launcher gone: whatever runs is cancelled, then the worker exits 0. */
  stopping: boolean;
  /** SIGHUP: whatever runs is cancelled, then the worker updates and restarts. */
  reload_requested: boolean;
  /** READY=1 goes out once: when the loop runs and a web process listens. */
  ready_sent: boolean;
  /** The web process serving now, as the launcher last said. */
  web_pid: number | null;
  /** A commit that failed to build: cycles do not try it again, a SIGHUP does. */
  unbuildable_commit: string | undefined;
  /** When the cycle under way started: the next one starts PIPELINE_INTERVAL_S after it. */
  cycle_started_ms: number | undefined;
  /** What the last failed cycle failed of ("extract failure", "transform timeout"), for STATUS while in backoff. */
  backoff_cause: string | null;
}

export const supervisor_state_initial: SupervisorState = {
  activity: "starting", stopping: false, reload_requested: false, ready_sent: false, web_pid: null,
  unbuildable_commit: undefined, cycle_started_ms: undefined, backoff_cause: null,
};

/** How the jobs of a cycle ended. `cause` names the job and how it failed, `reason` says why in one line. */
export type JobsResult = { kind: "ok" } | { kind: "failed"; cause: string; reason: string } | { kind: "cancelled" };

export type SupervisorEvent =
  /** The worker is set up (a dead worker's leftovers cleaned up): the loop begins. */
  | { kind: "started"; now_ms: number }
  | { kind: "stop_signal"; why: string }
  | { kind: "reload_signal" }
  /** The admin page's "Run now", from the launcher. */
  | { kind: "run_now" }
  | { kind: "web_listening"; url: string; pid: number }
  | { kind: "web_exited"; pid: number }
  /** The self-update asked for by a `self_update` action ended; `cancelled`: its cancel was aborted meanwhile. */
  | { kind: "update_done"; result: UpdateResult; cancelled: boolean; now_ms: number }
  | { kind: "jobs_done"; result: JobsResult; now_ms: number }
  /** The wait of a `wait` action ended: its time came, or `end_wait` ended it. */
  | { kind: "wait_over"; now_ms: number };

export type SupervisorAction =
  | { kind: "log"; level: "debug" | "info" | "warn" | "error"; message: string }
  /** daemon.json and, when it changes, STATUS=. */
  | { kind: "status"; change: Partial<DaemonStatus> }
  /** READY=1 (with the STATUS= line as it is then), RELOADING=1 or STOPPING=1; later actions wait until it was sent. */
  | { kind: "notify"; message: "ready" | "reloading" | "stopping"; text?: string }
  /** The one call of self_update; `skip_commit` is not tried again. Ends with update_done. */
  | { kind: "self_update"; skip_commit: string | undefined }
  /** Every job of the pipeline in order, under the pipeline lock. Ends with jobs_done. */
  | { kind: "run_jobs" }
  /** Ends with wait_over. */
  | { kind: "wait"; until_ms: number }
  /** Aborts the self_update or run_jobs under way, if any. */
  | { kind: "cancel" }
  /** Ends the wait under way, if any. */
  | { kind: "end_wait" }
  /** Kills what is left and exits 1 should the stop overrun STOP_TIMEOUT_S. */
  | { kind: "arm_force_exit" }
  /** The healthcheck ping: a cycle starts, succeeded (also recorded for the stale-data alarm), failed. */
  | { kind: "cycle_start" }
  | { kind: "cycle_ok" }
  | { kind: "cycle_failed"; reason: string }
  | { kind: "exit"; code: number };

export interface SupervisorSettings {
  pipeline_interval_s: number;
  pipeline_backoff_s: number;
  stop_timeout_s: number;
  /** MATERIA_GIT_REF is set: a cycle's update is worth a STATUS of its own. */
  updates_enabled: boolean;
  /** The commit this worker runs, for the log. */
  commit: string;
}

export function supervisor_settings(config: Config, commit: string): SupervisorSettings {
  return {
    pipeline_interval_s: config.pipeline_interval_s, pipeline_backoff_s: config.pipeline_backoff_s,
    stop_timeout_s: config.stop_timeout_s, updates_enabled: config.materia_git_ref !== "", commit,
  };
}

export interface SupervisorDecision {
  state: SupervisorState;
  actions: SupervisorAction[];
}

const busy: readonly Activity[] = ["updating", "running_jobs", "reloading"];
const iso = (ms: number) => new Date(ms).toISOString();

export function supervisor_next(state: SupervisorState, event: SupervisorEvent, settings: SupervisorSettings): SupervisorDecision {
  if (state.activity === "exited") return { state, actions: [] };
  switch (event.kind) {
    case "started": return next_step(state, event.now_ms, settings);
    case "stop_signal": return on_stop_signal(state, event.why, settings);
    case "reload_signal":
      if (state.stopping) return { state, actions: [] };
      return {
        state: { ...state, reload_requested: true },
        actions: [log("info", "SIGHUP: updating and restarting"), { kind: "cancel" }, { kind: "end_wait" }],
      };
    case "run_now":
      // A wait ends at once; a cycle (or a reload) under way is left alone, not queued.
      if (busy.includes(state.activity)) return { state, actions: [log("info", "run now: ignored, a cycle is running")] };
      return { state, actions: [log("info", "run now: starting a cycle"), { kind: "end_wait" }] };
    case "web_listening": {
      const actions: SupervisorAction[] = [{ kind: "status", change: { web_url: event.url, web_pid: event.pid } }];
      const ready = !state.ready_sent && !state.stopping;
      if (ready) actions.push({ kind: "notify", message: "ready" });
      return { state: { ...state, web_pid: event.pid, ready_sent: state.ready_sent || ready }, actions };
    }
    case "web_exited":
      if (state.web_pid !== event.pid) return { state, actions: [] };
      return { state: { ...state, web_pid: null }, actions: [{ kind: "status", change: { web_pid: null, web_url: null } }] };
    case "update_done":
      if (state.activity === "reloading") return on_reload_update(state, event.result, event.now_ms, settings);
      if (state.activity === "updating") return on_cycle_update(state, event, settings);
      return unexpected(state, event);
    case "jobs_done":
      if (state.activity !== "running_jobs") return unexpected(state, event);
      return on_jobs_done(state, event.result, event.now_ms, settings);
    case "wait_over":
      if (state.activity !== "waiting") return unexpected(state, event);
      return next_step(state, event.now_ms, settings);
  }
}

/** Whenever the loop is free: exit when stopping, reload when asked to, else a cycle. */
function next_step(state: SupervisorState, now_ms: number, settings: SupervisorSettings): SupervisorDecision {
  if (state.stopping) return exit(state, exit_codes.ok);
  if (state.reload_requested) {
    return {
      state: { ...state, activity: "reloading", reload_requested: false },
      actions: [
        { kind: "notify", message: "reloading", text: "reloading: updating from git" },
        { kind: "status", change: { state: "updating", current_job: null, next_run_at: null } },
        // A SIGHUP tries a commit that failed to build again: the operator may have mended the build.
        { kind: "self_update", skip_commit: undefined },
      ],
    };
  }
  const actions: SupervisorAction[] = [{ kind: "cycle_start" }];
  if (settings.updates_enabled) actions.push({ kind: "status", change: { state: "updating", current_job: null, next_run_at: null } });
  actions.push({ kind: "self_update", skip_commit: state.unbuildable_commit });
  return { state: { ...state, activity: "updating", cycle_started_ms: now_ms }, actions };
}

function on_stop_signal(state: SupervisorState, why: string, settings: SupervisorSettings): SupervisorDecision {
  if (state.stopping) return { state, actions: [] };
  return {
    state: { ...state, stopping: true },
    actions: [
      log("info", `${why}: stopping (within STOP_TIMEOUT_S=${settings.stop_timeout_s} s)`),
      { kind: "arm_force_exit" },
      { kind: "notify", message: "stopping", text: "stopping" },
      { kind: "status", change: { state: "stopping", next_run_at: null } },
      { kind: "cancel" },
      { kind: "end_wait" },
    ],
  };
}

/** The self-update that begins a cycle. */
function on_cycle_update(state: SupervisorState, { result: update, cancelled, now_ms }: SupervisorEvent & { kind: "update_done" },
  settings: SupervisorSettings): SupervisorDecision {
  if (state.stopping) return exit(state, exit_codes.ok);
  if (update.outcome === "updated") {
    return exit(state, exit_codes.restart, [
      log("info", `update: now at ${update.to} (was ${update.from}); restarting on it`),
      { kind: "notify", message: "reloading", text: `restarting on ${update.to}` },
    ]);
  }
  if (cancelled) return next_step(state, now_ms, settings);
  const actions: SupervisorAction[] = [];
  let unbuildable_commit = state.unbuildable_commit;
  if (update.outcome === "failed") {
    actions.push(log("error", `update failed, running ${settings.commit} still: ${update.reason}`));
    unbuildable_commit = update.unbuildable ?? unbuildable_commit;
  } else if (update.outcome === "disabled") {
    actions.push(log("debug", `update: off (${update.reason})`));
  }
  actions.push({ kind: "run_jobs" });
  return { state: { ...state, activity: "running_jobs", unbuildable_commit }, actions };
}

/**
 * The self-update of a SIGHUP. Any outcome but a failure restarts the worker on the checkout as it
 * is (new code, the configuration read again). A failure keeps this commit; systemd holds the unit
 * in "reloading" until READY=1, so READY=1 goes out even then. Then the loop goes on as from any
 * wait a signal ended: another SIGHUP meanwhile reloads again, else a cycle runs (whose update
 * does not retry a commit that failed to build; ARCHITECTURE.md says why a cycle).
 */
function on_reload_update(state: SupervisorState, update: UpdateResult, now_ms: number, settings: SupervisorSettings): SupervisorDecision {
  if (state.stopping) return exit(state, exit_codes.ok);
  if (update.outcome === "failed") {
    const failed: SupervisorState = { ...state, unbuildable_commit: update.unbuildable ?? state.unbuildable_commit };
    const then = next_step(failed, now_ms, settings);
    return {
      state: then.state,
      actions: [
        log("error", `reload: update failed, running ${settings.commit} still: ${update.reason}`),
        { kind: "notify", message: "ready", text: `reload failed, running ${settings.commit}` },
        ...then.actions,
      ],
    };
  }
  const what = update.outcome === "updated"
    ? `the new commit ${update.to}`
    : `${settings.commit} (${update.outcome === "unchanged" ? "no newer commit" : update.reason})`;
  return exit(state, exit_codes.restart, [log("info", `reload: restarting on ${what}`)]);
}

function on_jobs_done(state: SupervisorState, result: JobsResult, now_ms: number, settings: SupervisorSettings): SupervisorDecision {
  if (state.stopping || result.kind === "cancelled") return next_step(state, now_ms, settings);
  if (result.kind === "ok") {
    const next_ms = (state.cycle_started_ms ?? now_ms) + settings.pipeline_interval_s * 1000;
    return {
      state: { ...state, activity: "waiting", backoff_cause: null },
      actions: [
        { kind: "cycle_ok" },
        { kind: "status", change: { state: "idle", current_job: null, last_error: null, next_run_at: iso(next_ms) } },
        log("info", `cycle ok; next run at ${iso(next_ms)}`),
        { kind: "wait", until_ms: next_ms },
      ],
    };
  }
  const next_ms = now_ms + settings.pipeline_backoff_s * 1000;
  return {
    state: { ...state, activity: "waiting", backoff_cause: result.cause },
    actions: [
      { kind: "cycle_failed", reason: result.reason },
      { kind: "status", change: { state: "backoff", current_job: null, last_error: result.reason, next_run_at: iso(next_ms) } },
      log("warn", `backoff after ${result.cause}: next attempt at ${iso(next_ms)}`),
      { kind: "wait", until_ms: next_ms },
    ],
  };
}

function exit(state: SupervisorState, code: number, before: SupervisorAction[] = []): SupervisorDecision {
  const farewell = code === exit_codes.restart ? "worker exiting, to be started again on the checkout as it is now" : "stopped";
  return { state: { ...state, activity: "exited" }, actions: [...before, log("info", farewell), { kind: "exit", code }] };
}

/** An event the shell cannot send in this activity: a bug there, said once, and nothing else done. */
function unexpected(state: SupervisorState, event: SupervisorEvent): SupervisorDecision {
  return { state, actions: [log("error", `supervisor: ${event.kind} while ${state.activity}: ignored`)] };
}

const log = (level: "debug" | "info" | "warn" | "error", message: string): SupervisorAction => ({ kind: "log", level, message });
