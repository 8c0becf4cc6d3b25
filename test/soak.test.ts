import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { test } from "node:test";
import { promisify } from "node:util";
import type { SoakResult } from "../bench/soak.js";
import { compiled_path, repo_root } from "../lib/paths.js";

const run_file = promisify(execFile);

// The soak's quick mode: no speed or slope is asserted (a minute and a half says nothing about
// months), but what a reader would notice in any length of run is: no request fails outside the
// injected kills, every fault was really injected, and nothing of the daemon outlives its stop.
test("a quick soak (kill -9 of the web and of the worker, upstream 500s, two releases alternating under steady load) fails no request outside the kills and leaves no process", async () => {
  const { stdout } = await run_file(process.execPath, [compiled_path("bench/run.ts"), "--soak", "1.5", "--quick"],
    { timeout: 600_000, maxBuffer: 16 * 1024 * 1024 });
  const result = JSON.parse(fs.readFileSync(path.join(repo_root, "bench/results/soak-quick.json"), "utf8")) as SoakResult;

  assert.ok(result.requests > 100, `steady load: ${result.requests} requests`);
  assert.equal(result.failed_outside_kills, 0, JSON.stringify(result.failed_outside_kills_by_outcome));
  assert.deepEqual(result.kills.map((kill) => kill.what), ["web", "worker"], "both kills were injected");
  for (const kill of result.kills) assert.ok(Number.isFinite(kill.settled_after_s), `serving again after the ${kill.what}'s kill`);
  assert.ok(result.failed_extracts_while_upstream_broken >= 1, "a cycle met the broken upstream");
  assert.ok(result.releases_published >= 1, "a release switch was published");
  assert.deepEqual(result.processes.map((p) => p.role), ["launcher", "worker", "web"], "every process was sampled");
  assert.notEqual(result.processes.find((p) => p.role === "web")!.pid, result.kills[0]!.pid, "the web sampled at the end is the one started after the kill");
  assert.equal(result.stop_exit_code, 0, "a clean stop");
  assert.deepEqual(result.leftover_processes, [], "no process of the daemon is left");
  assert.match(stdout, /^worker +\d+ /m, "the table lists the worker");
  assert.match(stdout, /^log at LOG_LEVEL=info: \d+ lines\/h/m);
});

test("--soak refuses a length it cannot run, naming the bound", async () => {
  await assert.rejects(run_file(process.execPath, [compiled_path("bench/run.ts"), "--soak", "soon"], { timeout: 60_000 }),
    (error: { stderr: string }) => /--soak takes the run's length in minutes, 1 to 1440 \(got "soon"\)/.test(error.stderr));
});
