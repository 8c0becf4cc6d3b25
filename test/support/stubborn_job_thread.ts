// A stand-in for daemon/job_worker.ts that misbehaves on purpose, to drive JobRunner's stop and
// terminate paths. What it does comes from `${MATERIA_STATE_DIR}/stubborn.json`, read when the
// thread starts (stubborn_plan.ts).
import { execFileSync, spawn } from "node:child_process";
import fs from "node:fs";
import { parentPort, workerData } from "node:worker_threads";
import type { JobThreadCommand, JobThreadData, JobThreadMessage } from "../../lib/contract.js";
import { stubborn_pgid_path, stubborn_plan_path, type StubbornPlan } from "./stubborn_plan.js";

const { job_name, config } = workerData as JobThreadData;
const plan = JSON.parse(fs.readFileSync(stubborn_plan_path(config.materia_state_dir), "utf8")) as StubbornPlan;
const port = parentPort!;
const post = (message: JobThreadMessage) => port.postMessage(message);

switch (plan.kind) {
  case "ignore_stop": {
    const child = spawn("sleep", ["600"], { detached: true, stdio: "ignore" });
    child.unref();
    fs.writeFileSync(stubborn_pgid_path(config.materia_state_dir), String(child.pid));
    post({ type: "subprocess", pgid: child.pid! });
    // Let the message go out, then never return to the event loop.
    setTimeout(() => {
      for (;;) {
        // spin
      }
    }, 50);
    break;
  }
  case "block_native":
    execFileSync("sleep", [String(plan.seconds)]);
    post({ type: "result", ok: true, summary: `${job_name}: woke up`, output_tail: "" });
    break;
  case "honour_stop": {
    const timer = setTimeout(() => post({ type: "result", ok: true, summary: `${job_name}: done after ${plan.ms} ms`, output_tail: "" }), plan.ms);
    port.on("message", (message: JobThreadCommand) => {
      if (message.type !== "stop") return;
      clearTimeout(timer);
      post({ type: "result", ok: false, error: message.reason });
    });
    break;
  }
}
