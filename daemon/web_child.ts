import { fork, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import pTimeout from "p-timeout";
import type { Config } from "../config/schema.js";
import { child_env } from "../lib/child_env.js";
import { log } from "../lib/log.js";
import { compiled_path } from "../lib/paths.js";
import { listen_fd_variable, web_listen_fd, type WebMessage } from "../lib/contract.js";
import { web_env, web_exec_argv } from "../lib/web_launch.js";
import { restart_delay_first_ms } from "./restart_delay.js";
import { web_next, web_state_initial, type WebAction, type WebEvent, type WebState } from "./web_handover.js";

export interface WebChildEvents {
  /** `pid` takes the new connections now (the first web process, or one that took over). */
  on_serving(pid: number, url: string): void;
  on_exit(pid: number): void;
  on_run_now(): void;
}

interface Running {
  child: ChildProcess;
  started_ms: number;
  url: string | undefined;
  exited: Promise<unknown>;
  ready_timer: NodeJS.Timeout;
  kill_timer: NodeJS.Timeout | undefined;
}

// A retired web process gets WEB_SHUTDOWN_GRACE_MS, then closes DuckDB (web/main.ts allows ~0.7 s): then SIGKILL.
const retire_margin_ms = 1_000;
// After SIGKILL a process is gone within milliseconds; this only bounds a kernel surprise.
const kill_wait_ms = 2_000;

/**
 * The web processes, forked by the launcher with the listening socket as fd 4: the decisions are
 * web_handover.ts's, this class only forks, signals and keeps the timers (ready timeout, re-fork
 * delay, the grace of a retired process). A web process outlives any worker; it is replaced
 * (started, ready, then the old one retired) on `replace()`, re-forked when it dies.
 */
export class WebChild {
  private state: WebState = web_state_initial;
  private readonly running = new Map<number, Running>();
  private start_timer: NodeJS.Timeout | undefined;
  private stopped: Promise<void> | undefined;
  /** How long a retired web process may take before SIGKILL: its grace, or less when the daemon stops. */
  private retire_grace_ms: number;

  constructor(private readonly config: Config, private readonly listen_fd: number, private readonly events: WebChildEvents) {
    this.retire_grace_ms = config.web_shutdown_grace_ms + retire_margin_ms;
  }

  /** The web process taking new connections, if one does. */
  serving(): { pid: number; url: string } | undefined {
    const pid = this.state.serving;
    const url = pid === undefined ? undefined : this.running.get(pid)?.url;
    return pid !== undefined && url !== undefined ? { pid, url } : undefined;
  }

  start(): void {
    this.dispatch({ kind: "start" });
  }

  /** Hands over to a new web process on the code and settings as they are now. */
  replace(): void {
    this.dispatch({ kind: "replace" });
  }

  /** Retires every web process within `budget_ms`: SIGKILL for what still runs after its grace or the budget, whichever is sooner. */
  stop(budget_ms: number): Promise<void> {
    this.stopped ??= (async () => {
      clearTimeout(this.start_timer);
      this.retire_grace_ms = Math.max(0, Math.min(this.retire_grace_ms, budget_ms - kill_wait_ms));
      this.dispatch({ kind: "stop" });
      // A web process retired by a hand-over just before has its own, possibly later, SIGKILL: the sweep below bounds it.
      const all_exited = Promise.all([...this.running.values()].map((web) => web.exited));
      const wait_ms = this.retire_grace_ms + kill_wait_ms;
      if (await pTimeout(all_exited.then(() => true), { milliseconds: wait_ms, fallback: () => false })) return;
      log.error(`web: ${[...this.running.keys()].join(", ")} still running ${wait_ms} ms after the stop; sending SIGKILL`);
      for (const web of this.running.values()) web.child.kill("SIGKILL");
    })();
    return this.stopped;
  }

  private dispatch(event: WebEvent): void {
    const decision = web_next(this.state, event, {
      first_ms: restart_delay_first_ms, ms_max: this.config.restart_delay_ms_max, reset_after_ms: this.config.restart_reset_s * 1000,
    });
    this.state = decision.state;
    for (const action of decision.actions) this.perform(action);
  }

  private perform(action: WebAction): void {
    switch (action.kind) {
      case "fork": return this.fork();
      case "serve": return this.events.on_serving(action.pid, this.running.get(action.pid)!.url!);
      case "retire": return this.retire(action.pid);
      case "kill": return void this.running.get(action.pid)?.child.kill("SIGKILL");
      case "start_after":
        clearTimeout(this.start_timer);
        this.start_timer = setTimeout(() => this.dispatch({ kind: "start" }), action.delay_ms);
        return;
      case "log": return void log[action.level](action.message);
    }
  }

  private fork(): void {
    const entry = compiled_path("web/main.ts");
    // The web's DuckDB queries share libuv's threadpool with its file reads; the pool's size is
    // fixed when a process starts, so it is set here: the query cap plus room for fs.
    const env = child_env({
      UV_THREADPOOL_SIZE: process.env.UV_THREADPOOL_SIZE ?? String(this.config.web_query_concurrency_max + 2),
      ...web_env,
      [listen_fd_variable]: String(web_listen_fd),
    });
    let child: ChildProcess;
    try {
      child = fork(entry, [], { env, execArgv: [...web_exec_argv], stdio: ["ignore", "inherit", "inherit", "ipc", this.listen_fd] });
    } catch (error) {
      return this.dispatch({ kind: "fork_failed", reason: (error as Error).message });
    }
    const pid = child.pid;
    if (pid === undefined) {
      child.on("error", () => undefined); // reported here, once
      return this.dispatch({ kind: "fork_failed", reason: `no process for ${entry}` });
    }
    const timeout_ms = this.config.web_ready_timeout_ms;
    const web: Running = {
      child, started_ms: Date.now(), url: undefined, exited: once(child, "exit"), kill_timer: undefined,
      ready_timer: setTimeout(() => this.dispatch({ kind: "ready_timeout", pid, timeout_ms }), timeout_ms),
    };
    this.running.set(pid, web);
    log.info(`web: forked ${entry} as pid ${pid}`);
    child.on("message", (message: WebMessage) => {
      if (message?.type === "web_listening" && typeof message.url === "string") {
        log.info(`web: pid ${pid} listening at ${message.url}`);
        web.url = message.url;
        clearTimeout(web.ready_timer);
        this.dispatch({ kind: "listening", pid });
      } else if (message?.type === "run_now") {
        this.events.on_run_now();
      }
    });
    child.on("error", (error) => log.error(`web: pid ${pid}: ${error.message}`));
    child.once("exit", (code, signal) => {
      clearTimeout(web.ready_timer);
      clearTimeout(web.kill_timer);
      this.running.delete(pid);
      this.events.on_exit(pid);
      this.dispatch({ kind: "exited", pid, how: signal ?? `code ${code}`, uptime_ms: Date.now() - web.started_ms });
    });
    this.dispatch({ kind: "forked", pid });
  }

  /** SIGTERM; SIGKILL if it still runs after its grace (web/main.ts bounds its own stop by WEB_SHUTDOWN_GRACE_MS). */
  private retire(pid: number): void {
    const web = this.running.get(pid);
    if (!web) return;
    web.child.kill("SIGTERM");
    const grace_ms = this.retire_grace_ms;
    clearTimeout(web.kill_timer);
    web.kill_timer = setTimeout(() => {
      log.warn(`web: pid ${pid} still running ${grace_ms} ms after SIGTERM; sending SIGKILL`);
      web.child.kill("SIGKILL");
    }, grace_ms);
  }
}
