import type { Config } from "../config/schema.js";
import { pipeline_jobs } from "../jobs/registry.js";
import { judge_freshness, read_last_success, record_cycle_success, serving_published_at, stale_at_ms, type Freshness } from "../lib/freshness.js";
import { log } from "../lib/log.js";
import { acquire_pipeline_lock } from "../lib/pipeline_lock.js";
import { running_commit } from "../lib/version.js";
import { Alarm } from "./alarm.js";
import { restart_exit_code } from "./exit_codes.js";
import { HealthcheckPinger } from "./healthcheck_ping.js";
import { kill_left_groups } from "./job_groups.js";
import { JobRunner, type JobOutcome } from "./job_runner.js";
import { RunHistory, write_daemon_status, type DaemonStatus, type RunRecord } from "./run_history.js";
import { self_update } from "./self_update.js";
import { status_text } from "./status_text.js";
import { SystemdNotifier } from "./systemd_notify.js";
import type { LauncherMessage, WorkerMessage } from "./worker_ipc.js";

type CycleResult =
  | { kind: "ok" }
  | { kind: "failed"; cause: string; reason: string }
  | { kind: "cancelled" }
  | { kind: "restart" };

// The worker must be gone before the launcher's own bound (STOP_TIMEOUT_S) runs out.
const stop_margin_ms = 1_000;
// setTimeout's longest delay; a later stale instant is re-armed when it fires.
const timer_delay_ms_max = 2 ** 31 - 1;

/**
 * The daemon's loop, TigerBeetle's supervisor in TypeScript: update, run the jobs in order,
 * wait (interval after success, backoff after a failure), again; nothing in it throws out.
 * `run()` owns every decision of a cycle; the parts below it do one thing and report.
 * Resolves with the exit code: 0 after SIGTERM/SIGINT, `restart_exit_code` to be started
 * again on a new commit (after an update, or on SIGHUP).
 */
export class Supervisor {
  private readonly notifier: SystemdNotifier;
  private readonly runner: JobRunner;
  private readonly alarm = new Alarm();
  private readonly pinger: HealthcheckPinger;
  private readonly run_history: RunHistory;
  private status: DaemonStatus;
  /** The STATUS= text last sent: a new one goes out only when it differs. */
  private status_line = "";
  private last_success_at: string | null;
  private stale_timer: NodeJS.Timeout | undefined;
  private backoff_cause: string | null = null;
  private stop_requested = false;
  private reload_requested = false;
  private cycle_cancel: AbortController | undefined;
  private ready_sent = false;
  /** A commit that failed to build: cycles do not try it again, a SIGHUP does. */
  private unbuildable_commit: string | undefined;

  constructor(private readonly config: Config) {
    this.notifier = new SystemdNotifier(config.notify_timeout_ms);
    this.runner = new JobRunner(config);
    this.pinger = new HealthcheckPinger(config.healthcheck_ping_url, config.healthcheck_timeout_ms, config.log_line_bytes_max);
    this.run_history = new RunHistory(config.materia_state_dir, config.run_history_entries_max);
    this.last_success_at = read_last_success(config.materia_state_dir);
    this.status = {
      pid: process.ppid, worker_pid: process.pid, web_pid: null, commit: running_commit(), state: "starting",
      current_job: null, next_run_at: null, last_error: null, web_url: null, updated_at: new Date().toISOString(),
    };
  }

