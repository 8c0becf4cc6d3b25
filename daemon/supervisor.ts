import type { Config } from "../config/schema.js";
import type { JobName } from "../jobs/job.js";
import { pipeline_jobs } from "../jobs/registry.js";
import { judge_freshness, read_last_success, record_cycle_success, serving_published_at, stale_at_ms, type Freshness } from "../lib/freshness.js";
import { exit_codes, type DaemonStatus, type LauncherMessage, type RunRecord, type WorkerMessage } from "../lib/contract.js";
import { log } from "../lib/log.js";
import { acquire_pipeline_lock } from "../lib/pipeline_lock.js";
import { RunHistory, write_daemon_status } from "../lib/run_history.js";
import { running_commit } from "../lib/version.js";
import { Alarm } from "./alarm.js";
import { HealthcheckPinger } from "./healthcheck_ping.js";
import { kill_left_groups } from "./job_groups.js";
import { JobRunner, type JobRunResult } from "./job_runner.js";
import { self_update } from "./self_update.js";
import { status_text } from "./status_text.js";
import { supervisor_next, supervisor_settings, supervisor_state_initial, type JobsResult, type SupervisorAction, type SupervisorEvent, type SupervisorSettings, type SupervisorState } from "./supervisor_next.js";
import { SystemdNotifier } from "./systemd_notify.js";

// The worker must be gone before the launcher's own bound (STOP_TIMEOUT_S) runs out.
const stop_margin_ms = 1_000;
// setTimeout's longest delay; a later stale instant is re-armed when it fires.
const timer_delay_ms_max = 2 ** 31 - 1;

/**
 * The daemon's loop, TigerBeetle's supervisor in TypeScript: update, run the jobs in order,
 * wait (interval after success, backoff after a failure), again; nothing in it throws out.
 * Every decision is supervisor_next.ts's, a pure function of (state, event); this class turns
 * signals, messages and the ends of its work into events and carries out the actions.
 * Resolves with the exit code: 0 after SIGTERM/SIGINT, `exit_codes.restart` to be started
 * again on a new commit (after an update, or on SIGHUP).
 */
export class Supervisor {
  private readonly notifier: SystemdNotifier;
  private readonly runner: JobRunner;
  private readonly alarm = new Alarm();
  private readonly pinger: HealthcheckPinger;
  private readonly settings: SupervisorSettings;
  private state: SupervisorState = supervisor_state_initial;
  /** Actions are carried out in order: one that notifies systemd is waited for before the next. */
  private effects: Promise<void> = Promise.resolve();
  /** The cancel of the self-update or jobs under way. */
  private work_cancel: AbortController | undefined;
  private exited!: (code: number) => void;
  private readonly run_history: RunHistory;
  private status: DaemonStatus;
  /** The STATUS= text last sent: a new one goes out only when it differs. */
  private status_line = "";
  private last_success_at: string | null;
  private stale_timer: NodeJS.Timeout | undefined;

  constructor(private readonly config: Config) {
    this.notifier = new SystemdNotifier({ timeout_ms: config.notify_timeout_ms, queue_max: config.notify_queue_max });
    this.runner = new JobRunner(config);
    this.pinger = new HealthcheckPinger(config.healthcheck_ping_url, config.healthcheck_timeout_ms, config.log_line_bytes_max);
    this.run_history = new RunHistory(config.materia_state_dir, config.run_history_entries_max);
    this.last_success_at = read_last_success(config.materia_state_dir);
    const commit = running_commit();
    this.settings = supervisor_settings(config, commit);
    this.status = {
      pid: process.ppid, worker_pid: process.pid, web_pid: null, commit, state: "starting",
      current_job: null, next_run_at: null, last_error: null, web_url: null, updated_at: new Date().toISOString(),
    };
  }

  async run(): Promise<number> {
    log.info(`materia daemon ${this.status.commit} started (worker pid ${process.pid}, daemon pid ${process.ppid})`);
    const exit_code = new Promise<number>((resolve) => (this.exited = resolve));
    process.on("SIGTERM", () => this.dispatch({ kind: "stop_signal", why: "SIGTERM" }));
    process.on("SIGINT", () => this.dispatch({ kind: "stop_signal", why: "SIGINT" }));
    // The launcher died (kill -9): nobody would restart or stop this worker; stop as on TERM.
    process.on("disconnect", () => this.dispatch({ kind: "stop_signal", why: "the daemon's launcher is gone" }));
    process.on("SIGHUP", () => this.dispatch({ kind: "reload_signal" }));
    // The web processes are the launcher's (they outlive this worker): it tells us about them.
    process.on("message", (message: LauncherMessage) => this.on_launcher_message(message));
    process.send?.({ type: "worker_started" } satisfies WorkerMessage);
    this.update_status({ state: "starting" });
    this.arm_stale_timer();
    await this.clean_up_after_a_dead_worker();
    this.notifier.start_watchdog();
    this.dispatch({ kind: "started", now_ms: Date.now() });
    const code = await exit_code;
    this.notifier.stop_watchdog();
    clearTimeout(this.stale_timer);
    return code;
  }

