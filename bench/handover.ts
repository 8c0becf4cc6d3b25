import fs from "node:fs";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { wait_until } from "../test/support/daemon_process.js";
import { DeployedDaemon } from "../test/support/handover_events.js";
import { latency_quantile_ms, LoadClient, type LoadRequest } from "../test/support/load_client.js";
import { figure, sample, type Figure } from "./stats.js";
import type { BenchContext } from "./workspace.js";

const CLIENTS = 8;
const ROUTE = "/api/country/BR";

interface Event {
  id: string;
  what: string;
  act: (daemon: DeployedDaemon) => Promise<unknown>;
  /** The acceptance for the failed requests during the event. */
  goal: string;
  goal_met: (failed: LoadRequest[]) => boolean;
}

const none_failed = (failed: LoadRequest[]) => failed.length === 0;

// (d), systemctl restart with socket activation, is measured in bench/handover_systemd.ts.
const events: Event[] = [
  { id: "8c", what: "kill -9 of the worker", act: (d) => d.kill_worker(), goal: "0 failed", goal_met: none_failed },
  {
    id: "8e", what: "kill -9 of the web process", act: (d) => d.kill_web(),
    goal: `≤ 1 failed per connection (${CLIENTS}), 0 refused`,
    goal_met: (failed) => new Set(failed.map((r) => r.client)).size === failed.length &&
      failed.every((r) => r.outcome === "ECONNRESET" || r.outcome === "EPIPE"),
  },
  { id: "8a", what: "kill -HUP with a new commit on the origin", act: (d) => d.hup_with_new_commit(), goal: "0 failed", goal_met: none_failed },
  { id: "8b", what: "a self-update found by a cycle (Run now)", act: (d) => d.cycle_with_new_commit(), goal: "0 failed", goal_met: none_failed },
];

interface Measured {
  steady_p99_ms: number;
  worst_ms: number;
  failed: LoadRequest[];
}

/**
 * Before the event: the steady-state p99 over `steady_ms`; during it (from the act until the
 * daemon recovered, plus the requests it had queued): the worst latency and the failed requests.
 */
async function measure(load: LoadClient, daemon: DeployedDaemon, event: Event, steady_ms: number): Promise<Measured> {
  await wait_until("the daemon idle", 180_000, () => daemon.status().state === "idle");
  const steady_from_ms = load.mark();
  await sleep(steady_ms);
  const event_from_ms = load.mark();
  await event.act(daemon);
  const event_to_ms = load.mark();
  // Requests under way at the end finish after it: wait for a request started after it on every client.
  await wait_until("every client past the event", 60_000,
    () => new Set(load.requests.filter((r) => r.started_ms >= event_to_ms).map((r) => r.client)).size === CLIENTS);
  const steady = load.requests.filter((r) => r.started_ms >= steady_from_ms && r.started_ms + r.latency_ms < event_from_ms);
  const during = load.window(event_from_ms, event_to_ms);
  return {
    steady_p99_ms: latency_quantile_ms(steady, 0.99),
    worst_ms: Math.max(...during.map((r) => r.latency_ms)),
    failed: during.filter((r) => r.outcome !== "ok"),
  };
}

/** 8a–8e: the worst latency readers see while a process of the daemon is replaced, against the steady-state p99. */
export async function bench_handover(context: BenchContext): Promise<Figure[]> {
  const runs = context.quick ? 1 : 3;
  const steady_ms = context.quick ? 2_000 : 5_000;
  const daemon = await DeployedDaemon.start(fs.mkdtempSync(path.join(context.workspace.dir, "handover-")), { LOG_LEVEL: "warn" });
  const load = new LoadClient(daemon.web_url + ROUTE, { clients: CLIENTS, request_timeout_ms: 60_000, pause_after_failure_ms: 50 });
  try {
    const measured = new Map<string, Measured[]>(events.map((event) => [event.id, []]));
    for (let run = 0; run < runs; run++) {
      for (const event of events) measured.get(event.id)!.push(await measure(load, daemon, event, steady_ms));
    }
    return events.map((event) => {
      const all = measured.get(event.id)!;
      const failed = all.flatMap((m) => m.failed);
      const outcomes = [...new Set(failed.map((r) => r.outcome))].join(", ");
      return figure(event.id, `worst latency during ${event.what} vs steady-state p99, ${ROUTE}, ${CLIENTS} clients ` +
        `(${failed.length} failed${outcomes ? `: ${outcomes}` : ""} of ${all.length} run${all.length > 1 ? "s" : ""})`,
        sample(all.map((m) => m.worst_ms), "ms"), sample(all.map((m) => m.steady_p99_ms), "ms"), event.goal,
        () => all.every((m) => event.goal_met(m.failed)));
    });
  } finally {
    await load.stop();
    await daemon.cleanup();
  }
}
