import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import test from "node:test";
import type { RunRecord } from "../lib/contract.js";
import { read_daemon_status, read_run_history } from "../lib/run_history.js";
import { processes_tagged, wait_until } from "./support/daemon_process.js";
import { deployed_checkout } from "./support/git_origin.js";
import { run_cli } from "./support/sandbox.js";
import { open_read_only } from "./support/serving_reader.js";
import { basic, get } from "./support/web_client.js";

const admin_password = "test-admin-password";

/** The transform run of each cycle that got that far, with its cycle's export, oldest first. */
function transforms(state_dir: string): { transform: RunRecord; export_serving: RunRecord | undefined }[] {
  const runs = read_run_history(state_dir).reverse();
  return runs.filter((run) => run.job === "transform" && run.outcome !== "running")
    .map((transform) => ({ transform, export_serving: runs.find((run) => run.cycle_id === transform.cycle_id && run.job === "export_serving" && run.outcome !== "running") }));
}

test("an idle cycle skips the transform and says up to date (run history, /admin, materia status); a self-update that changed a model runs it with real SQLMesh", async (t) => {
  const deployed = await deployed_checkout(t, "idle", {
    PIPELINE_INTERVAL_S: "2", STOP_TIMEOUT_S: "10", SUBPROCESS_KILL_GRACE_MS: "1000", WEB_SHUTDOWN_GRACE_MS: "2000",
    GIT_TIMEOUT_S: "30", ADMIN_PASSWORD: admin_password,
  });
  const { sandbox, origin, tag } = deployed;
  const state_dir = sandbox.config.materia_state_dir;
  const sqlmesh_logs = () => fs.readdirSync(path.join(state_dir, "sqlmesh-logs")).length;

  const daemon = deployed.start_daemon();
  const first = await wait_until("the first cycle's transform and export", 180_000, () => transforms(state_dir)[0]?.export_serving && transforms(state_dir)[0]);
  assert.equal(first.transform.outcome, "ok", first.transform.message);
  assert.match(first.transform.message, /^lakehouse built for release \S+ \(no earlier transform recorded\)$/);
  assert.match(first.export_serving!.message, /^published release /);
  const logs_after_first = sqlmesh_logs();
  const lakehouse = fs.statSync(sandbox.config.duckdb_path);

  // The next cycles: nothing new upstream, the same checkout.
  const idle = await wait_until("two idle cycles", 60_000, () => transforms(state_dir).length >= 3 && transforms(state_dir)[2]?.export_serving && transforms(state_dir).slice(1, 3));
  for (const { transform, export_serving } of idle) {
    assert.equal(transform.outcome, "ok");
    assert.match(transform.message, /^up to date: release \S+, the landed files, the SQLMesh project and the lakehouse are as the transform of \S+ \(commit \w+\) left them/);
    assert.match(export_serving!.message, /^nothing new: /);
  }
  assert.equal(sqlmesh_logs(), logs_after_first, "SQLMesh was not started (it writes a log file per invocation)");
  const lakehouse_after = fs.statSync(sandbox.config.duckdb_path);
  assert.deepEqual([lakehouse_after.ino, lakehouse_after.mtimeMs], [lakehouse.ino, lakehouse.mtimeMs], "the lakehouse was not touched");

  const status = await run_cli(["status"], sandbox.env);
  assert.equal(status.code, 0, status.stderr);
  assert.match(status.stdout, /^ {2}\S+ {2}transform +ok +\d+ ms {2}up to date: release /m);
  const web_url = read_daemon_status(state_dir)!.web_url!;
  const admin = await get(web_url, "/admin", { headers: basic(admin_password) });
  assert.equal(admin.status, 200);
  assert.match(admin.text, /<td class="text">transform<\/td>\s*<td class="text outcome-ok">ok<\/td>\s*<td class="quantity">[\d.]+ s<\/td>\s*<td class="text">up to date: release /);

  // A deploy changes a model: the self-update restarts the worker on it, and the transform runs and applies it.
  const before_update = transforms(state_dir).length;
  await origin.push_commit("serving.release: a new column", (work) => {
    const model = path.join(work, "jobs/transform/models/serving/release.sql");
    const sql = fs.readFileSync(model, "utf8");
    assert.ok(sql.includes("@execution_ts::TIMESTAMP AS transformed_at\n"));
    fs.writeFileSync(model, sql.replace("@execution_ts::TIMESTAMP AS transformed_at\n", "@execution_ts::TIMESTAMP AS transformed_at,\n  'changed' AS model_change_marker\n"));
    // Its unit test, which lists every column, in the same commit.
    const unit_test = path.join(work, "jobs/transform/tests/test_serving_release.yaml");
    const yaml = fs.readFileSync(unit_test, "utf8");
    assert.ok(yaml.includes("transformed_at: 2024-11-12 09:00:00}"));
    fs.writeFileSync(unit_test, yaml.replace("transformed_at: 2024-11-12 09:00:00}", "transformed_at: 2024-11-12 09:00:00, model_change_marker: changed}"));
  });
  const changed = await wait_until("the transform after the update", 240_000, () =>
    transforms(state_dir).slice(before_update).find(({ transform }) => !transform.message.startsWith("up to date"))?.export_serving &&
    transforms(state_dir).slice(before_update).find(({ transform }) => !transform.message.startsWith("up to date")));
  assert.equal(changed.transform.outcome, "ok", changed.transform.message);
  assert.match(changed.transform.message, /^lakehouse built for release \S+ .*\(changed since the last transform: the SQLMesh project\)$/);
  assert.match(changed.export_serving!.message, /^published release /, "new model versions are published");
  const serving = await open_read_only(sandbox.config.serving_duckdb_path);
  try {
    assert.deepEqual(await serving.rows("SELECT model_change_marker FROM release"), [{ model_change_marker: "changed" }]);
  } finally {
    serving.close();
  }
  const settled = transforms(state_dir).length;
  const next = await wait_until("the cycle after", 60_000, () => transforms(state_dir)[settled]?.export_serving && transforms(state_dir)[settled]);
  assert.match(next.transform.message, /^up to date: /, "idle again once the change is built");

  const stopped = await daemon.terminate(15_000);
  assert.equal(stopped.code, 0);
  assert.deepEqual(processes_tagged(tag), [], "no process of the daemon is left");
});
