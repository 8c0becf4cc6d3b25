import http from "node:http";
import { performance } from "node:perf_hooks";
import { setTimeout as sleep } from "node:timers/promises";

/** One request of the load: when it started, how long it took, and 200 or what went wrong. */
export interface LoadRequest {
  client: number;
  started_ms: number;
  latency_ms: number;
  /** "ok" for a 200 with its whole body; else "status 503", or the error's code ("ECONNRESET", "ECONNREFUSED"). */
  outcome: string;
}

export interface LoadOptions {
  clients: number;
  /** Bound on one request, connect to last byte; past it the request counts as failed ("timeout"). */
  request_timeout_ms: number;
  /** Pause after a failed request, so that a refusing server is not hammered in a hot loop. */
  pause_after_failure_ms: number;
  /** Pause after a good one too: paced load (a soak's steady trickle) instead of as fast as the server answers. */
  pause_after_success_ms?: number;
}

/**
 * Steady load on one URL as dashboard readers make it: `clients` loops, each with its own
 * keep-alive connection (a fresh one when the server ends it, as after "Connection: close"),
 * one request at a time. Every request is kept, so a test can count failures and a bench can
 * read latencies for any window (`mark()`).
 */
export class LoadClient {
  readonly requests: LoadRequest[] = [];
  private running = true;
  private readonly loops: Promise<void>[];
  private readonly agents: http.Agent[];

  constructor(readonly url: string, readonly options: LoadOptions) {
    this.agents = Array.from({ length: options.clients }, () => new http.Agent({ keepAlive: true, maxSockets: 1 }));
    this.loops = this.agents.map((agent, client) => this.loop(client, agent));
  }

  /** The time now, on the clock of `started_ms`: the start of a window. */
  mark(): number {
    return performance.now();
  }

  /** The finished requests that were under way at some time in [from_ms, to_ms). */
  window(from_ms: number, to_ms = Infinity): LoadRequest[] {
    return this.requests.filter((request) => request.started_ms < to_ms && request.started_ms + request.latency_ms >= from_ms);
  }

  async stop(): Promise<void> {
    this.running = false;
    await Promise.all(this.loops);
    for (const agent of this.agents) agent.destroy();
  }

  private async loop(client: number, agent: http.Agent): Promise<void> {
    while (this.running) {
      const started_ms = performance.now();
      const outcome = await this.get(agent);
      this.requests.push({ client, started_ms, latency_ms: performance.now() - started_ms, outcome });
      const pause_ms = outcome === "ok" ? this.options.pause_after_success_ms ?? 0 : this.options.pause_after_failure_ms;
      if (pause_ms > 0) await sleep(pause_ms);
    }
  }

  private get(agent: http.Agent): Promise<string> {
    return new Promise((resolve) => {
      const request = http.get(this.url, { agent }, (response) => {
        response.resume();
        response.on("end", () => resolve(response.statusCode === 200 ? "ok" : `status ${response.statusCode}`));
        response.on("error", (error: NodeJS.ErrnoException) => resolve(error.code ?? error.message));
      });
      const timer = setTimeout(() => request.destroy(Object.assign(new Error("timeout"), { code: "timeout" })), this.options.request_timeout_ms);
      request.on("close", () => clearTimeout(timer));
      request.on("error", (error: NodeJS.ErrnoException) => resolve(error.code ?? error.message));
    });
  }
}

/** The failed requests among `requests`, as "outcome × count" lines for an assertion message. */
export function failure_summary(requests: LoadRequest[]): string {
  const counts = new Map<string, number>();
  for (const request of requests) if (request.outcome !== "ok") counts.set(request.outcome, (counts.get(request.outcome) ?? 0) + 1);
  return [...counts].map(([outcome, count]) => `${outcome} × ${count}`).join(", ") || "none";
}

/** The `q` quantile (0..1) of the requests' latencies, nearest rank. */
export function latency_quantile_ms(requests: LoadRequest[], q: number): number {
  if (requests.length === 0) throw new Error("no requests to take a latency quantile of");
  const sorted = requests.map((request) => request.latency_ms).sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)]!;
}
