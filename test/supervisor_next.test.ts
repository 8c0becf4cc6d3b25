import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { load_config } from "../config/load.js";
import { exit_codes } from "../lib/contract.js";
import {
  supervisor_next, supervisor_settings, supervisor_state_initial, type Activity, type JobsResult, type SupervisorAction, type SupervisorEvent, type SupervisorSettings,
  type SupervisorState,
} from "../daemon/supervisor_next.js";

// The supervisor's decisions as a table: from a state, an event, to a state and the actions, with
// no process, clock or file. supervisor.ts only carries the actions out.

const settings: SupervisorSettings = {
  pipeline_interval_s: 3600, pipeline_backoff_s: 600, stop_timeout_s: 30, updates_enabled: true, commit: "aaaaaaaaaaaa",
};
const now_ms = Date.parse("2026-01-01T00:00:00.000Z");
const at = (offset_s: number) => new Date(now_ms + offset_s * 1000).toISOString();

const state = (change: Partial<SupervisorState> = {}): SupervisorState => ({ ...supervisor_state_initial, ...change });
const in_cycle = (change: Partial<SupervisorState> = {}) => state({ activity: "running_jobs", ready_sent: true, cycle_started_ms: now_ms, ...change });

/** An action list in short: "kind" or "kind:detail" for the parts a reader checks. */
function brief(actions: SupervisorAction[]): string[] {
  return actions.map((action) => {
    switch (action.kind) {
      case "log": return `log:${action.level}:${action.message}`;
      case "status": return `status:${JSON.stringify(action.change)}`;
      case "notify": return `notify:${action.message}${action.text === undefined ? "" : `:${action.text}`}`;
      case "self_update": return `self_update:${action.skip_commit ?? "-"}`;
      case "wait": return `wait:${new Date(action.until_ms).toISOString()}`;
      case "cycle_failed": return `cycle_failed:${action.reason}`;
      case "exit": return `exit:${action.code}`;
      default: return action.kind;
    }
  });
}

interface Row {
  name: string;
  from: SupervisorState;
  event: SupervisorEvent;
  to: Partial<SupervisorState>;
  actions: string[];
}

const cycle_update: string[] = ["cycle_start", 'status:{"state":"updating","current_job":null,"next_run_at":null}', "self_update:-"];
const reload_update: string[] = [
  "notify:reloading:reloading: updating from git", 'status:{"state":"updating","current_job":null,"next_run_at":null}', "self_update:-",
];
const stop_actions: string[] = [
  "log:info:SIGTERM: stopping (within STOP_TIMEOUT_S=30 s)", "arm_force_exit", "notify:stopping:stopping",
  'status:{"state":"stopping","next_run_at":null}', "cancel", "end_wait",
];
const exit_restart = ["log:info:worker exiting, to be started again on the checkout as it is now", `exit:${exit_codes.restart}`];
const exit_ok = ["log:info:stopped", `exit:${exit_codes.ok}`];

