import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { test } from "node:test";
import { promisify } from "node:util";
import { compiled_path, repo_root } from "../lib/paths.js";

const run_file = promisify(execFile);

// Benchmarks are not tests: no speed is asserted here. This runs the quick mode once so that the
// benchmarks cannot rot: every figure is measured, printed and written.
test("npm run bench -- --quick measures and reports every figure", async () => {
  const { stdout } = await run_file(process.execPath, [compiled_path("bench/run.ts"), "--quick"],
    { timeout: 600_000, maxBuffer: 16 * 1024 * 1024 });
  const pages = ["a", "b", "c", "d", "e", "f"];
  const ids = ["4a", "4b", "4c", "5a", "5b", "1a", "1b", "2a", "2b", "3a", "3b", ...pages.map((p) => `10${p}`),
    ...pages.map((p) => `11${p}`), "2c", "6a", "6b", "7", "8a", "8b", "9c", "9e", "9a", "9b", "9d", "12a", "12b"];
  for (const id of ids) assert.match(stdout, new RegExp(`^${id}\\s`, "m"), `figure ${id} is in the table`);
  const results = JSON.parse(fs.readFileSync(path.join(repo_root, "bench/results/latest-quick.json"), "utf8"));
  assert.match(results.versions.duckdb, /^v1\.5\.6/);
  assert.match(results.versions.sqlmesh, /0\.236\.4/);
  assert.deepEqual(results.figures.map((f: { id: string }) => f.id).filter((id: string) => ids.includes(id)), ids);
  for (const figure of results.figures) {
    assert.ok(figure.ours.runs > 0 && figure.reference.runs > 0, `${figure.id} was measured`);
  }
});