  async run(): Promise<number> {
    log.info(`materia daemon ${this.status.commit} started (worker pid ${process.pid}, daemon pid ${process.ppid})`);
    process.on("SIGTERM", () => this.on_stop_signal("SIGTERM"));
    process.on("SIGINT", () => this.on_stop_signal("SIGINT"));
    // The launcher died (kill -9): nobody would restart or stop this worker; stop as on TERM.
    process.on("disconnect", () => this.on_stop_signal("the daemon's launcher is gone"));
    process.on("SIGHUP", () => this.on_reload_signal());
    // The web processes are the launcher's (they outlive this worker): it tells us about them.
    process.on("message", (message: LauncherMessage) => this.on_launcher_message(message));
    process.send?.({ type: "worker_started" } satisfies WorkerMessage);
    this.update_status({ state: "starting" });
    this.arm_stale_timer();
    await this.clean_up_after_a_dead_worker();
    this.notifier.start_watchdog();

    let exit_code = 0;
    while (!this.stop_requested) {
      if (this.reload_requested && await this.reload() === "restart") {
        exit_code = restart_exit_code;
        break;
      }
      const cycle_started_ms = Date.now();
      this.pinger.start();
      const result = await this.run_cycle();
      if (result.kind === "restart") {
        exit_code = restart_exit_code;
        break;
      }
      if (this.stop_requested || result.kind === "cancelled") continue;
      if (result.kind === "ok") {
        this.record_success();
        this.pinger.success();
        this.backoff_cause = null;
        const next_ms = cycle_started_ms + this.config.pipeline_interval_s * 1000;
        this.update_status({ state: "idle", current_job: null, last_error: null, next_run_at: iso(next_ms) });
        log.info(`cycle ok; next run at ${iso(next_ms)}`);
      } else {
        this.pinger.fail(result.reason);
        this.backoff_cause = result.cause;
        const next_ms = Date.now() + this.config.pipeline_backoff_s * 1000;
        this.update_status({ state: "backoff", current_job: null, last_error: result.reason, next_run_at: iso(next_ms) });
        log.warn(`backoff after ${result.cause}: next attempt at ${iso(next_ms)}`);
      }
      await this.alarm.sleep(Math.max(0, Date.parse(this.status.next_run_at!) - Date.now()));
    }
    this.shut_down(exit_code);
    return exit_code;
  }

  /** Self-update, then each job in its Bree worker, under the pipeline lock. */
  private async run_cycle(): Promise<CycleResult> {
    const cancel = new AbortController();
    this.cycle_cancel = cancel;
    try {
      if (this.config.materia_git_ref !== "") this.update_status({ state: "updating", current_job: null, next_run_at: null });
      const update = await self_update(this.config, { cancel: cancel.signal, skip_commit: this.unbuildable_commit });
      if (update.outcome === "updated") {
        log.info(`update: now at ${update.to} (was ${update.from}); restarting on it`);
        await this.notifier.reloading(`restarting on ${update.to}`);
        return { kind: "restart" };
      }
      if (cancel.signal.aborted) return { kind: "cancelled" };
      if (update.outcome === "failed") {
        log.error(`update failed, running ${this.status.commit} still: ${update.reason}`);
        this.unbuildable_commit = update.unbuildable ?? this.unbuildable_commit;
      } else if (update.outcome === "disabled") {
        log.debug(`update: off (${update.reason})`);
      }

      let release_lock: () => void;
      try {
        release_lock = acquire_pipeline_lock(this.config.materia_state_dir);
      } catch (error) {
        log.error(`cycle skipped: ${(error as Error).message}`);
        return { kind: "failed", cause: "pipeline lock held", reason: (error as Error).message };
      }
      try {
        const cycle_id = new Date().toISOString().replace(/[-:]/g, "").replace("T", "-").slice(0, 19);
        for (const job of pipeline_jobs) {
          if (cancel.signal.aborted) return { kind: "cancelled" };
          const outcome = await this.run_job(cycle_id, job.name, cancel.signal);
          if (outcome === "cancelled") return { kind: "cancelled" };
          if (outcome.outcome !== "ok") return { kind: "failed", cause: `${job.name} ${outcome.outcome === "timeout" ? "timeout" : "failure"}`, reason: `${job.name}: ${outcome.message}` };
        }
        return { kind: "ok" };
      } finally {
        release_lock();
      }
    } finally {
      this.cycle_cancel = undefined;
    }
  }

