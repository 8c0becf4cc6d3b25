import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { systemd_listen_fd } from "../daemon/listen_socket.js";
import { web_next, web_state_initial, type WebAction, type WebEvent, type WebState } from "../daemon/web_handover.js";
import { inherited_listen_fd } from "../lib/contract.js";

const delays = { first_ms: 500, ms_max: 2_000, reset_after_ms: 60_000 };

/** Runs `events` from the initial state; the final state and every action, logs as "log:<level>". */
function run(events: WebEvent[], from: WebState = web_state_initial): { state: WebState; actions: string[] } {
  let state = from;
  const actions: string[] = [];
  for (const event of events) {
    const decision = web_next(state, event, delays);
    state = decision.state;
    actions.push(...decision.actions.map(show));
  }
  return { state, actions };
}

function show(action: WebAction): string {
  switch (action.kind) {
    case "fork": return "fork";
    case "start_after": return `start_after ${action.delay_ms}`;
    case "log": return `log:${action.level}`;
    default: return `${action.kind} ${action.pid}`;
  }
}

const serving_10: WebEvent[] = [{ kind: "start" }, { kind: "forked", pid: 10 }, { kind: "listening", pid: 10 }];

describe("the web hand-over decisions (web_next)", () => {
  const cases: [string, WebEvent[], Partial<WebState>, string[]][] = [
    ["the first web process is forked, then serves",
      serving_10, { serving: 10, starting: undefined }, ["fork", "serve 10"]],
    ["a replace starts the new process while the old one serves, and retires the old one only once the new one listens",
      [...serving_10, { kind: "replace" }, { kind: "forked", pid: 11 }, { kind: "listening", pid: 11 }],
      { serving: 11, starting: undefined }, ["fork", "serve 10", "fork", "serve 11", "log:info", "retire 10"]],
    ["until the new process listens, the old one is not touched",
      [...serving_10, { kind: "replace" }, { kind: "forked", pid: 11 }], { serving: 10, starting: 11 }, ["fork", "serve 10", "fork"]],
    ["a new process that dies before it listens leaves the old one serving, with no re-fork",
      [...serving_10, { kind: "replace" }, { kind: "forked", pid: 11 }, { kind: "exited", pid: 11, how: "code 1", uptime_ms: 300 }],
      { serving: 10, starting: undefined }, ["fork", "serve 10", "fork", "log:error"]],
    ["a new process that does not listen in time is killed; the old one keeps serving",
      [...serving_10, { kind: "replace" }, { kind: "forked", pid: 11 }, { kind: "ready_timeout", pid: 11, timeout_ms: 30_000 },
        { kind: "exited", pid: 11, how: "SIGKILL", uptime_ms: 30_000 }],
      { serving: 10, starting: undefined }, ["fork", "serve 10", "fork", "log:error", "kill 11", "log:error"]],
    ["a ready timeout of a process that listens since is ignored",
      [...serving_10, { kind: "ready_timeout", pid: 10, timeout_ms: 30_000 }], { serving: 10 }, ["fork", "serve 10"]],
    ["a replace during a replace retires the older newcomer, which never served",
      [...serving_10, { kind: "replace" }, { kind: "forked", pid: 11 }, { kind: "replace" }, { kind: "forked", pid: 12 },
        { kind: "listening", pid: 11 }, { kind: "listening", pid: 12 }],
      { serving: 12, starting: undefined }, ["fork", "serve 10", "fork", "fork", "retire 11", "serve 12", "log:info", "retire 10"]],
    ["a retired process that exits is what it was told: no re-fork",
      [...serving_10, { kind: "replace" }, { kind: "forked", pid: 11 }, { kind: "listening", pid: 11 },
        { kind: "exited", pid: 10, how: "code 0", uptime_ms: 5_000 }],
      { serving: 11 }, ["fork", "serve 10", "fork", "serve 11", "log:info", "retire 10", "log:info"]],
    ["the serving process crashes after serving a while: re-forked at once, and a crash soon after waits the first delay",
      [...serving_10, { kind: "exited", pid: 10, how: "SIGKILL", uptime_ms: 120_000 }, { kind: "forked", pid: 11 },
        { kind: "exited", pid: 11, how: "code 1", uptime_ms: 300 }],
      { serving: undefined, delay_ms: 500 }, ["fork", "serve 10", "log:error", "fork", "log:error", "start_after 500"]],
    ["web processes dying young are re-forked after growing delays, capped",
      [{ kind: "start" }, { kind: "forked", pid: 10 }, { kind: "exited", pid: 10, how: "code 1", uptime_ms: 200 },
        { kind: "start" }, { kind: "forked", pid: 11 }, { kind: "exited", pid: 11, how: "code 1", uptime_ms: 200 },
        { kind: "start" }, { kind: "forked", pid: 12 }, { kind: "exited", pid: 12, how: "code 1", uptime_ms: 200 },
        { kind: "start" }, { kind: "forked", pid: 13 }, { kind: "exited", pid: 13, how: "code 1", uptime_ms: 200 }],
      { delay_ms: 2_000 }, ["fork", "log:error", "start_after 500", "fork", "log:error", "start_after 1000",
        "fork", "log:error", "start_after 2000", "fork", "log:error", "start_after 2000"]],
    ["the serving process crashes during a hand-over: the newcomer takes over, no extra fork",
      [...serving_10, { kind: "replace" }, { kind: "forked", pid: 11 }, { kind: "exited", pid: 10, how: "SIGKILL", uptime_ms: 9_000 },
        { kind: "listening", pid: 11 }],
      { serving: 11, starting: undefined }, ["fork", "serve 10", "fork", "log:error", "serve 11"]],
    ["a re-fork delay that ends while a process serves forks nothing",
      [...serving_10, { kind: "start" }], { serving: 10 }, ["fork", "serve 10"]],
    ["a failed fork with nothing serving is retried after the delay",
      [{ kind: "start" }, { kind: "fork_failed", reason: "EAGAIN" }], { delay_ms: 500 }, ["fork", "log:error", "start_after 500"]],
    ["stop retires the serving and the starting process, and nothing is forked after",
      [...serving_10, { kind: "replace" }, { kind: "forked", pid: 11 }, { kind: "stop" }, { kind: "exited", pid: 10, how: "code 0", uptime_ms: 9_000 },
        { kind: "exited", pid: 11, how: "SIGTERM", uptime_ms: 100 }, { kind: "start" }, { kind: "replace" }],
      { serving: undefined, starting: undefined, stopping: true }, ["fork", "serve 10", "fork", "retire 10", "retire 11", "log:info", "log:info"]],
  ];
  for (const [name, events, expected_state, expected_actions] of cases) {
    test(name, () => {
      const { state, actions } = run(events);
      assert.deepEqual(actions, expected_actions);
      for (const [key, value] of Object.entries(expected_state)) assert.equal(state[key as keyof WebState], value, key);
    });
  }
});

