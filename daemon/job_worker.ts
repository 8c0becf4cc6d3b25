// The Bree worker thread that runs one pipeline job (compiled to dist/daemon/job_worker.js).
// It speaks Bree's protocol: "cancel" in, "done" out (Bree then terminates the thread); in
// between it reports every subprocess's process group, so that the daemon can kill the group
// itself should this thread be terminated: Bree's termination never reaches grandchildren.
// The group goes on disk here, synchronously after the spawn, not when the daemon's thread gets
// the message: a worker process killed in between would leave a SQLMesh nobody knows about.
import { parentPort, workerData } from "node:worker_threads";
import type { Config } from "../config/schema.js";
import { job_named } from "../jobs/registry.js";
import { configure_log } from "../lib/log.js";
import { remember_group } from "./job_groups.js";

export interface JobWorkerData {
  job_name: string;
  config: Config;
}

export type JobWorkerMessage =
  | { type: "subprocess"; pgid: number }
  | { type: "result"; ok: true; summary: string; output_tail: string }
  | { type: "result"; ok: false; error: string };

const { job_name, config } = workerData as JobWorkerData;
configure_log({ level: config.log_level, line_bytes_max: config.log_line_bytes_max });
const port = parentPort!;
const cancel = new AbortController();
port.on("message", (message) => {
  if (message === "cancel") cancel.abort();
});

const post = (message: JobWorkerMessage) => port.postMessage(message);
const entry = job_named(job_name);
try {
  if (!entry) throw new Error(`no job named ${job_name}`);
  const job = await entry.load();
  const result = await job.run(config, {
    cancel: cancel.signal,
    on_subprocess_start: (pgid) => {
      remember_group(config.materia_state_dir, pgid);
      post({ type: "subprocess", pgid });
    },
  });
  post({ type: "result", ok: true, summary: result.summary, output_tail: result.output_tail ?? "" });
} catch (error) {
  post({ type: "result", ok: false, error: (error as Error).message });
}
port.postMessage("done");