const rows: Row[] = [
  // Start and the cycle.
  { name: "the loop begins with a cycle: its self-update first", from: state(), event: { kind: "started", now_ms },
    to: { activity: "updating", cycle_started_ms: now_ms }, actions: cycle_update },
  { name: "a cycle skips the commit that failed to build", from: state({ unbuildable_commit: "bbbbbbbbbbbb" }), event: { kind: "started", now_ms },
    to: { activity: "updating", cycle_started_ms: now_ms }, actions: [...cycle_update.slice(0, 2), "self_update:bbbbbbbbbbbb"] },
  { name: "a stop during the start-up: exit 0 as soon as the loop would begin", from: state({ stopping: true }), event: { kind: "started", now_ms },
    to: { activity: "exited" }, actions: exit_ok },
  { name: "no newer commit: the jobs run", from: state({ activity: "updating", cycle_started_ms: now_ms }),
    event: { kind: "update_done", result: { outcome: "unchanged", commit: "aaaaaaaaaaaa" }, cancelled: false, now_ms },
    to: { activity: "running_jobs" }, actions: ["run_jobs"] },
  { name: "updates off: said at debug, the jobs run", from: state({ activity: "updating" }),
    event: { kind: "update_done", result: { outcome: "disabled", reason: "MATERIA_GIT_REF is empty" }, cancelled: false, now_ms },
    to: { activity: "running_jobs" }, actions: ["log:debug:update: off (MATERIA_GIT_REF is empty)", "run_jobs"] },
  { name: "a failed update: logged, the commit that failed to build remembered, the jobs run on the old commit", from: state({ activity: "updating" }),
    event: { kind: "update_done", result: { outcome: "failed", reason: "npm ci failed", unbuildable: "cccccccccccc" }, cancelled: false, now_ms },
    to: { activity: "running_jobs", unbuildable_commit: "cccccccccccc" },
    actions: ["log:error:update failed, running aaaaaaaaaaaa still: npm ci failed", "run_jobs"] },
  { name: "a newer commit: RELOADING=1, then exit to be restarted on it", from: state({ activity: "updating" }),
    event: { kind: "update_done", result: { outcome: "updated", from: "aaaaaaaaaaaa", to: "dddddddddddd" }, cancelled: false, now_ms },
    to: { activity: "exited" },
    actions: ["log:info:update: now at dddddddddddd (was aaaaaaaaaaaa); restarting on it", "notify:reloading:restarting on dddddddddddd", ...exit_restart] },
  { name: "an update cancelled by SIGHUP: the reload runs, the jobs do not", from: state({ activity: "updating", reload_requested: true }),
    event: { kind: "update_done", result: { outcome: "failed", reason: "git fetch: cancelled" }, cancelled: true, now_ms },
    to: { activity: "reloading", reload_requested: false }, actions: reload_update },
  { name: "an update that ends after a stop: exit 0, even if it moved the checkout", from: state({ activity: "updating", stopping: true }),
    event: { kind: "update_done", result: { outcome: "updated", from: "aaaaaaaaaaaa", to: "dddddddddddd" }, cancelled: true, now_ms },
    to: { activity: "exited" }, actions: exit_ok },
  { name: "jobs ok: recorded, idle until PIPELINE_INTERVAL_S after the cycle began", from: in_cycle({ backoff_cause: "extract failure" }),
    event: { kind: "jobs_done", result: { kind: "ok" }, now_ms: now_ms + 60_000 }, to: { activity: "waiting", backoff_cause: null },
    actions: ["cycle_ok", `status:{"state":"idle","current_job":null,"last_error":null,"next_run_at":"${at(3600)}"}`,
      `log:info:cycle ok; next run at ${at(3600)}`, `wait:${at(3600)}`] },
  { name: "a job failed: backoff for PIPELINE_BACKOFF_S from now, its cause in STATUS", from: in_cycle(),
    event: { kind: "jobs_done", result: { kind: "failed", cause: "transform timeout", reason: "transform: timed out after 2 s" }, now_ms: now_ms + 60_000 },
    to: { activity: "waiting", backoff_cause: "transform timeout" },
    actions: ["cycle_failed:transform: timed out after 2 s",
      `status:{"state":"backoff","current_job":null,"last_error":"transform: timed out after 2 s","next_run_at":"${at(660)}"}`,
      `log:warn:backoff after transform timeout: next attempt at ${at(660)}`, `wait:${at(660)}`] },
  { name: "jobs cancelled by a stop: exit 0", from: in_cycle({ stopping: true }), event: { kind: "jobs_done", result: { kind: "cancelled" }, now_ms },
    to: { activity: "exited" }, actions: exit_ok },
  { name: "jobs that end ok after a stop: no success recorded, exit 0", from: in_cycle({ stopping: true }), event: { kind: "jobs_done", result: { kind: "ok" }, now_ms },
    to: { activity: "exited" }, actions: exit_ok },
  { name: "jobs cancelled by SIGHUP: the reload", from: in_cycle({ reload_requested: true }), event: { kind: "jobs_done", result: { kind: "cancelled" }, now_ms },
    to: { activity: "reloading", reload_requested: false }, actions: reload_update },
  { name: "the wait ends: the next cycle", from: state({ activity: "waiting" }), event: { kind: "wait_over", now_ms },
    to: { activity: "updating", cycle_started_ms: now_ms }, actions: cycle_update },

  // Signals.
  { name: "SIGTERM while the jobs run: STOPPING=1, the jobs cancelled, a bound on the stop", from: in_cycle(), event: { kind: "stop_signal", why: "SIGTERM" },
    to: { stopping: true, activity: "running_jobs" }, actions: stop_actions },
  { name: "a second SIGTERM changes nothing", from: in_cycle({ stopping: true }), event: { kind: "stop_signal", why: "SIGTERM" },
    to: { stopping: true }, actions: [] },
  { name: "SIGHUP while the jobs run: they are cancelled; the reload follows their end", from: in_cycle(), event: { kind: "reload_signal" },
    to: { reload_requested: true, activity: "running_jobs" }, actions: ["log:info:SIGHUP: updating and restarting", "cancel", "end_wait"] },
  { name: "SIGHUP while stopping is ignored", from: in_cycle({ stopping: true }), event: { kind: "reload_signal" }, to: { reload_requested: false }, actions: [] },
  { name: "SIGHUP while waiting: the wait ends (then the reload)", from: state({ activity: "waiting" }), event: { kind: "reload_signal" },
    to: { reload_requested: true, activity: "waiting" }, actions: ["log:info:SIGHUP: updating and restarting", "cancel", "end_wait"] },

  // The reload's update.
  { name: "reload, no newer commit: restart on this commit (the configuration is read again)", from: state({ activity: "reloading" }),
    event: { kind: "update_done", result: { outcome: "unchanged", commit: "aaaaaaaaaaaa" }, cancelled: false, now_ms },
    to: { activity: "exited" }, actions: ["log:info:reload: restarting on aaaaaaaaaaaa (no newer commit)", ...exit_restart] },
  { name: "reload, updates off: restart on this commit", from: state({ activity: "reloading" }),
    event: { kind: "update_done", result: { outcome: "disabled", reason: "MATERIA_GIT_REF is empty" }, cancelled: false, now_ms },
    to: { activity: "exited" }, actions: ["log:info:reload: restarting on aaaaaaaaaaaa (MATERIA_GIT_REF is empty)", ...exit_restart] },
  { name: "reload, a newer commit: restart on it", from: state({ activity: "reloading" }),
    event: { kind: "update_done", result: { outcome: "updated", from: "aaaaaaaaaaaa", to: "dddddddddddd" }, cancelled: false, now_ms },
    to: { activity: "exited" }, actions: ["log:info:reload: restarting on the new commit dddddddddddd", ...exit_restart] },
  { name: "reload failed: logged, READY=1 ends systemd's reloading, the commit that failed to build remembered, then a cycle",
    from: state({ activity: "reloading", ready_sent: true }),
    event: { kind: "update_done", result: { outcome: "failed", reason: "setup.sh failed", unbuildable: "eeeeeeeeeeee" }, cancelled: false, now_ms },
    to: { activity: "updating", unbuildable_commit: "eeeeeeeeeeee", cycle_started_ms: now_ms },
    actions: ["log:error:reload: update failed, running aaaaaaaaaaaa still: setup.sh failed", "notify:ready:reload failed, running aaaaaaaaaaaa",
      ...cycle_update.slice(0, 2), "self_update:eeeeeeeeeeee"] },
  { name: "reload cancelled by another SIGHUP: READY=1, then that reload", from: state({ activity: "reloading", reload_requested: true }),
    event: { kind: "update_done", result: { outcome: "failed", reason: "git fetch: cancelled" }, cancelled: true, now_ms },
    to: { activity: "reloading", reload_requested: false },
    actions: ["log:error:reload: update failed, running aaaaaaaaaaaa still: git fetch: cancelled", "notify:ready:reload failed, running aaaaaaaaaaaa", ...reload_update] },
  { name: "reload cut short by a stop: exit 0", from: state({ activity: "reloading", stopping: true }),
    event: { kind: "update_done", result: { outcome: "failed", reason: "git fetch: cancelled" }, cancelled: true, now_ms },
    to: { activity: "exited" }, actions: exit_ok },

  // Run now, and the web.
  { name: "Run now while waiting ends the wait", from: state({ activity: "waiting" }), event: { kind: "run_now" },
    to: { activity: "waiting" }, actions: ["log:info:run now: starting a cycle", "end_wait"] },
  { name: "Run now during a cycle is ignored, not queued", from: in_cycle(), event: { kind: "run_now" },
    to: { activity: "running_jobs" }, actions: ["log:info:run now: ignored, a cycle is running"] },
  { name: "Run now during a reload is ignored", from: state({ activity: "reloading" }), event: { kind: "run_now" },
    to: { activity: "reloading" }, actions: ["log:info:run now: ignored, a cycle is running"] },
  { name: "the first web process listening: READY=1", from: state({ activity: "updating" }), event: { kind: "web_listening", url: "http://127.0.0.1:1", pid: 7 },
    to: { ready_sent: true, web_pid: 7 }, actions: ['status:{"web_url":"http://127.0.0.1:1","web_pid":7}', "notify:ready"] },
  { name: "a later web process: its URL, no second READY=1", from: in_cycle({ web_pid: 7 }), event: { kind: "web_listening", url: "http://127.0.0.1:2", pid: 8 },
    to: { ready_sent: true, web_pid: 8 }, actions: ['status:{"web_url":"http://127.0.0.1:2","web_pid":8}'] },
  { name: "a web process listening while stopping: no READY=1", from: state({ stopping: true }), event: { kind: "web_listening", url: "http://127.0.0.1:1", pid: 7 },
    to: { ready_sent: false, web_pid: 7 }, actions: ['status:{"web_url":"http://127.0.0.1:1","web_pid":7}'] },
  { name: "the serving web process exits: no URL until the next one listens", from: in_cycle({ web_pid: 7 }), event: { kind: "web_exited", pid: 7 },
    to: { web_pid: null }, actions: ['status:{"web_pid":null,"web_url":null}'] },
  { name: "an old web process exits after the hand-over: nothing changes", from: in_cycle({ web_pid: 8 }), event: { kind: "web_exited", pid: 7 },
    to: { web_pid: 8 }, actions: [] },

  // Events the shell should not send.
  { name: "jobs_done while waiting is a bug: said, nothing done", from: state({ activity: "waiting" }), event: { kind: "jobs_done", result: { kind: "ok" }, now_ms },
    to: { activity: "waiting" }, actions: ["log:error:supervisor: jobs_done while waiting: ignored"] },
];