describe("the listening socket's handshakes", () => {
  test("systemd's LISTEN_FDS=1 for this PID is fd 3; variables for another PID are not ours", () => {
    assert.equal(systemd_listen_fd({ LISTEN_PID: "42", LISTEN_FDS: "1" }, 42), 3);
    assert.equal(systemd_listen_fd({ LISTEN_PID: "41", LISTEN_FDS: "1" }, 42), undefined);
    assert.equal(systemd_listen_fd({ LISTEN_FDS: "1" }, 42), undefined);
    assert.equal(systemd_listen_fd({}, 42), undefined);
  });

  test("more than one socket from systemd is refused, naming the unit to fix", () => {
    assert.throws(() => systemd_listen_fd({ LISTEN_PID: "42", LISTEN_FDS: "2" }, 42),
      /^Error: systemd passed LISTEN_FDS=2: materia-web\.socket must have exactly one ListenStream=$/);
  });

  test("MATERIA_WEB_LISTEN_FD names an inherited fd; anything else is a one-line config error", () => {
    assert.equal(inherited_listen_fd({ MATERIA_WEB_LISTEN_FD: "4" }), 4);
    assert.equal(inherited_listen_fd({}), undefined);
    for (const bad of ["", "four", "1", "-4", "4.5"]) {
      assert.throws(() => inherited_listen_fd({ MATERIA_WEB_LISTEN_FD: bad }),
        new RegExp(`^Error: config: MATERIA_WEB_LISTEN_FD must name an inherited file descriptor, 3 or more \\(got "${bad.replace(".", "\\.")}"\\)$`));
    }
  });
});
