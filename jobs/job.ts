import type { Config } from "../config/schema.js";

/** What a job gets besides the config: a way to be cancelled and to report its subprocesses. */
export interface JobContext {
  cancel?: AbortSignal;
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
