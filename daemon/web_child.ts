import { fork, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { setTimeout as sleep } from "node:timers/promises";
import type { Config } from "../config/schema.js";
import { child_env } from "../lib/child_env.js";
import { log } from "../lib/log.js";
import { compiled_path } from "../lib/paths.js";
import { web_env, web_exec_argv } from "../lib/web_launch.js";
import { next_restart_delay_ms, restart_delay_first_ms } from "./restart_delay.js";

/** What the web process tells the daemon over the fork IPC channel (the contract with web/main.ts). */
export type WebMessage = { type: "web_listening"; url: string } | { type: "run_now" };

export interface WebChildEvents {
  on_listening(url: string, pid: number): void;
  on_exit(pid: number): void;
  on_run_now(): void;
}

// After SIGKILL a process is gone within milliseconds; this only bounds a kernel surprise.
const kill_wait_ms = 2_000;

/**
 * The forked web server: re-forked whenever it exits, after a delay that grows while it keeps
 * dying young; stopped with SIGTERM, its own graceful shutdown bound plus a margin, then SIGKILL.
 */
export class WebChild {
  private child: ChildProcess | undefined;
  private stopping = false;
  private delay_ms: number | undefined;
  private restart_timer: NodeJS.Timeout | undefined;

  constructor(private readonly config: Config, private readonly events: WebChildEvents) {}

  get pid(): number | undefined {
    return this.child?.pid;
  }

  start(): void {
    const entry = compiled_path("web/main.ts");
    const started_ms = Date.now();
    // The web's DuckDB queries share libuv's threadpool with its file reads; the pool's size is
    // fixed when a process starts, so it is set here: the query cap plus room for fs.
    const threadpool = { UV_THREADPOOL_SIZE: process.env.UV_THREADPOOL_SIZE ?? String(this.config.web_query_concurrency_max + 2) };
    const child = fork(entry, [], { env: child_env({ ...threadpool, ...web_env }), execArgv: [...web_exec_argv],
      stdio: ["ignore", "inherit", "inherit", "ipc"] });
    this.child = child;
    const pid = child.pid ?? 0;
    log.info(`web: forked ${entry} as pid ${pid}`);
    child.on("message", (message: WebMessage) => {
      if (message?.type === "web_listening" && typeof message.url === "string") {
        log.info(`web: pid ${pid} listening at ${message.url}`);
        this.events.on_listening(message.url, pid);
      } else if (message?.type === "run_now") {
        this.events.on_run_now();
      }
    });
    child.on("error", (error) => log.error(`web: pid ${pid}: ${error.message}`));
    child.once("exit", (code, signal) => {
      if (this.child === child) this.child = undefined;
      this.events.on_exit(pid);
      if (this.stopping) return;
      const uptime_ms = Date.now() - started_ms;
      this.delay_ms = next_restart_delay_ms(this.delay_ms, uptime_ms, {
        first_ms: restart_delay_first_ms,
        max_ms: this.config.restart_delay_ms_max,
        reset_after_ms: this.config.restart_reset_s * 1000,
      });
      log.error(`web: pid ${pid} exited (${signal ?? `code ${code}`}) after ${uptime_ms} ms; re-forking in ${this.delay_ms} ms`);
      this.restart_timer = setTimeout(() => this.start(), this.delay_ms);
    });
  }

  /** SIGTERM, then SIGKILL after WEB_SHUTDOWN_GRACE_MS plus a margin or `budget_ms`, whichever is sooner. */
  async stop(budget_ms: number): Promise<void> {
    this.stopping = true;
    clearTimeout(this.restart_timer);
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = once(child, "exit");
    const margin_ms = 1_000;
    const grace_ms = Math.max(0, Math.min(this.config.web_shutdown_grace_ms + margin_ms, budget_ms - kill_wait_ms));
    child.kill("SIGTERM");
    if (await Promise.race([exited.then(() => true), sleep(grace_ms, false, { ref: false })])) return;
    log.warn(`web: pid ${child.pid} still running ${grace_ms} ms after SIGTERM; sending SIGKILL`);
    child.kill("SIGKILL");
    if (!(await Promise.race([exited.then(() => true), sleep(kill_wait_ms, false, { ref: false })]))) {
      log.error(`web: pid ${child.pid} survived SIGKILL for ${kill_wait_ms} ms`);
    }
  }
}
