import Bree from "bree";
import type { Worker } from "node:worker_threads";
import pTimeout from "p-timeout";
import type { JobThreadCommand, JobThreadData, JobThreadMessage } from "../lib/contract.js";
import { log } from "../lib/log.js";

export interface JobThreadSpec {
  name: string;
  /** Compiled JavaScript that runs in the thread. */
  path: string;
  data: JobThreadData;
}

/**
 * Bree behind one door, and only to start threads. Bree checks the job list and the compiled files
 * once, and starts a job's thread with its workerData; the moment it has, this adapter takes the
 * thread from Bree: it removes Bree's listeners from the Worker object and the thread from Bree's
 * map. Bree's handlers look a thread up in that map by job name when an event comes, so a thread
 * left stuck in native code would otherwise, by its late "done" or exit, terminate or close the
 * next run of the same job. Bree's scheduler and its stop() (which waits for a thread without a
 * bound) are not used: the supervisor schedules, and JobRunner bounds every stop.
 */
export class JobThreads {
  private readonly bree: Bree;

  constructor(jobs: readonly JobThreadSpec[]) {
    const quiet = (message: unknown) => log.debug(`bree: ${String(message)}`);
    this.bree = new Bree({
      root: false,
      doRootCheck: false,
      logger: { info: quiet, warn: quiet, error: quiet } as unknown as Bree.BreeLogger,
      jobs: jobs.map((job) => ({ name: job.name, path: job.path, worker: { workerData: job.data } })),
    });
  }

  /** Starts job `name`'s thread; `on_message` gets every message it posts. */
  async start(name: string, on_message: (message: JobThreadMessage) => void): Promise<JobThread> {
    let worker: Worker | undefined;
    const take = (created: string) => {
      if (created === name) worker = this.bree.workers.get(name);
    };
    this.bree.on("worker created", take);
    try {
      await this.bree.run(name);
    } finally {
      this.bree.off("worker created", take);
    }
    // Nothing of the thread has been heard yet: its events come from the event loop, after this turn.
    if (!worker) throw new Error(`${name}: Bree started no thread`);
    stop_listening(worker);
    this.bree.workers.delete(name);
    return new JobThread(worker, on_message);
  }
}

// Bree's events, and ours. Not every listener: a Worker's own 'newListener' hook starts its message port.
const thread_events = ["online", "message", "messageerror", "error", "exit"] as const;

function stop_listening(worker: Worker): void {
  for (const event of thread_events) worker.removeAllListeners(event);
}

/** True when `work` settles within `wait_ms`. */
export function settles_within(work: Promise<unknown>, wait_ms: number): Promise<boolean> {
  return pTimeout(work.then(() => true, () => true), { milliseconds: wait_ms, fallback: () => false });
}

/** One job thread, owned alone by whoever started it. */
export class JobThread {
  /** Resolves once the thread has exited. */
  readonly gone: Promise<void>;
  private failure_text: string | undefined;
  private terminating = false;

  constructor(private readonly worker: Worker, on_message: (message: JobThreadMessage) => void) {
    worker.on("message", (message: JobThreadMessage) => on_message(message));
    worker.on("error", (error: Error) => (this.failure_text ??= error.message));
    this.gone = new Promise((resolve) => worker.once("exit", (code: number) => {
      if (code !== 0 && !this.terminating) this.failure_text ??= `worker exited with code ${code}`;
      resolve();
    }));
  }

  /** Why the thread ended without a word from its job (an uncaught error, a non-zero exit). */
  get failure(): string | undefined {
    return this.failure_text;
  }

  /** Asks the job to stop (it kills its subprocesses and reports); `reason` goes into its error. */
  stop(reason: string): void {
    this.worker.postMessage({ type: "stop", reason } satisfies JobThreadCommand);
  }


  /**
   * Ends the thread: JavaScript stops at once, a native call (DuckDB) returns first. True once it
   * has exited within `wait_ms`. False: it is stuck in native code and abandoned; nothing of it is
   * heard again, and it does not keep this process alive.
   */
  async terminate(wait_ms: number): Promise<boolean> {
    this.terminating = true;
    void this.worker.terminate();
    if (await settles_within(this.gone, wait_ms)) return true;
    stop_listening(this.worker);
    // An 'error' event without a listener would throw in this process.
    this.worker.on("error", () => undefined);
    this.worker.unref();
    return false;
  }
}
