import { next_restart_delay_ms, type RestartDelayBounds } from "./restart_delay.js";

// Which web processes run, and what happens to them next: the launcher's decisions about the web,
// as a pure function of (state, event) → (state, actions). web_child.ts carries the actions out.
//
// At most one web process is `serving` (it said it listens, so it takes new connections) and one is
// `starting` (forked, not listening yet). A hand-over starts a new one while the old one serves; only
// once the new one listens is the old one retired: it stops accepting, finishes its requests and
// exits. Connections never wait on nobody for longer than a start, because the launcher holds the
// listening socket and the kernel queues them.

export interface WebState {
  serving: number | undefined;
  starting: number | undefined;
  /** The last re-fork delay: it grows while web processes keep dying young. */
  delay_ms: number | undefined;
  stopping: boolean;
}

export const web_state_initial: WebState = { serving: undefined, starting: undefined, delay_ms: undefined, stopping: false };

export type WebEvent =
  /** The daemon starts, or a re-fork delay ended. */
  | { kind: "start" }
  /** New code or settings (a HUP, a self-update): hand over to a new web process. */
  | { kind: "replace" }
  | { kind: "forked"; pid: number }
  | { kind: "fork_failed"; reason: string }
  | { kind: "listening"; pid: number }
  | { kind: "ready_timeout"; pid: number; timeout_ms: number }
  /** `how`: "code 1", "SIGKILL". */
  | { kind: "exited"; pid: number; how: string; uptime_ms: number }
  | { kind: "stop" };

export type WebAction =
  | { kind: "fork" }
  /** `pid` takes the new connections from now on. */
  | { kind: "serve"; pid: number }
  /** SIGTERM: stop accepting, finish the requests under way (bounded grace), exit. */
  | { kind: "retire"; pid: number }
  /** SIGKILL: a web process that never became ready. */
  | { kind: "kill"; pid: number }
  | { kind: "start_after"; delay_ms: number }
  | { kind: "log"; level: "info" | "error"; message: string };

export interface WebDecision {
  state: WebState;
  actions: WebAction[];
}

export function web_next(state: WebState, event: WebEvent, delays: RestartDelayBounds): WebDecision {
  const none = { state, actions: [] };
  switch (event.kind) {
    case "start":
      return state.stopping || state.serving !== undefined || state.starting !== undefined ? none : { state, actions: [{ kind: "fork" }] };
    case "replace":
      return state.stopping ? none : { state, actions: [{ kind: "fork" }] };
    case "forked":
      // A replace during a replace: the newer one wins; the older one never served.
      return {
        state: { ...state, starting: event.pid },
        actions: state.starting === undefined ? [] : [{ kind: "retire", pid: state.starting }],
      };
    case "fork_failed":
      return lost_before_ready(state, `web: fork failed: ${event.reason}`, 0, delays);
    case "listening": {
      if (event.pid !== state.starting) return none; // one already retired, telling late
      const next = { ...state, serving: event.pid, starting: undefined };
      if (state.serving === undefined) return { state: next, actions: [{ kind: "serve", pid: event.pid }] };
      return {
        state: next,
        actions: [
          { kind: "serve", pid: event.pid },
          { kind: "log", level: "info", message: `web: pid ${event.pid} listens; pid ${state.serving} stops accepting and finishes its requests` },
          { kind: "retire", pid: state.serving },
        ],
      };
    }
    case "ready_timeout":
      if (event.pid !== state.starting) return none;
      return {
        state,
        actions: [
          { kind: "log", level: "error", message: `web: pid ${event.pid} did not listen within WEB_READY_TIMEOUT_MS=${event.timeout_ms}; killing it` },
          { kind: "kill", pid: event.pid },
        ],
      };
    case "exited": {
      const died = `web: pid ${event.pid} exited (${event.how}) after ${event.uptime_ms} ms`;
      if (state.stopping || (event.pid !== state.serving && event.pid !== state.starting)) {
        // Retired (or stopped) and done: what it was told to do.
        return { state: forget(state, event.pid), actions: [{ kind: "log", level: "info", message: `web: pid ${event.pid} stopped (${event.how})` }] };
      }
      if (event.pid === state.starting) return lost_before_ready(forget(state, event.pid), died, event.uptime_ms, delays);
      if (state.starting !== undefined) {
        return { state: forget(state, event.pid), actions: [{ kind: "log", level: "error", message: `${died}; pid ${state.starting} takes over once it listens` }] };
      }
      return refork(forget(state, event.pid), died, event.uptime_ms, delays);
    }
    case "stop": {
      const running = [state.serving, state.starting].filter((pid): pid is number => pid !== undefined);
      return { state: { ...state, stopping: true }, actions: running.map((pid) => ({ kind: "retire", pid })) };
    }
  }
}

function forget(state: WebState, pid: number): WebState {
  return {
    ...state,
    serving: state.serving === pid ? undefined : state.serving,
    starting: state.starting === pid ? undefined : state.starting,
  };
}

/** A web process that never listened: the one serving keeps serving, or, with none, another is forked after a delay. */
function lost_before_ready(state: WebState, what: string, uptime_ms: number, delays: RestartDelayBounds): WebDecision {
  if (state.stopping) return { state, actions: [] };
  if (state.serving !== undefined) {
    return { state, actions: [{ kind: "log", level: "error", message: `${what} before it listened; pid ${state.serving} keeps serving` }] };
  }
  return refork(state, what, uptime_ms, delays);
}

/**
 * A web process that served a while died of something new: another one is forked at once, since
 * readers wait in the socket's backlog meanwhile. One that keeps dying young: growing delays.
 */
function refork(state: WebState, what: string, uptime_ms: number, delays: RestartDelayBounds): WebDecision {
  if (uptime_ms >= delays.reset_after_ms) {
    return { state: { ...state, delay_ms: undefined }, actions: [{ kind: "log", level: "error", message: `${what}; re-forking now` }, { kind: "fork" }] };
  }
  const delay_ms = next_restart_delay_ms(state.delay_ms, uptime_ms, delays);
  return {
    state: { ...state, delay_ms },
    actions: [{ kind: "log", level: "error", message: `${what}; re-forking in ${delay_ms} ms` }, { kind: "start_after", delay_ms }],
  };
}