describe("the supervisor's decisions, row by row", () => {
  for (const row of rows) {
    test(row.name, () => {
      const decision = supervisor_next(row.from, row.event, settings);
      assert.deepEqual(brief(decision.actions), row.actions);
      assert.deepEqual(decision.state, { ...row.from, ...row.to });
    });
  }
});

test("by default a failed cycle waits 600 s (PIPELINE_BACKOFF_S), an ok one 3600 s from its start (PIPELINE_INTERVAL_S)", () => {
  const defaults = supervisor_settings(load_config({}), "aaaaaaaaaaaa");
  const waits = (result: JobsResult) => supervisor_next(in_cycle(), { kind: "jobs_done", result, now_ms: now_ms + 60_000 }, defaults)
    .actions.filter((action) => action.kind === "wait");
  assert.deepEqual(waits({ kind: "failed", cause: "extract failure", reason: "extract: HTTP 500" }), [{ kind: "wait", until_ms: now_ms + 60_000 + 600_000 }]);
  assert.deepEqual(waits({ kind: "ok" }), [{ kind: "wait", until_ms: now_ms + 3_600_000 }]);
  const set = supervisor_settings(load_config({ PIPELINE_BACKOFF_S: "5" }), "aaaaaaaaaaaa");
  assert.equal(set.pipeline_backoff_s, 5, "a set PIPELINE_BACKOFF_S wins");
});

