import Bree from "bree";
import { setTimeout as sleep } from "node:timers/promises";
import type { Config } from "../config/schema.js";
import type { JobName } from "../jobs/job.js";
import { pipeline_jobs } from "../jobs/registry.js";
import { log } from "../lib/log.js";
import { compiled_path } from "../lib/paths.js";
import { kill_process_group, process_group_alive } from "../lib/subprocess.js";
import { forget_groups } from "./job_groups.js";
import type { JobWorkerData, JobWorkerMessage } from "./job_worker.js";

export type JobOutcome = "ok" | "failed" | "timeout" | "cancelled";

export interface JobRunResult {
  outcome: JobOutcome;
  /** One line: the job's summary when ok, why it failed otherwise. */
  message: string;
  output_tail: string;
}

/** A job's own time bound from config: the daemon enforces the same one from outside. */
export function job_timeout_ms(config: Config, name: JobName): number {
  const timeout_s = { extract: config.extract_timeout_s, transform: config.transform_timeout_s,
    export_serving: config.export_timeout_s, publish: config.serving_publish_timeout_s }[name];
  return timeout_s * 1000;
}

// After "cancel", a job kills its subprocess group (TERM, grace, KILL, up to 2 s to confirm)
// and returns; give it that long plus a margin before terminating the thread ourselves.
const cancel_margin_ms = 3_000;
// worker.terminate() stops JavaScript at once, but a native call (DuckDB) returns first.
const terminate_wait_ms = 5_000;

interface ActiveRun {
  pgids: Set<number>;
  result?: JobWorkerMessage & { type: "result" };
  worker_error?: string;
  gone: () => void;
}

/**
 * Runs pipeline jobs one at a time, each in a Bree worker thread from compiled JS, with hard
 * bounds of our own: Bree's `stop()` waits for a worker with no limit, and terminating a
 * worker leaves the processes it started running.
 */
export class JobRunner {
  private readonly bree: Bree;
  private readonly active = new Map<string, ActiveRun>();

  constructor(private readonly config: Config) {
    const quiet = (message: unknown) => log.debug(`bree: ${String(message)}`);
    this.bree = new Bree({
      root: false,
      doRootCheck: false,
      logger: { info: quiet, warn: quiet, error: quiet } as unknown as Bree.BreeLogger,
      jobs: pipeline_jobs.map((job) => ({
        name: job.name,
        path: compiled_path("daemon/job_worker.ts"),
        worker: { workerData: { job_name: job.name, config } satisfies JobWorkerData },
      })),
      workerMessageHandler: ({ name, message }) => this.on_message(name, message as JobWorkerMessage | "done"),
      errorHandler: (error, data) => {
        const run = this.active.get(data.name);
        if (run && !run.result) run.worker_error = (error as Error).message;
      },
    });
    this.bree.on("worker deleted", (name: string) => this.active.get(name)?.gone());
  }

  private on_message(name: string, message: JobWorkerMessage | "done"): void {
    const run = this.active.get(name);
    if (!run || message === "done") return;
    if (message.type === "subprocess") {
      run.pgids.add(message.pgid);
    } else {
      run.result = message;
    }
  }

