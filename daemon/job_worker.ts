// The worker thread that runs one pipeline job (compiled to dist/daemon/job_worker.js; started by
// job_thread.ts). Its messages are in lib/contract.ts: it hears "stop" (the run's deadline or a
// cancel, with the reason) and reports every subprocess's process group, then one result, after
// which the daemon terminates it. The daemon kills the groups itself should this thread be
// terminated early: terminating a thread never reaches its subprocesses.
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
// The run's deadline lives in the daemon (job_runner.ts): this is its end, as heard here.
const stop = new AbortController();
port.on("message", (message: JobThreadCommand) => {
  if (message?.type === "stop") stop.abort(new Error(message.reason));
});

const post = (message: JobThreadMessage) => port.postMessage(message);
const entry = job_named(job_name);
try {
  if (!entry) throw new Error(`no job named ${job_name}`);
  const job = await entry.load();
  const result = await job.run(config, {
    stop: stop.signal,
    on_subprocess_start: (pgid) => {
      remember_group(config.materia_state_dir, pgid);
      post({ type: "subprocess", pgid });
    },
  });
  post({ type: "result", ok: true, summary: result.summary, output_tail: result.output_tail ?? "" });
} catch (error) {
  post({ type: "result", ok: false, error: (error as Error).message });
}
