import type { IncomingMessage, ServerResponse } from "node:http";
import { log } from "../lib/log.js";
import { LatencyHistogram } from "./latency_histogram.js";

// The access log, sized for a journal: a line per request would be the bottleneck at thousands
// of requests a second, and past journald's rate limit it would drop every other line too, the
// daemon's errors among them. So: one info line per interval with the counts by status class and
// the latency quantiles; a line per request at debug; server errors (5xx), responses cut off and
// requests slower than the bound logged one by one at warn, at most `lines_max` per interval
// (the summary counts the rest). Requests the fast path answers are counted like any other.

export interface AccessLogOptions {
  /** WEB_ACCESS_LOG_INTERVAL_S, in ms: how often the summary line is written. */
  interval_ms: number;
  /** WEB_ACCESS_LOG_SLOW_MS: a request that took longer is logged on its own. */
  slow_ms: number;
  /** WEB_ACCESS_LOG_LINES_MAX: lines of single requests (errors, slow ones) per interval. */
  lines_max: number;
}

const logged_url_chars_max = 300;

export type StatusClass = "2xx" | "3xx" | "4xx" | "5xx" | "cut off";
const status_classes: readonly StatusClass[] = ["2xx", "3xx", "4xx", "5xx", "cut off"];

/** How a finished request counts: a response that did not reach its end is "cut off", whatever its status said. */
export function status_class(status: number, finished: boolean): StatusClass {
  if (!finished) return "cut off";
  if (status >= 500) return "5xx";
  if (status >= 400) return "4xx";
  if (status >= 300) return "3xx";
  return "2xx";
}

/** Whether a request deserves a line of its own at the default level. */
export function worth_a_line(kind: StatusClass, latency_ms: number, slow_ms: number): boolean {
  return kind === "5xx" || kind === "cut off" || latency_ms > slow_ms;
}

/** The requests of one interval, in fixed memory. */
export class AccessLogInterval {
  readonly started_ms = Date.now();
  readonly latency = new LatencyHistogram();
  readonly counts = new Map<StatusClass, number>();
  slow = 0;
  lines = 0;
  lines_left_out = 0;
}

/** The summary line of one interval; undefined when no request came. */
export function summary_line(interval: AccessLogInterval, ended_ms: number, slow_ms: number): string | undefined {
  const { latency } = interval;
  if (latency.count === 0) return undefined;
  const seconds = Math.max(1, Math.round((ended_ms - interval.started_ms) / 1000));
  const counts = status_classes.map((kind) => `${kind} ${interval.counts.get(kind) ?? 0}`).join(", ");
  const left_out = interval.lines_left_out > 0 ? `; ${interval.lines_left_out} error or slow lines left out` : "";
  return `web: ${latency.count} requests in ${seconds} s (${counts}); latency p50 ${ms(latency.quantile_ms(0.5))}, ` +
    `p99 ${ms(latency.quantile_ms(0.99))}, max ${ms(latency.max_ms)}; ${interval.slow} over ${slow_ms} ms${left_out}`;
}

const ms = (value: number) => `${value < 10 ? value.toFixed(1) : Math.round(value)} ms`;

export class AccessLog {
  private interval = new AccessLogInterval();
  private readonly timer: NodeJS.Timeout;

  constructor(private readonly options: AccessLogOptions) {
    this.timer = setInterval(() => this.flush(), options.interval_ms);
    this.timer.unref();
  }

  /** Call first thing for every request: it is counted when its response closes. */
  observe(req: IncomingMessage, res: ServerResponse): void {
    const started = process.hrtime.bigint();
    // Now: Express rewrites req.url while a mounted router handles it.
    const url = req.url ?? "";
    res.once("close", () => this.record(req.method ?? "", url, res, Number(process.hrtime.bigint() - started) / 1e6));
  }

  /** Writes the summary of the requests since the last one; the web calls it once more when it stops. */
  flush(): void {
    const now_ms = Date.now();
    const line = summary_line(this.interval, now_ms, this.options.slow_ms);
    this.interval = new AccessLogInterval();
    if (line !== undefined) log.info(line);
  }

  close(): void {
    clearInterval(this.timer);
    this.flush();
  }

  private record(method: string, url: string, res: ServerResponse, latency_ms: number): void {
    const interval = this.interval;
    const kind = status_class(res.statusCode, res.writableFinished);
    interval.latency.record(latency_ms);
    interval.counts.set(kind, (interval.counts.get(kind) ?? 0) + 1);
    if (latency_ms > this.options.slow_ms) interval.slow++;
    const alone = worth_a_line(kind, latency_ms, this.options.slow_ms);
    if (!alone && !log.isDebugEnabled()) return;
    const shown_url = url.length > logged_url_chars_max ? url.slice(0, logged_url_chars_max) + "…" : url;
    const line = `web: ${method} ${shown_url} ${res.statusCode}${kind === "cut off" ? " cut off" : ""} ${latency_ms.toFixed(1)} ms`;
    if (!alone) return void log.debug(line);
    if (interval.lines >= this.options.lines_max) {
      interval.lines_left_out++;
      return;
    }
    interval.lines++;
    log.warn(latency_ms > this.options.slow_ms ? `${line} (slow: over WEB_ACCESS_LOG_SLOW_MS=${this.options.slow_ms})` : line);
  }
}