  private dispatch(event: SupervisorEvent): void {
    const { state, actions } = supervisor_next(this.state, event, this.settings);
    this.state = state;
    this.effects = this.effects.then(() => this.carry_out(actions));
  }

  private async carry_out(actions: SupervisorAction[]): Promise<void> {
    for (const action of actions) {
      switch (action.kind) {
        case "log": log[action.level](action.message); break;
        case "status": this.update_status(action.change); break;
        case "notify": await this.notify(action.message, action.text); break;
        case "self_update":
          this.start_work(async (cancel) => {
            const result = await self_update(this.config, { cancel, skip_commit: action.skip_commit });
            return { kind: "update_done", result, cancelled: cancel.aborted, now_ms: Date.now() };
          });
          break;
        case "run_jobs":
          this.start_work(async (cancel) => ({ kind: "jobs_done", result: await this.run_jobs(cancel), now_ms: Date.now() }));
          break;
        case "wait":
          void this.alarm.sleep(Math.max(0, action.until_ms - Date.now())).then(() => this.dispatch({ kind: "wait_over", now_ms: Date.now() }));
          break;
        case "cancel": this.work_cancel?.abort(); break;
        case "end_wait": this.alarm.ring(); break;
        case "arm_force_exit": this.arm_force_exit(); break;
        case "cycle_start": this.pinger.start(); break;
        case "cycle_ok":
          this.record_success();
          this.pinger.success();
          break;
        case "cycle_failed": this.pinger.fail(action.reason); break;
        case "exit": this.exited(action.code); break;
      }
    }
  }

  /** Starts a self-update or the jobs, cancellable by the `cancel` action; their end is the next event. */
  private start_work(work: (cancel: AbortSignal) => Promise<SupervisorEvent>): void {
    const cancel = new AbortController();
    this.work_cancel = cancel;
    void work(cancel.signal).then((event) => {
      if (this.work_cancel === cancel) this.work_cancel = undefined;
      this.dispatch(event);
    });
  }

  private async notify(message: "ready" | "reloading" | "stopping", text: string | undefined): Promise<void> {
    switch (message) {
      case "ready":
        if (text === undefined) this.status_line = text = this.status_text();
        return this.notifier.ready(text);
      case "reloading": return this.notifier.reloading(text ?? "reloading");
      case "stopping": return this.notifier.stopping(text ?? "stopping");
    }
  }

  /** Each job in its thread, in order, under the pipeline lock; the first that does not end ok ends the cycle. */
  private async run_jobs(cancel: AbortSignal): Promise<JobsResult> {
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
        if (cancel.aborted) return { kind: "cancelled" };
        const result = await this.run_job(cycle_id, job.name, cancel);
        if (result.outcome === "cancelled") return { kind: "cancelled" };
        if (result.outcome !== "ok") {
          return { kind: "failed", cause: `${job.name} ${result.outcome === "timeout" ? "timeout" : "failure"}`, reason: `${job.name}: ${result.message}` };
        }
      }
      return { kind: "ok" };
    } finally {
      release_lock();
    }
  }

  private async run_job(cycle_id: string, name: JobName, cancel: AbortSignal): Promise<JobRunResult> {
    const record: RunRecord = {
      run_id: `${cycle_id}.${name}`, cycle_id, job: name, started_at: new Date().toISOString(), ended_at: null,
      outcome: "running", message: "", output_tail: "",
    };
    this.save_run(record);
    this.update_status({ state: "running", current_job: name });
    log.info(`${name}: started`);
    const started_ms = Date.now();
    const result = await this.runner.run(name, cancel).catch((error: Error): JobRunResult =>
      ({ outcome: "failed", message: error.message, output_tail: "" }));
    this.save_run({ ...record, ended_at: new Date().toISOString(), ...result });
    const took = `${Date.now() - started_ms} ms`;
    switch (result.outcome) {
      case "ok": log.info(`${name}: ok in ${took}: ${result.message}`); break;
      case "cancelled": log.warn(`${name}: cancelled after ${took}: ${result.message}`); break;
      case "timeout": log.error(`${name}: timeout: ${result.message}`); break;
      case "failed": log.error(`${name}: failed after ${took}: ${result.message}`); break;
    }
    return result;
  }

  private on_launcher_message(message: LauncherMessage): void {
    switch (message?.type) {
      case "web_listening": return this.dispatch({ kind: "web_listening", url: message.url, pid: message.pid });
      case "web_exited": return this.dispatch({ kind: "web_exited", pid: message.pid });
      case "run_now": return this.dispatch({ kind: "run_now" });
    }
  }

  /** A stop must end within STOP_TIMEOUT_S: past that, kill what is left rather than outlive it. */
  private arm_force_exit(): void {
    const budget_ms = Math.max(this.config.stop_timeout_s * 1000 - stop_margin_ms, 500);
    setTimeout(() => {
      log.error(`stop did not finish within ${budget_ms} ms; killing the job's process groups`);
      this.runner.kill_groups_now();
      process.exit(exit_codes.failure);
    }, budget_ms).unref();
  }

  kill_job_groups_now(): void {
    this.runner.kill_groups_now();
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
    return status_text(this.status, this.state.backoff_cause, judge_freshness(this.freshness(), Date.now(), this.config.stale_after_s));
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

