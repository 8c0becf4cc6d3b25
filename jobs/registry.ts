import type { Job, JobName } from "./job.js";

/**
 * A job by name, its code loaded only when it runs: the supervisor and the CLI's launcher stay
 * small (no DuckDB, no zip code) because only the worker thread of a job loads that job.
 */
export interface JobEntry {
  name: JobName;
  description: string;
  load(): Promise<Job>;
}

/** The pipeline, in the order a cycle runs it. */
export const pipeline_jobs: readonly JobEntry[] = [
  {
    name: "extract",
    description: "download the USDA PSD coffee release (ETag-deduplicated) into LANDING_DIR",
    load: async () => (await import("./extract/index.js")).extract_job,
  },
  {
    name: "transform",
    description: "build lakehouse.duckdb from the newest landed release with SQLMesh",
    load: async () => (await import("./transform/index.js")).transform_job,
  },
  {
    name: "export_serving",
    description: "copy the serving tables into a new serving.duckdb and swap it in atomically",
    load: async () => (await import("./export_serving/index.js")).export_serving_job,
  },
  {
    // After the local swap, so that a slow or unreachable remote can neither delay nor undo it.
    name: "publish",
    description: "upload serving.duckdb and its manifest to SERVING_PUBLISH_REMOTE for follower web nodes (off when empty)",
    load: async () => (await import("./publish/index.js")).publish_job,
  },
];

export function job_named(name: string): JobEntry | undefined {
  return pipeline_jobs.find((job) => job.name === name);
}

export function is_job_name(name: string): name is JobName {
  return job_named(name) !== undefined;
}
