import fs from "node:fs";
import net, { type AddressInfo } from "node:net";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { wait_until } from "../test/support/daemon_process.js";
import { DeployedDaemon } from "../test/support/handover_events.js";
import { serve_release, start_http_server } from "../test/support/http_server.js";
import { latency_quantile_ms, LoadClient, type LoadRequest } from "../test/support/load_client.js";
import { install_materia, supervisor_unit } from "../test/support/materia_systemd.js";
import { shipped_zip_path } from "../test/support/sandbox.js";
import { systemd_namespace_refused } from "../test/support/systemd_namespace.js";
import { figure, sample, type Figure } from "./stats.js";
import type { BenchContext } from "./workspace.js";

const CLIENTS = 8;
const ROUTE = "/api/country/BR";

interface Measured {
  steady_p99_ms: number;
  worst_ms: number;
  failed: LoadRequest[];
}

/**
 * Before the event: the steady-state p99 over `steady_ms`; during it (from the act until the
 * daemon recovered, and the requests it had queued): the worst latency and the failed requests.
 */
async function measure(load: LoadClient, act: () => Promise<unknown>, steady_ms: number): Promise<Measured> {
  const steady_from_ms = load.mark();
  await sleep(steady_ms);
  const event_from_ms = load.mark();
  await act();
  const event_to_ms = load.mark();
  // Requests under way at the end finish after it: wait for one started after it on every client.
  await wait_until("every client past the event", 60_000,
    () => new Set(load.requests.filter((r) => r.started_ms >= event_to_ms).map((r) => r.client)).size === CLIENTS);
  const steady = load.requests.filter((r) => r.started_ms >= steady_from_ms && r.started_ms + r.latency_ms < event_from_ms);
  const during = load.window(event_from_ms, event_to_ms);
  return {
    steady_p99_ms: latency_quantile_ms(steady, 0.99),
    // Not Math.max(...all): a long hand-over under a fast load has more requests than a call has room for arguments.
    worst_ms: during.reduce((worst, r) => Math.max(worst, r.latency_ms), 0),
    failed: during.filter((r) => r.outcome !== "ok"),
  };
}

interface Event {
  id: string;
  what: string;
  /** The acceptance for the failed requests of one run. */
  goal: string;
  goal_met: (failed: LoadRequest[]) => boolean;
}

const none_failed = { goal: "0 failed", goal_met: (failed: LoadRequest[]) => failed.length === 0 };

function report(event: Event, all: Measured[]): Figure {
  const failed = all.flatMap((m) => m.failed);
  const outcomes = [...new Set(failed.map((r) => r.outcome))].join(", ");
  return figure(event.id, `worst latency during ${event.what} vs steady-state p99, ${ROUTE}, ${CLIENTS} clients ` +
    `(${failed.length} failed${outcomes ? `: ${outcomes}` : ""} in ${all.length} run${all.length > 1 ? "s" : ""})`,
    sample(all.map((m) => m.worst_ms), "ms"), sample(all.map((m) => m.steady_p99_ms), "ms"), event.goal,
    () => all.every((m) => event.goal_met(m.failed)));
}

/** 9a, 9b, 9c, 9e: `materia daemon` as `npm start` runs it, on a checkout of a temporary git origin. */
async function without_systemd(context: BenchContext, runs: number, steady_ms: number): Promise<Figure[]> {
  const events: (Event & { act: (daemon: DeployedDaemon) => Promise<unknown> })[] = [
    { id: "9c", what: "kill -9 of the worker", act: (d) => d.kill_worker(), ...none_failed },
    {
      id: "9e", what: "kill -9 of the web process", act: (d) => d.kill_web(),
      goal: `≤ 1 failed per connection, 0 refused`,
      goal_met: (failed) => new Set(failed.map((r) => r.client)).size === failed.length &&
        failed.every((r) => r.outcome === "ECONNRESET" || r.outcome === "EPIPE"),
    },
    { id: "9a", what: "kill -HUP with a new commit on the origin", act: (d) => d.hup_with_new_commit(), ...none_failed },
    { id: "9b", what: "a self-update found by a cycle (Run now)", act: (d) => d.cycle_with_new_commit(), ...none_failed },
  ];
  const daemon = await DeployedDaemon.start(fs.mkdtempSync(path.join(context.workspace.dir, "handover-")), { LOG_LEVEL: "warn" });
  const load = new LoadClient(daemon.web_url + ROUTE, { clients: CLIENTS, request_timeout_ms: 60_000, pause_after_failure_ms: 50 });
  try {
    const measured = new Map<string, Measured[]>(events.map((event) => [event.id, []]));
    for (let run = 0; run < runs; run++) {
      for (const event of events) {
        // A worker started anew runs a cycle at once: measure from the quiet that follows it
        // (quick mode, which only keeps the figures from rotting, measures through it).
        if (!context.quick) await wait_until("the daemon idle", 180_000, () => daemon.status().state === "idle");
        measured.get(event.id)!.push(await measure(load, () => event.act(daemon), steady_ms));
      }
    }
    return events.map((event) => report(event, measured.get(event.id)!));
  } finally {
    await load.stop();
    await daemon.cleanup();
  }
}

/** 9d: `systemctl restart` with socket activation, under a real systemd (test/support/materia_systemd.ts). */
async function under_systemd(runs: number, steady_ms: number): Promise<Figure[]> {
  const event: Event = { id: "9d", what: "systemctl restart with socket activation (real systemd)", ...none_failed };
  const refused = await systemd_namespace_refused();
  if (refused) {
    console.error(`bench: 9d skipped: ${refused}`);
    return [];
  }
  const upstream = await start_http_server(serve_release(shipped_zip_path, '"psd-release-1"', "Tue, 12 Nov 2024 12:00:00 GMT"));
  try {
    // The socket unit needs a fixed port (ListenStream= takes no port 0): one free now.
    const probe = net.createServer();
    await new Promise<void>((resolve) => probe.listen(0, "127.0.0.1", resolve));
    const port = (probe.address() as AddressInfo).port;
    await new Promise<void>((resolve) => probe.close(() => resolve()));
    const materia = await install_materia({ PSD_SOURCE_URL: upstream.url, WEB_PORT: String(port), LOG_LEVEL: "warn" });
    const load = new LoadClient(`http://127.0.0.1:${port}${ROUTE}`, { clients: CLIENTS, request_timeout_ms: 60_000, pause_after_failure_ms: 50 });
    try {
      const all: Measured[] = [];
      for (let run = 0; run < runs; run++) {
        await wait_until("the daemon idle", 300_000, async () => (await materia.daemon_status())?.state === "idle");
        all.push(await measure(load, async () => {
          const restart = await materia.ns.systemctl("restart", supervisor_unit);
          if (restart.code !== 0) throw new Error(`systemctl restart failed: ${restart.stderr}`);
        }, steady_ms));
      }
      return [report(event, all)];
    } finally {
      await load.stop();
      await materia.cleanup();
    }
  } finally {
    await upstream.close();
  }
}

/** 9a–9e: the worst latency readers see while a process of the daemon is replaced, against the steady-state p99. */
export async function bench_handover(context: BenchContext): Promise<Figure[]> {
  const runs = context.quick ? 1 : 3;
  const steady_ms = context.quick ? 1_000 : 5_000;
  const figures = await without_systemd(context, runs, steady_ms);
  figures.push(...await under_systemd(runs, steady_ms));
  return figures;
}
