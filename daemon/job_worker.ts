// The Bree worker thread that runs one pipeline job (compiled to dist/daemon/job_worker.js).
// It gets "stop" (lib/contract.ts) and says "done" at its end, Bree's word (Bree then terminates
// the thread); in between it reports every subprocess's process group, so that the daemon can
// kill the group itself should this thread be terminated: termination never reaches grandchildren.
// The group goes on disk here, synchronously after the spawn, not when the daemon's thread gets
// the message: a worker process killed in between would leave a SQLMesh nobody knows about.
import { parentPort, workerData } from "node:worker_threads";
import { job_named } from "../jobs/registry.js";
import type { JobThreadCommand, JobThreadData, JobThreadMessage } from "../lib/contract.js";
import { configure_log } from "../lib/log.js";
import { remember_group } from "./job_groups.js";

const { job_name, config } = workerData as JobThreadData;
configure_log({ level: config.log_level, line_bytes_max: config.log_line_bytes_max });
const port = parentPort!;
const cancel = new AbortController();
port.on("message", (message: JobThreadCommand) => {
  if (message?.type === "stop") cancel.abort(new Error(message.reason));
});

const post = (message: JobThreadMessage) => port.postMessage(message);
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
