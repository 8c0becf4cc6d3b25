import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { describe, test } from "node:test";
import { promisify } from "node:util";
import { compiled_path, repo_root } from "../lib/paths.js";

const run_file = promisify(execFile);

// Benchmarks are not tests: no speed is asserted here. This runs the quick mode of every group
// so that the benchmarks cannot rot: every figure is measured, printed and written. One group
// per test, each with its own bound: the whole quick run takes minutes on a busy machine.
const pages = ["a", "b", "c", "d", "e", "f"];
const figures_by_group: Record<string, string[]> = {
  export: ["4a", "4b", "4c"],
  extract: ["5a", "5b"],
  web: ["1a", "1b", "2a", "2b", "3a", "3b"],
  pages: [...pages.map((p) => `10${p}`), ...pages.map((p) => `11${p}`), "2c"],
  daemon: ["6a", "6b", "7"],
  transform: ["8a", "8b"],
  handover: ["9c", "9e", "9a", "9b", "9d"],
  follow: ["12a", "12b"],
};
const group_timeout_ms = 600_000;

describe("npm run bench -- --quick measures and reports every figure", () => {
  test("the groups are the ones bench/run.ts runs", async () => {
    const { stderr } = await run_file(process.execPath, [compiled_path("bench/run.ts"), "--quick", "--only", "no-such-group"])
      .then(() => assert.fail("an unknown group must be refused"), (error: { stderr: string }) => error);
    assert.match(stderr, new RegExp(`expected one of ${Object.keys(figures_by_group).join(", ")}\\b`));
  });

  for (const [group, ids] of Object.entries(figures_by_group)) {
    test(`${group}: figures ${ids.join(", ")}`, { timeout: group_timeout_ms }, async () => {
      const { stdout } = await run_file(process.execPath, [compiled_path("bench/run.ts"), "--quick", "--only", group],
        { timeout: group_timeout_ms, maxBuffer: 16 * 1024 * 1024 });
      for (const id of ids) assert.match(stdout, new RegExp(`^${id}\\s`, "m"), `figure ${id} is in the table`);
      const results = JSON.parse(fs.readFileSync(path.join(repo_root, "bench/results/latest-quick.json"), "utf8"));
      assert.match(results.versions.duckdb, /^v1\.5\.6/);
      assert.match(results.versions.sqlmesh, /0\.236\.4/);
      assert.deepEqual(results.figures.map((f: { id: string }) => f.id).filter((id: string) => ids.includes(id)), ids);
      for (const figure of results.figures) {
        assert.ok(figure.ours.runs > 0 && figure.reference.runs > 0, `${figure.id} was measured`);
      }
    });
  }
});
