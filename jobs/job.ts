import type { Config } from "../config/schema.js";
import { start_deadline, type Deadline } from "../lib/deadline.js";

/** What a job gets besides the config: its run's deadline and a way to report its subprocesses. */
export interface JobContext {
  /**
   * The run's one deadline, made by whoever runs the job (the daemon, the CLI): it aborts when the
   * job's *_TIMEOUT_S has passed or the run is cancelled, its reason saying which (lib/deadline.ts
   * `abort_reason`). Jobs only honour it: none keeps a timer of its own for its bound.
   */
  stop: AbortSignal;
  /** Called with the process group of every subprocess the job starts, so a supervisor can kill it. */
  on_subprocess_start?: (pgid: number) => void;
  /** export_serving: publish even when the gate refuses. */
  force?: boolean;
}

/** A job's summary for the log and the run history. */
export type JobResult = { summary: string; output_tail?: string };

export type JobName = "extract" | "transform" | "export_serving" | "publish";

export interface Job {
  name: JobName;
  run(config: Config, context: JobContext): Promise<JobResult>;
}

const timeout_setting = {
  extract: "EXTRACT_TIMEOUT_S", transform: "TRANSFORM_TIMEOUT_S", export_serving: "EXPORT_TIMEOUT_S", publish: "SERVING_PUBLISH_TIMEOUT_S",
} as const;

export function job_timeout_s(config: Config, name: JobName): number {
  return {
    extract: config.extract_timeout_s, transform: config.transform_timeout_s, export_serving: config.export_timeout_s,
    publish: config.serving_publish_timeout_s,
  }[name];
}

/** The one deadline of a run of job `name`: its *_TIMEOUT_S from now, or `cancel`, whichever comes first. */
export function start_job_deadline(config: Config, name: JobName, cancel?: AbortSignal): Deadline {
  const timeout_s = job_timeout_s(config, name);
  return start_deadline(timeout_s * 1000, cancel, `timed out after ${timeout_setting[name]}=${timeout_s} s`);
}

/** Runs `work` with the one deadline of a run of job `name` (see `start_job_deadline`), cleared after. */
export async function with_job_deadline<T>(config: Config, name: JobName, cancel: AbortSignal | undefined,
  work: (stop: AbortSignal) => Promise<T>): Promise<T> {
  const deadline = start_job_deadline(config, name, cancel);
  try {
    return await work(deadline.signal);
  } finally {
    deadline.clear();
  }
}
