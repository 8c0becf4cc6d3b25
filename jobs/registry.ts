import { export_serving_job } from "./export_serving/index.js";
import { extract_job } from "./extract/index.js";
import type { Job, JobName } from "./job.js";
import { transform_job } from "./transform/index.js";

/** The pipeline, in the order a cycle runs it. */
export const pipeline_jobs: readonly Job[] = [extract_job, transform_job, export_serving_job];

export function job_named(name: string): Job | undefined {
  return pipeline_jobs.find((job) => job.name === name);
}

export function is_job_name(name: string): name is JobName {
  return job_named(name) !== undefined;
}