const activities: Activity[] = ["starting", "updating", "running_jobs", "reloading", "waiting", "exited"];
const events: SupervisorEvent[] = [
  { kind: "started", now_ms }, { kind: "stop_signal", why: "SIGTERM" }, { kind: "reload_signal" }, { kind: "run_now" },
  { kind: "web_listening", url: "http://127.0.0.1:1", pid: 7 }, { kind: "web_exited", pid: 7 },
  { kind: "update_done", result: { outcome: "unchanged", commit: "aaaaaaaaaaaa" }, cancelled: false, now_ms },
  { kind: "update_done", result: { outcome: "updated", from: "aaaaaaaaaaaa", to: "dddddddddddd" }, cancelled: false, now_ms },
  { kind: "update_done", result: { outcome: "failed", reason: "x" }, cancelled: true, now_ms },
  { kind: "jobs_done", result: { kind: "ok" }, now_ms }, { kind: "jobs_done", result: { kind: "cancelled" }, now_ms },
  { kind: "wait_over", now_ms },
];

describe("every activity × every event, stopping or not", () => {
  for (const activity of activities) {
    for (const stopping of [false, true]) {
      test(`${activity}${stopping ? ", stopping" : ""}`, () => {
        for (const event of events) {
          const from = state({ activity, stopping, ready_sent: true, web_pid: 7 });
          const { state: to, actions } = supervisor_next(from, event, settings);
          const kinds = actions.map((action) => action.kind);
          const what = `${event.kind} while ${activity}${stopping ? ", stopping" : ""}`;
          if (activity === "exited") assert.deepEqual(actions, [], `${what}: an exited worker does nothing more`);
          // At most one piece of work at a time: a self-update or the jobs, and a wait only when nothing runs.
          assert.ok(kinds.filter((kind) => kind === "self_update" || kind === "run_jobs" || kind === "wait").length <= 1, what);
          if (kinds.includes("exit")) {
            assert.equal(to.activity, "exited", what);
            assert.equal(kinds.at(-1), "exit", `${what}: exit comes last`);
          }
          if (stopping) {
            assert.ok(!kinds.includes("self_update") && !kinds.includes("run_jobs") && !kinds.includes("wait"), `${what}: a stop starts no work`);
            const exit = actions.find((action) => action.kind === "exit");
            if (exit) assert.equal(exit.code, exit_codes.ok, `${what}: a stop exits 0`);
            assert.ok(!(to.ready_sent && !from.ready_sent), `${what}: no READY=1 while stopping`);
          }
          // Work starts only from a free loop, and the activity says which work runs.
          if (kinds.includes("self_update")) assert.ok(to.activity === "updating" || to.activity === "reloading", what);
          if (kinds.includes("run_jobs")) assert.equal(to.activity, "running_jobs", what);
          if (kinds.includes("wait")) assert.equal(to.activity, "waiting", what);
          if (["self_update", "run_jobs", "wait"].some((kind) => kinds.includes(kind as SupervisorAction["kind"]))) {
            assert.ok(["starting", "updating", "running_jobs", "reloading", "waiting"].includes(from.activity), what);
          }
        }
      });
    }
  }
});
