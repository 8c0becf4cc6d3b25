import type { Job } from "../job.js";
import { run_publish } from "./publish.js";

export const publish_job: Job = {
  name: "publish",
  run: run_publish,
};
