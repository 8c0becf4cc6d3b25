import type { Job } from "../job.js";
import { run_transform } from "./transform.js";

export const transform_job: Job = {
  name: "transform",
  run: run_transform,
};
