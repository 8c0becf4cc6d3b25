import { log } from "../lib/log.js";

/**
 * The push half of the dead-man's switch, in healthchecks.io's convention: `<url>/start` when a
 * cycle starts, `<url>` when it succeeds, `<url>/fail` with the one-line reason as the body when
 * it fails; the service then alerts when a success stops arriving. A ping never blocks or fails
 * a cycle: the calls return at once, pings go out one at a time in order, each bounded by
 * HEALTHCHECK_TIMEOUT_MS, and a failed ping is only logged. A no-op when the URL is empty.
 */
export class HealthcheckPinger {
  /** A cycle sends two pings; this many waiting means the endpoint hangs: drop rather than pile up. */
  private static readonly pending_max = 8;
  private queue: Promise<void> = Promise.resolve();
  private pending = 0;
  private readonly base_url: string;

  constructor(url: string, private readonly timeout_ms: number, private readonly body_bytes_max: number) {
    this.base_url = url.replace(/\/+$/, "");
  }

  start(): void {
    this.ping("/start", "");
  }

  success(): void {
    this.ping("", "");
  }

  fail(reason: string): void {
    this.ping("/fail", reason);
  }

  /** Resolves once every ping queued so far was sent or given up (for tests and a graceful stop). */
  settled(): Promise<void> {
    return this.queue;
  }

  private ping(suffix: string, body: string): void {
    if (this.base_url === "") return;
    const what = suffix === "" ? "success" : suffix.slice(1);
    if (this.pending >= HealthcheckPinger.pending_max) {
      log.warn(`healthcheck: ${this.pending} pings still waiting on HEALTHCHECK_PING_URL; dropped the ${what} ping`);
      return;
    }
    this.pending++;
    const payload = Buffer.from(body.replace(/\r?\n/g, " ")).subarray(0, this.body_bytes_max).toString("utf8").replace(/\uFFFD$/, "");
    this.queue = this.queue.then(() => this.send(`${this.base_url}${suffix}`, what, payload)).finally(() => this.pending--);
  }

  private async send(url: string, what: string, payload: string): Promise<void> {
    // A plain timer: Node 20 can collect an AbortSignal.timeout combined with others before it fires.
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(), this.timeout_ms);
    try {
      const response = await fetch(url, { method: "POST", body: payload, signal: abort.signal });
      await response.arrayBuffer();
      if (!response.ok) log.warn(`healthcheck: the ${what} ping got HTTP ${response.status}`);
    } catch (error) {
      const reason = abort.signal.aborted ? `no answer within HEALTHCHECK_TIMEOUT_MS=${this.timeout_ms}` : (error as Error).message;
      log.warn(`healthcheck: the ${what} ping failed: ${reason}`);
    } finally {
      clearTimeout(timer);
    }
  }
}
