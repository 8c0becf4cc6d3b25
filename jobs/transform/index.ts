import type { Job } from "../job.js";
import { run_transform } from "./transform.js";

export const transform_job: Job = {
  name: "transform",
  description: "build lakehouse.duckdb from the newest landed release with SQLMesh",
  run: run_transform,
};