  /**
   * Runs `name` to its end, its timeout, or `cancel`; whatever happens, returns only when its
   * worker thread is gone and no process group it started is left.
   */
  async run(name: JobName, cancel: AbortSignal): Promise<JobRunResult> {
    const timeout_ms = job_timeout_ms(this.config, name);
    const started_ms = Date.now();
    let gone!: () => void;
    const worker_gone = new Promise<void>((resolve) => (gone = resolve));
    const run: ActiveRun = { pgids: new Set(), gone };
    this.active.set(name, run);
    let stopped_by: "timeout" | "cancelled" | undefined;
    let asked_to_stop!: () => void;
    const stop_asked = new Promise<void>((resolve) => (asked_to_stop = resolve));
    const stop = (why: "timeout" | "cancelled") => {
      if (stopped_by) return;
      stopped_by = why;
      this.bree.workers.get(name)?.postMessage("cancel");
      asked_to_stop();
    };
    const timer = setTimeout(() => stop("timeout"), timeout_ms);
    const on_cancel = () => stop("cancelled");
    cancel.addEventListener("abort", on_cancel, { once: true });
    try {
      if (cancel.aborted) return { outcome: "cancelled", message: "cancelled before it started", output_tail: "" };
      await this.bree.run(name);
      await Promise.race([worker_gone, stop_asked]);
      await this.after_stop_asked(name, run, worker_gone);
    } finally {
      clearTimeout(timer);
      cancel.removeEventListener("abort", on_cancel);
      await this.kill_leftover_groups(name, run.pgids);
      forget_groups(this.config.materia_state_dir);
      this.active.delete(name);
    }
    // The job enforces the same bound itself and may report it first, as a failure.
    if (!stopped_by && !run.result?.ok && Date.now() - started_ms >= timeout_ms) stopped_by = "timeout";
    return this.judge(run, stopped_by, timeout_ms);
  }

  /** Once asked to stop, a worker gets a bounded grace; then its groups are killed and it is terminated. */
  private async after_stop_asked(name: string, run: ActiveRun, worker_gone: Promise<void>): Promise<void> {
    const cancel_grace_ms = this.config.subprocess_kill_grace_ms + cancel_margin_ms;
    if (await within(worker_gone, cancel_grace_ms)) return;
    log.warn(`${name}: worker did not stop within ${cancel_grace_ms} ms of cancel; terminating it`);
    await this.kill_leftover_groups(name, run.pgids);
    const worker = this.bree.workers.get(name);
    if (await within(Promise.all([worker?.terminate(), worker_gone]), terminate_wait_ms)) return;
    // A thread stuck in native code: nothing more can be done from here; the daemon goes on.
    log.error(`${name}: worker thread still running ${terminate_wait_ms} ms after terminate()`);
    this.bree.workers.delete(name);
  }

  /** Last resort when a stop overruns its bound: SIGKILL every process group a running job started. */
  kill_groups_now(): void {
    for (const run of this.active.values()) {
      for (const pgid of run.pgids) {
        try {
          process.kill(-pgid, "SIGKILL");
        } catch {
          // Already gone.
        }
      }
    }
  }

  private async kill_leftover_groups(name: string, pgids: Set<number>): Promise<void> {
    for (const pgid of pgids) {
      if (!process_group_alive(pgid)) continue;
      log.warn(`${name}: killing process group ${pgid} left by its worker`);
      try {
        await kill_process_group(pgid, this.config.subprocess_kill_grace_ms);
      } catch (error) {
        log.error(`${name}: ${(error as Error).message}`);
      }
    }
  }

  private judge(run: ActiveRun, stopped_by: "timeout" | "cancelled" | undefined, timeout_ms: number): JobRunResult {
    const tail_max = this.config.subprocess_output_tail_bytes_max;
    const result = run.result;
    if (result?.ok && !stopped_by) {
      return { outcome: "ok", message: result.summary, output_tail: result.output_tail.slice(-tail_max) };
    }
    const reason = (result && !result.ok ? result.error : run.worker_error ?? "worker ended without a result")
      .split("\n")[0]!.slice(0, tail_max);
    const outcome = stopped_by ?? "failed";
    const message = outcome === "timeout" ? `timed out after ${timeout_ms / 1000} s: ${reason}` : reason;
    return { outcome, message, output_tail: reason };
  }
}

/** True when `work` settles within `timeout_ms`. */
async function within(work: Promise<unknown>, timeout_ms: number): Promise<boolean> {
  const timer = new AbortController();
  try {
    return await Promise.race([work.then(() => true, () => true), sleep(timeout_ms, false, { signal: timer.signal })]);
  } finally {
    timer.abort();
  }
}
