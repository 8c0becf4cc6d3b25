import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { describe, test } from "node:test";
import { current_release_path } from "../jobs/current_release.js";
import { sqlmesh_env, sqlmesh_project_dir } from "../jobs/transform/transform.js";
import { pid_alive } from "../lib/pipeline_lock.js";
import { wait_until } from "./support/daemon_process.js";
import { write_hung_sqlmesh } from "./support/fake_sqlmesh.js";
import { write_revised_release } from "./support/psd_zip.js";
import { cli_path, make_sandbox, run_cli } from "./support/sandbox.js";

/** Waits until `file` holds something: the hung script has written a pid into it. */
const wait_for_file = (file: string, timeout_ms: number) => wait_until(`${file} to be written`, timeout_ms,
  () => fs.existsSync(file) && fs.readFileSync(file, "utf8").trim() !== "");

const read_pid = (file: string) => Number(fs.readFileSync(file, "utf8").trim());

describe("transform", () => {
  test("the SQLMesh unit tests of the models pass", (t) => {
    const sandbox = make_sandbox();
    t.after(() => sandbox.cleanup());
    const result = spawnSync(sandbox.config.sqlmesh_bin, ["--paths", sqlmesh_project_dir, "test"], {
      cwd: sqlmesh_project_dir, env: sqlmesh_env(sandbox.config, { current: "", previous: "" }), stdio: ["ignore", "pipe", "pipe"], encoding: "utf8",
      timeout: 300_000,
    });
    assert.equal(result.status, 0, result.stdout + result.stderr);
    assert.match(result.stdout, /Successfully Ran `\d+` Tests/);
  });

  test("without a current release, or with a damaged pointer, the transform refuses and names the file", async (t) => {
    const sandbox = make_sandbox();
    t.after(() => sandbox.cleanup());
    const pointer = current_release_path(sandbox.config.materia_state_dir);
    const missing = await run_cli(["pipeline", "run", "transform"], sandbox.env);
    assert.equal(missing.code, 1);
    assert.equal(missing.stderr.trim(), `materia: transform: no current release (${pointer}): run extract first`);

    fs.mkdirSync(path.dirname(pointer), { recursive: true });
    fs.writeFileSync(pointer, JSON.stringify({ etag: '"x"', release_id: "x" }));
    const damaged = await run_cli(["pipeline", "run", "transform"], sandbox.env);
    assert.equal(damaged.code, 1);
    assert.equal(damaged.stderr.trim(),
      `materia: transform: ${pointer} is not a current-release pointer (file: Invalid input: expected string, received undefined): run extract to rewrite it`);

    fs.writeFileSync(pointer, JSON.stringify({ etag: '"x"', release_id: "x", file: "psd/2024/10/x.csv.gzip", since: "2024-10-10T12:00:00Z" }));
    const not_landed = await run_cli(["pipeline", "run", "transform"], sandbox.env);
    assert.equal(not_landed.code, 1);
    assert.equal(not_landed.stderr.trim(),
      "materia: transform: the current release x is not in LANDING_DIR: psd/2024/10/x.csv.gzip is missing (restore it, or run extract)");
    assert.equal(fs.existsSync(sandbox.config.duckdb_path), false, "SQLMesh never ran");
  });

  test("a hung SQLMESH_BIN is killed at TRANSFORM_TIMEOUT_S and leaves no process behind", async (t) => {
    const sandbox = make_sandbox();
    t.after(() => sandbox.cleanup());
    const hung = write_hung_sqlmesh(sandbox.dir);
    const env = { ...sandbox.env, SQLMESH_BIN: hung.bin, TRANSFORM_TIMEOUT_S: "1", SUBPROCESS_KILL_GRACE_MS: "300" };
    assert.equal((await run_cli(["pipeline", "run", "extract"], env)).code, 0);
    const result = await run_cli(["pipeline", "run", "transform"], env);
    assert.notEqual(result.code, 0);
    assert.equal(result.stderr.trim(),
      "materia: transform: sqlmesh timed out after TRANSFORM_TIMEOUT_S=1 s; its process group was killed");
    const leader = read_pid(hung.leader_pid_file);
    assert.equal(pid_alive(leader), false, "the hung leader is gone");
    assert.equal(pid_alive(read_pid(hung.child_pid_file)), false, "its child, which ignored SIGTERM too, is gone");
    assert.throws(() => process.kill(-leader, 0), { code: "ESRCH" }, "no process of its group exists");
  });

  test("Ctrl-C (SIGINT) during a transform kills the SQLMesh group before the CLI exits", async (t) => {
    const sandbox = make_sandbox();
    t.after(() => sandbox.cleanup());
    const hung = write_hung_sqlmesh(sandbox.dir);
    const env = { ...sandbox.env, SQLMESH_BIN: hung.bin, SUBPROCESS_KILL_GRACE_MS: "300" };
    assert.equal((await run_cli(["pipeline", "run", "extract"], env)).code, 0);
    const cli = spawn(process.execPath, [cli_path, "pipeline", "run", "transform"], { env, stdio: ["ignore", "pipe", "pipe"] });
    let stderr = "";
    cli.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    const exited = new Promise<number | null>((resolve) => cli.once("exit", resolve));
    await wait_for_file(hung.child_pid_file, 30_000);
    await wait_for_file(hung.leader_pid_file, 30_000);

    const second = await run_cli(["pipeline", "run", "all"], env);
    assert.equal(second.code, 1);
    assert.equal(second.stderr.trim(), `materia: pipeline already running (pid ${cli.pid})`);

    cli.kill("SIGINT");
    assert.equal(await exited, 1);
    assert.equal(stderr.trim(), "materia: transform: sqlmesh cancelled; its process group was killed");
    const leader = read_pid(hung.leader_pid_file);
    assert.equal(pid_alive(leader), false);
    assert.equal(pid_alive(read_pid(hung.child_pid_file)), false);
    assert.equal(fs.existsSync(path.join(sandbox.config.materia_state_dir, "pipeline.lock")), false, "the lock is released");
  });

  test("a release that fails an audit stops the transform and the published serving file stays", async (t) => {
    const sandbox = make_sandbox();
    t.after(() => sandbox.cleanup());
    assert.equal((await run_cli(["pipeline", "run", "all"], sandbox.env)).code, 0);
    const published = fs.readFileSync(sandbox.config.serving_duckdb_path);
    const broken = path.join(sandbox.dir, "broken.zip");
    await write_revised_release(broken, { country_code: "BR", market_year: 2023, attribute: "Production", value: -1 });
    const result = await run_cli(["pipeline", "run", "all"], { ...sandbox.env, PSD_SOURCE_URL: `file://${broken}` });
    assert.equal(result.code, 1);
    assert.match(result.stderr.trim(), /^materia: transform: sqlmesh plan failed \(exit 1\): Error: Plan application failed: lakehouse\.foundation\.psd_fact: .accepted_range. audit error/);
    assert.match(result.stdout, /accepted_range/, "the log names the audit that failed");
    assert.deepEqual(fs.readFileSync(sandbox.config.serving_duckdb_path), published);
  });
});
