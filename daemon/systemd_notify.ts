import { execFile } from "node:child_process";
import { log } from "../lib/log.js";

/**
 * Talks to systemd through the `systemd-notify` CLI. Node cannot send unix datagrams, and the
 * CLI also waits (BARRIER=1) until systemd has taken the message, which closes the race where
 * systemd can no longer attribute a message from an exited sender. It sends from its own PID,
 * so the unit needs NotifyAccess=all. Everything here is a no-op without NOTIFY_SOCKET.
 * Messages go out one at a time, in order.
 */
export class SystemdNotifier {
  private queue: Promise<void> = Promise.resolve();
  /** Messages queued or being sent. */
  private pending = 0;
  private watchdog_timer: NodeJS.Timeout | undefined;
  private readonly enabled: boolean;

  constructor(private readonly bounds: { timeout_ms: number; queue_max: number }, private readonly env: NodeJS.ProcessEnv = process.env) {
    this.enabled = Boolean(env.NOTIFY_SOCKET);
  }

  /**
   * Sends `NAME=value` lines as one message; resolves once it was sent or failed (logged). With
   * `queue_max` messages waiting already (systemd does not answer), the message is dropped, logged.
   */
  send(fields: Record<string, string>): Promise<void> {
    if (!this.enabled) return Promise.resolve();
    const args = Object.entries(fields).map(([name, value]) => `${name}=${value.replace(/\n/g, " ")}`);
    if (this.pending >= this.bounds.queue_max) {
      log.warn(`systemd-notify: ${this.pending} messages waiting (NOTIFY_QUEUE_MAX); dropping ${args.join(" ")}`);
      return this.queue;
    }
    this.pending += 1;
    this.queue = this.queue.then(() => new Promise<void>((resolve) => {
      execFile("systemd-notify", args, { env: this.env, timeout: this.bounds.timeout_ms }, (error, _stdout, stderr) => {
        if (error) log.warn(`systemd-notify ${args.join(" ")} failed: ${(stderr || error.message).trim()}`);
        this.pending -= 1;
        resolve();
      });
    }));
    return this.queue;
  }

  ready(status: string): Promise<void> {
    return this.send({ READY: "1", STATUS: status });
  }

  status(status: string): Promise<void> {
    return this.send({ STATUS: status });
  }

  /** systemd takes a reload to have started at MONOTONIC_USEC; without it RELOADING=1 is rejected. */
  reloading(status: string): Promise<void> {
    // process.hrtime reads CLOCK_MONOTONIC on Linux, the clock systemd means.
    const monotonic_usec = process.hrtime.bigint() / 1000n;
    return this.send({ RELOADING: "1", MONOTONIC_USEC: String(monotonic_usec), STATUS: status });
  }

  stopping(status: string): Promise<void> {
    return this.send({ STOPPING: "1", STATUS: status });
  }

  /**
   * WATCHDOG=1 at half of WATCHDOG_USEC, from the event loop: a wedged loop stops the pings.
   * WATCHDOG_PID names the service's main PID: ours, or the launcher's that forked us.
   */
  start_watchdog(): void {
    const usec = Number.parseInt(this.env.WATCHDOG_USEC ?? "", 10);
    const watched_pid = Number.parseInt(this.env.WATCHDOG_PID ?? "", 10);
    if (!this.enabled || !(usec > 0)) return;
    if (Number.isInteger(watched_pid) && watched_pid !== process.pid && watched_pid !== process.ppid) return;
    const interval_ms = Math.max(1, Math.floor(usec / 2000));
    log.info(`systemd watchdog: pinging every ${interval_ms} ms`);
    this.watchdog_timer = setInterval(() => void this.send({ WATCHDOG: "1" }), interval_ms);
    this.watchdog_timer.unref();
  }

  stop_watchdog(): void {
    clearInterval(this.watchdog_timer);
  }
}
