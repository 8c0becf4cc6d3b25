import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { test } from "node:test";
import { read_run_history, run_history_path, RunHistory, type RunRecord } from "../daemon/run_history.js";

function state_dir(t: { after: (fn: () => void) => void }): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "materia-runs-"));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

const run = (index: number, outcome: RunRecord["outcome"]): RunRecord => ({
  run_id: `cycle-${index}.extract`, cycle_id: `cycle-${index}`, job: "extract", started_at: new Date(Date.UTC(2026, 0, 1, 0, index)).toISOString(),
  ended_at: outcome === "running" ? null : new Date(Date.UTC(2026, 0, 1, 0, index, 30)).toISOString(), outcome, message: `run ${index} ${outcome}`, output_tail: "",
});

const lines_in = (dir: string) => fs.readFileSync(run_history_path(dir), "utf8").split("\n").filter((line) => line !== "").length;

test("a run's end replaces its start; the run recorded last comes first", (t) => {
  const dir = state_dir(t);
  const history = new RunHistory(dir, 10);
  history.record(run(1, "running"));
  history.record(run(1, "ok"));
  history.record(run(2, "running"));
  assert.deepEqual(read_run_history(dir).map((r) => [r.run_id, r.outcome]), [["cycle-2.extract", "running"], ["cycle-1.extract", "ok"]]);
  assert.equal(lines_in(dir), 3, "appended, one line per record");
});

test("the file never reaches 2 × RUN_HISTORY_ENTRIES_MAX lines, and keeps the newest RUN_HISTORY_ENTRIES_MAX runs", (t) => {
  const dir = state_dir(t);
  const history = new RunHistory(dir, 10);
  for (let index = 0; index < 95; index++) {
    history.record(run(index, "running"));
    history.record(run(index, "ok"));
    assert.ok(lines_in(dir) < 20, `${lines_in(dir)} lines after run ${index}`);
  }
  const kept = read_run_history(dir);
  assert.ok(kept.length >= 10 && kept.length < 20, `${kept.length} runs readable`);
  assert.deepEqual(kept.slice(0, 10).map((r) => r.message), Array.from({ length: 10 }, (_, i) => `run ${94 - i} ok`));
  // Another writer (a new worker after a restart) counts the lines afresh and goes on.
  new RunHistory(dir, 10).record(run(95, "ok"));
  assert.equal(read_run_history(dir)[0]!.message, "run 95 ok");
  assert.ok(lines_in(dir) < 20);
});

test("a line a crash cut short is skipped, and the next record is read whole", (t) => {
  const dir = state_dir(t);
  new RunHistory(dir, 10).record(run(1, "ok"));
  fs.appendFileSync(run_history_path(dir), JSON.stringify(run(2, "ok")).slice(0, 40));
  assert.deepEqual(read_run_history(dir).map((r) => r.run_id), ["cycle-1.extract"]);
  new RunHistory(dir, 10).record(run(3, "running"));
  assert.deepEqual(read_run_history(dir).map((r) => r.run_id), ["cycle-3.extract", "cycle-1.extract"]);
});

test("a history in the old runs.json (one array, newest first) is read, then moved over at the first record", (t) => {
  const dir = state_dir(t);
  fs.writeFileSync(path.join(dir, "runs.json"), JSON.stringify([run(2, "failed"), run(1, "ok")]));
  assert.deepEqual(read_run_history(dir).map((r) => r.message), ["run 2 failed", "run 1 ok"]);
  new RunHistory(dir, 10).record(run(3, "running"));
  assert.deepEqual(read_run_history(dir).map((r) => r.message), ["run 3 running", "run 2 failed", "run 1 ok"]);
  assert.equal(fs.existsSync(path.join(dir, "runs.json")), false, "the old file is gone");
});

test("close_unfinished marks the runs a dead daemon left running as cancelled", (t) => {
  const dir = state_dir(t);
  const history = new RunHistory(dir, 10);
  history.record(run(1, "ok"));
  history.record(run(2, "running"));
  assert.equal(new RunHistory(dir, 10).close_unfinished("the daemon died while it ran"), 1);
  assert.deepEqual(read_run_history(dir).map((r) => [r.run_id, r.outcome, r.message]),
    [["cycle-2.extract", "cancelled", "the daemon died while it ran"], ["cycle-1.extract", "ok", "run 1 ok"]]);
});