  private async run_job(cycle_id: string, name: (typeof pipeline_jobs)[number]["name"], cancel: AbortSignal):
    Promise<"cancelled" | { outcome: JobOutcome; message: string }> {
    const record: RunRecord = {
      run_id: `${cycle_id}.${name}`, cycle_id, job: name, started_at: new Date().toISOString(), ended_at: null,
      outcome: "running", message: "", output_tail: "",
    };
    this.save_run(record);
    this.update_status({ state: "running", current_job: name });
    log.info(`${name}: started`);
    const started_ms = Date.now();
    const result = await this.runner.run(name, cancel).catch((error: Error) =>
      ({ outcome: "failed" as const, message: error.message, output_tail: "" }));
    this.save_run({ ...record, ended_at: new Date().toISOString(), ...result });
    const took = `${Date.now() - started_ms} ms`;
    switch (result.outcome) {
      case "ok": log.info(`${name}: ok in ${took}: ${result.message}`); break;
      case "cancelled": log.warn(`${name}: cancelled after ${took}: ${result.message}`); return "cancelled";
      case "timeout": log.error(`${name}: timeout: ${result.message}`); break;
      case "failed": log.error(`${name}: failed after ${took}: ${result.message}`); break;
    }
    return result;
  }

  /** SIGHUP: update, then restart on the checkout (new code, config re-read); a failed update keeps this one. */
  private async reload(): Promise<"restart" | "continue"> {
    this.reload_requested = false;
    await this.notifier.reloading("reloading: updating from git");
    this.update_status({ state: "updating", current_job: null, next_run_at: null });
    // Cancelled by a stop signal (bounded by STOP_TIMEOUT_S) or by another SIGHUP (which then reloads again).
    const cancel = new AbortController();
    this.cycle_cancel = cancel;
    const update = await self_update(this.config, { cancel: cancel.signal }).finally(() => (this.cycle_cancel = undefined));
    if (this.stop_requested) return "continue";
    if (update.outcome === "failed") {
      this.unbuildable_commit = update.unbuildable ?? this.unbuildable_commit;
      log.error(`reload: update failed, running ${this.status.commit} still: ${update.reason}`);
      // systemd holds the unit in "reloading" until READY=1, even after a failed reload.
      await this.notifier.ready(`reload failed, running ${this.status.commit}`);
      return "continue";
    }
    const what = update.outcome === "updated" ? `the new commit ${update.to}` : `${this.status.commit} (${update.outcome === "unchanged" ? "no newer commit" : update.reason})`;
    log.info(`reload: restarting on ${what}`);
    return "restart";
  }

  private on_stop_signal(why: string): void {
    if (this.stop_requested) return;
    this.stop_requested = true;
    log.info(`${why}: stopping (within STOP_TIMEOUT_S=${this.config.stop_timeout_s} s)`);
    const budget_ms = Math.max(this.config.stop_timeout_s * 1000 - stop_margin_ms, 500);
    const deadline = setTimeout(() => this.force_exit(budget_ms), budget_ms);
    deadline.unref();
    void this.notifier.stopping("stopping");
    this.update_status({ state: "stopping", next_run_at: null });
    this.cycle_cancel?.abort();
    this.alarm.ring();
  }

  private on_reload_signal(): void {
    if (this.stop_requested) return;
    log.info("SIGHUP: updating and restarting");
    this.reload_requested = true;
    this.cycle_cancel?.abort();
    this.alarm.ring();
  }

  /** The web admin page's "Run now": ends the wait at once; a running cycle is left alone. */
  private on_run_now(): void {
    if (this.cycle_cancel) {
      log.info("run now: ignored, a cycle is running");
      return;
    }
    log.info("run now: starting a cycle");
    this.alarm.ring();
  }

  private on_launcher_message(message: LauncherMessage): void {
    switch (message?.type) {
      case "web_listening": return this.on_web_listening(message.url, message.pid);
      case "web_exited":
        if (this.status.web_pid === message.pid) this.update_status({ web_pid: null, web_url: null });
        return;
      case "run_now": return this.on_run_now();
    }
  }

