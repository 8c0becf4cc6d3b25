import assert from "node:assert/strict";
import fs from "node:fs";
import test, { type TestContext } from "node:test";
import type { Config } from "../config/schema.js";
import { JobRunner } from "../daemon/job_runner.js";
import { compiled_path } from "../lib/paths.js";
import { process_group_alive } from "../lib/subprocess.js";
import { make_sandbox } from "./support/sandbox.js";
import { stubborn_pgid_path, stubborn_plan_path, type StubbornPlan } from "./support/stubborn_plan.js";

// JobRunner with a job thread that misbehaves on purpose (test/support/stubborn_job_thread.ts):
// the paths a well-behaved job never takes, the terminate path first.

function runner_in_sandbox(t: TestContext, settings: Partial<Config> = {}) {
  const sandbox = make_sandbox();
  t.after(() => sandbox.cleanup());
  const config: Config = { ...sandbox.config, transform_timeout_s: 1, subprocess_kill_grace_ms: 300, ...settings };
  fs.mkdirSync(config.materia_state_dir, { recursive: true });
  const plan = (next: StubbornPlan) => fs.writeFileSync(stubborn_plan_path(config.materia_state_dir), JSON.stringify(next));
  return { runner: new JobRunner(config, compiled_path("test/support/stubborn_job_thread.ts")), plan, config };
}

const never_cancelled = new AbortController().signal;

test("a job that ignores stop is terminated after its grace, recorded as timeout, and the process group it started is killed", async (t) => {
  const { runner, plan, config } = runner_in_sandbox(t);
  plan({ kind: "ignore_stop" });
  const result = await runner.run("transform", never_cancelled);
  assert.equal(result.outcome, "timeout");
  assert.equal(result.message, "timed out after 1 s: worker ended without a result");
  const pgid = Number(fs.readFileSync(stubborn_pgid_path(config.materia_state_dir), "utf8"));
  assert.ok(pgid > 1);
  assert.equal(process_group_alive(pgid), false, "the group the job started is gone");
});

test("a job stopped by the cycle's cancel is recorded as cancelled, with the job's own error", async (t) => {
  const { runner, plan } = runner_in_sandbox(t, { transform_timeout_s: 600 });
  plan({ kind: "honour_stop", ms: 60_000 });
  const cancel = new AbortController();
  setTimeout(() => cancel.abort(), 200);
  assert.deepEqual(await runner.run("transform", cancel.signal), { outcome: "cancelled", message: "cancelled", output_tail: "cancelled" });
});

test("a job that honours its deadline is recorded as timeout, never as failed or cancelled", async (t) => {
  const { runner, plan } = runner_in_sandbox(t);
  plan({ kind: "honour_stop", ms: 60_000 });
  const result = await runner.run("transform", never_cancelled);
  assert.equal(result.outcome, "timeout");
  assert.equal(result.message, "timed out after 1 s: timed out after TRANSFORM_TIMEOUT_S=1 s");
});

test("a job that ends before its deadline is ok, with its summary", async (t) => {
  const { runner, plan } = runner_in_sandbox(t, { transform_timeout_s: 600 });
  plan({ kind: "honour_stop", ms: 10 });
  assert.deepEqual(await runner.run("transform", never_cancelled), { outcome: "ok", message: "transform: done after 10 ms", output_tail: "" });
});

test("a thread stuck in native code is left behind; its late exit and message do not end the next run of the same job", async (t) => {
  const { runner, plan } = runner_in_sandbox(t, { transform_timeout_s: 600 });
  // Stuck past the cancel, the grace after stop (3.3 s) and the wait after terminate (5 s).
  plan({ kind: "block_native", seconds: 12 });
  const cancel = new AbortController();
  setTimeout(() => cancel.abort(), 200);
  const stuck = await runner.run("transform", cancel.signal);
  assert.equal(stuck.outcome, "cancelled");
  // The next run of the same job, by the same runner, outlasts the stuck thread, which wakes up,
  // reports "ok" and exits meanwhile.
  plan({ kind: "honour_stop", ms: 8_000 });
  assert.deepEqual(await runner.run("transform", never_cancelled), { outcome: "ok", message: "transform: done after 8000 ms", output_tail: "" });
});
