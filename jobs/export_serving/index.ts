import type { Job } from "../job.js";
import { run_export_serving } from "./export_serving.js";

export const export_serving_job: Job = {
  name: "export_serving",
  run: run_export_serving,
};
