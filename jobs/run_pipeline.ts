import type { Config } from "../config/schema.js";
import { log } from "../lib/log.js";
import { acquire_pipeline_lock } from "../lib/pipeline_lock.js";
import { with_job_deadline, type JobContext, type JobResult } from "./job.js";
import type { JobEntry } from "./registry.js";

/**
 * Runs `jobs` in order, in this process, under the pipeline lock, each with its own deadline
 * (its *_TIMEOUT_S, or `cancel`); the first failure stops the run and is thrown. This is what
 * `materia pipeline run` does by hand.
 */
export async function run_jobs_in_process(config: Config, jobs: readonly JobEntry[], cancel: AbortSignal,
  context: Omit<JobContext, "stop"> = {}): Promise<JobResult[]> {
  const release_lock = acquire_pipeline_lock(config.materia_state_dir);
  try {
    const results: JobResult[] = [];
    for (const job of jobs) {
      const started_ms = Date.now();
      log.info(`${job.name}: started`);
      try {
        const loaded = await job.load();
        const result = await with_job_deadline(config, job.name, cancel, (stop) => loaded.run(config, { ...context, stop }));
        log.info(`${job.name}: ok in ${Date.now() - started_ms} ms: ${result.summary}`);
        results.push(result);
      } catch (error) {
        throw new Error(`${job.name}: ${(error as Error).message}`, { cause: error });
      }
    }
    return results;
  } finally {
    release_lock();
  }
}
