import type { Config } from "../config/schema.js";
import { start_job_deadline, job_timeout_s, type JobName } from "../jobs/job.js";
import { pipeline_jobs } from "../jobs/registry.js";
import type { JobThreadMessage, RunOutcome } from "../lib/contract.js";
import { abort_reason } from "../lib/deadline.js";
import { log } from "../lib/log.js";
import { compiled_path } from "../lib/paths.js";
import { head_bytes, kill_process_group, process_group_alive, tail_bytes } from "../lib/subprocess.js";
import { forget_groups } from "./job_groups.js";
import { JobThreads, settles_within } from "./job_thread.js";

export type JobOutcome = Exclude<RunOutcome, "running">;

export interface JobRunResult {
  outcome: JobOutcome;
  /** One line: the job's summary when ok, why it failed otherwise. */
  message: string;
  output_tail: string;
}

type JobResultMessage = JobThreadMessage & { type: "result" };

// After "stop", a job kills its subprocess group (TERM, grace, KILL, up to 2 s to confirm)
// and returns; give it that long plus a margin before terminating the thread ourselves.
const stop_margin_ms = 3_000;
// worker.terminate() stops JavaScript at once, but a native call (DuckDB) returns first.
const terminate_wait_ms = 5_000;

/**
 * Runs pipeline jobs one at a time, each in a worker thread from compiled JS (job_thread.ts), with
 * hard bounds of our own: one deadline a run (the job's *_TIMEOUT_S, or the cycle's cancel), a
 * bounded grace after "stop", then terminate; and the process groups a job started are killed
 * whatever happens, since terminating a thread never reaches them.
 */
export class JobRunner {
  private readonly threads: JobThreads;
  /** The process groups of the run under way, for `kill_groups_now`. */
  private running_pgids: Set<number> | undefined;

  /** `thread_path`: the compiled file each job's thread runs; tests give one whose job ignores "stop". */
  constructor(private readonly config: Config, thread_path = compiled_path("daemon/job_worker.ts")) {
    this.threads = new JobThreads(pipeline_jobs.map((job) => ({ name: job.name, path: thread_path, data: { job_name: job.name, config } })));
  }

  /**
   * Runs `name` to its end, its deadline, or `cancel`; whatever happens, returns only when its
   * thread is gone (or abandoned, stuck in native code) and no process group it started is left.
   */
  async run(name: JobName, cancel: AbortSignal): Promise<JobRunResult> {
    if (cancel.aborted) return { outcome: "cancelled", message: "cancelled before it started", output_tail: "" };
    const pgids = new Set<number>();
    let result: JobResultMessage | undefined;
    let got_result!: () => void;
    const result_in = new Promise<void>((resolve) => (got_result = resolve));
    const thread = await this.threads.start(name, (message) => {
      if (message.type === "subprocess") {
        pgids.add(message.pgid);
      } else {
        result = message;
        got_result();
      }
    });
    this.running_pgids = pgids;
    // The run's one clock: the daemon keeps it; the job only hears "stop" with its reason.
    const deadline = start_job_deadline(this.config, name, cancel);
    let stopped_by: "timeout" | "cancelled" | undefined;
    let asked_to_stop!: () => void;
    const stop_asked = new Promise<void>((resolve) => (asked_to_stop = resolve));
    const on_deadline = () => {
      if (result) return; // the job had finished: its own word stands
      stopped_by = deadline.timed_out() ? "timeout" : "cancelled";
      thread.stop(abort_reason(deadline.signal));
      asked_to_stop();
    };
    deadline.signal.addEventListener("abort", on_deadline, { once: true });
    try {
      await Promise.race([thread.gone, result_in, stop_asked]);
      const stop_grace_ms = this.config.subprocess_kill_grace_ms + stop_margin_ms;
      if (stopped_by && !await settles_within(Promise.race([thread.gone, result_in]), stop_grace_ms)) {
        log.warn(`${name}: worker did not stop within ${stop_grace_ms} ms of "stop"; terminating it`);
        await this.kill_leftover_groups(name, pgids);
      }
      // A thread whose job has reported has nothing left to do; one that is stuck can do no more harm.
      if (!await thread.terminate(terminate_wait_ms)) {
        log.error(`${name}: worker thread still running ${terminate_wait_ms} ms after terminate(); left behind`);
      }
    } finally {
      deadline.clear();
      deadline.signal.removeEventListener("abort", on_deadline);
      await this.kill_leftover_groups(name, pgids);
      forget_groups(this.config.materia_state_dir);
      this.running_pgids = undefined;
    }
    return this.judge(name, result, thread.failure, stopped_by);
  }

  /** Last resort when a stop overruns its bound: SIGKILL every process group the running job started. */
  kill_groups_now(): void {
    for (const pgid of this.running_pgids ?? []) {
      try {
        process.kill(-pgid, "SIGKILL");
      } catch {
        // Already gone.
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

  private judge(name: JobName, result: JobResultMessage | undefined, failure: string | undefined,
    stopped_by: "timeout" | "cancelled" | undefined): JobRunResult {
    const tail_max = this.config.subprocess_output_tail_bytes_max;
    if (result?.ok && !stopped_by) {
      return { outcome: "ok", message: result.summary, output_tail: tail_bytes(result.output_tail, tail_max) };
    }
    const reason = head_bytes((result && !result.ok ? result.error : failure ?? "worker ended without a result").split("\n")[0]!, tail_max);
    const outcome = stopped_by ?? "failed";
    const message = outcome === "timeout" ? `timed out after ${job_timeout_s(this.config, name)} s: ${reason}` : reason;
    return { outcome, message, output_tail: reason };
  }
}