  private on_web_listening(url: string, pid: number): void {
    this.update_status({ web_url: url, web_pid: pid });
    if (this.ready_sent || this.stop_requested) return;
    // READY=1 once the loop runs and a web process listens.
    this.ready_sent = true;
    this.status_line = this.status_text();
    void this.notifier.ready(this.status_line);
  }

  private shut_down(exit_code: number): void {
    this.notifier.stop_watchdog();
    clearTimeout(this.stale_timer);
    log.info(exit_code === restart_exit_code ? "worker exiting, to be started again on the checkout as it is now" : "stopped");
  }

  kill_job_groups_now(): void {
    this.runner.kill_groups_now();
  }

  /** A stop step overran its bound: kill what is left rather than outlive STOP_TIMEOUT_S. */
  private force_exit(budget_ms: number): void {
    log.error(`stop did not finish within ${budget_ms} ms; killing the job's process groups`);
    this.runner.kill_groups_now();
    process.exit(1);
  }

  /** What a worker that died (kill -9, out of memory) left: its job's process groups, its unfinished runs. */
  private async clean_up_after_a_dead_worker(): Promise<void> {
    try {
      const release_lock = acquire_pipeline_lock(this.config.materia_state_dir);
      try {
        const killed = await kill_left_groups(this.config.materia_state_dir, this.config.subprocess_kill_grace_ms);
        if (killed > 0) log.warn(`killed ${killed} process group(s) left by a worker that died`);
        const closed = this.run_history.close_unfinished("the daemon died while it ran");
        if (closed > 0) log.warn(`run history: ${closed} run(s) left running by a daemon that died marked cancelled`);
      } finally {
        release_lock();
      }
    } catch (error) {
      log.warn(`nothing cleaned up after a dead worker: ${(error as Error).message}`);
    }
  }

  private update_status(change: Partial<DaemonStatus>): void {
    this.status = { ...this.status, ...change, updated_at: new Date().toISOString() };
    try {
      write_daemon_status(this.config.materia_state_dir, this.status);
    } catch (error) {
      log.error(`cannot write the daemon status: ${(error as Error).message}`);
    }
    this.send_status(change.state !== undefined);
  }

  private send_status(even_if_unchanged: boolean): void {
    const line = this.status_text();
    if (line === this.status_line && !even_if_unchanged) return;
    this.status_line = line;
    void this.notifier.status(line);
  }

  private status_text(): string {
    return status_text(this.status, this.backoff_cause, judge_freshness(this.freshness(), Date.now(), this.config.stale_after_s));
  }

  private freshness(): Freshness {
    return { last_success_at: this.last_success_at, last_publish_at: serving_published_at(this.config.serving_duckdb_path) };
  }

  private record_success(): void {
    const now = new Date();
    this.last_success_at = now.toISOString();
    try {
      record_cycle_success(this.config.materia_state_dir, now);
    } catch (error) {
      log.error(`cannot record the successful cycle: ${(error as Error).message}`);
    }
    this.arm_stale_timer();
  }

  /** STATUS must say "stale" when the data turns stale, which may happen in the middle of a wait. */
  private arm_stale_timer(): void {
    clearTimeout(this.stale_timer);
    const at_ms = stale_at_ms(this.freshness(), this.config.stale_after_s);
    // Nothing to judge yet, or stale already (STATUS says so at its next change).
    if (at_ms === undefined || at_ms <= Date.now()) return;
    this.stale_timer = setTimeout(() => {
      this.send_status(false);
      // A publish by hand may have moved the stale instant: judge again from what is on disk now.
      this.arm_stale_timer();
    }, Math.min(at_ms - Date.now(), timer_delay_ms_max));
    this.stale_timer.unref();
  }

  private save_run(record: RunRecord): void {
    try {
      this.run_history.record(record);
    } catch (error) {
      log.error(`cannot record run ${record.run_id}: ${(error as Error).message}`);
    }
  }
}

const iso = (ms: number) => new Date(ms).toISOString();
