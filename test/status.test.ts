import assert from "node:assert/strict";
import test from "node:test";
import { RunHistory, type RunRecord } from "../daemon/run_history.js";
import { make_sandbox, run_cli } from "./support/sandbox.js";

/** `count` finished extract runs, one a minute, the newest last. */
function record_runs(state_dir: string, count: number, entries_max: number): void {
  const history = new RunHistory(state_dir, entries_max);
  for (let index = 0; index < count; index++) {
    const started_at = new Date(Date.UTC(2026, 0, 1, 0, index)).toISOString();
    const cycle_id = `cycle-${String(index).padStart(4, "0")}`;
    const run: RunRecord = { run_id: `${cycle_id}.extract`, cycle_id, job: "extract", started_at, ended_at: started_at,
      outcome: "ok", message: `run ${index}`, output_tail: "" };
    history.record(run);
  }
}

const listed_runs = (stdout: string) => stdout.split("\n").filter((line) => /^ {2}\S+ {2}extract /.test(line));

test("materia status --runs lists up to RUN_HISTORY_ENTRIES_MAX runs, as many as the history keeps; one more is refused naming the setting", async (t) => {
  const sandbox = make_sandbox({ RUN_HISTORY_ENTRIES_MAX: "120" });
  t.after(() => sandbox.cleanup());
  record_runs(sandbox.config.materia_state_dir, 130, 120);

  const all = await run_cli(["status", "--runs", "120"], sandbox.env);
  assert.equal(all.code, 0, all.stderr);
  const lines = listed_runs(all.stdout);
  assert.equal(lines.length, 120, "every run the history keeps");
  assert.match(lines[0]!, /run 129$/, "newest first");
  assert.match(lines.at(-1)!, /run 10$/, "the oldest kept");

  const beyond = await run_cli(["status", "--runs", "121"], sandbox.env);
  assert.equal(beyond.code, 1);
  assert.equal(beyond.stdout, "");
  assert.match(beyond.stderr, /^error: option '--runs <n>' argument '121' is invalid\. expected a whole number from 1 to RUN_HISTORY_ENTRIES_MAX=120$/m);
  for (const bad of ["0", "-3", "ten", "2.5"]) {
    const refused = await run_cli(["status", "--runs", bad], sandbox.env);
    assert.equal(refused.code, 1, `--runs ${bad} is refused`);
    assert.match(refused.stderr, /expected a whole number from 1 to RUN_HISTORY_ENTRIES_MAX=120/);
  }
});

test("with the default RUN_HISTORY_ENTRIES_MAX (500), materia status --runs 200 lists 200 runs", async (t) => {
  const sandbox = make_sandbox();
  t.after(() => sandbox.cleanup());
  assert.equal(sandbox.config.run_history_entries_max, 500);
  record_runs(sandbox.config.materia_state_dir, 210, 500);
  const result = await run_cli(["status", "--runs", "200"], sandbox.env);
  assert.equal(result.code, 0, result.stderr);
  assert.equal(listed_runs(result.stdout).length, 200);
});
