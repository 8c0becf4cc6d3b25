import assert from "node:assert/strict";
import fs from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import test, { type TestContext } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { pathToFileURL } from "node:url";
import { compiled_path } from "../lib/paths.js";
import { pid_alive } from "../lib/pipeline_lock.js";
import { process_group_alive } from "../lib/subprocess.js";
import { daemon_in_sandbox, http_status, processes_tagged, sandbox_stop_timeout_s as stop_timeout_s, wait_until } from "./support/daemon_process.js";
import { run_cli } from "./support/sandbox.js";

/** A SQLMesh that hangs: it ignores SIGTERM, as does the child it starts, and writes its process group id. */
function write_hung_sqlmesh(t: TestContext): { bin: string; pgid_file: string } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "materia-hung-"));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const bin = path.join(dir, "hung-sqlmesh.sh");
  const pgid_file = path.join(dir, "hung-sqlmesh.pgid");
  fs.writeFileSync(bin, `#!/bin/sh\ntrap '' TERM\necho $$ > "${pgid_file}"\nsleep 300 &\nsleep 300\n`, { mode: 0o755 });
  return { bin, pgid_file };
}

test("three cycles on the shipped data: READY=1 once the web answers, STATUS per job, run history, kill -9 of the web child, STOPPING=1 on TERM", async (t) => {
  // As systemd would set them for WatchdogSec=2: a ping every second.
  const { daemon, notify, status, runs, sandbox, tag } = await daemon_in_sandbox(t, { WATCHDOG_USEC: "2000000" });

  await notify.wait_for("READY=1", /^READY=1$/m, 30_000);
  const web_url = status()?.web_url;
  assert.ok(web_url, "the status file names the web URL once READY=1 was sent");
  assert.ok([200, 503].includes((await http_status(`${web_url}/healthz`))!), "the web child answers /healthz when READY=1 arrives");
  const web_env = fs.readFileSync(`/proc/${status()!.web_pid}/environ`, "utf8").split("\0");
  assert.deepEqual(web_env.filter((line) => /^(NOTIFY_SOCKET|WATCHDOG_|LISTEN_)/.test(line)), [],
    "the web child never talks to systemd in the daemon's name");

  await wait_until("three ok cycles", 120_000, () => runs("export_serving", "ok").length >= 3);
  const cycles = new Set(runs(undefined, "ok").map((run) => run.cycle_id));
  assert.ok(cycles.size >= 3);
  for (const job of ["extract", "transform", "export_serving"]) {
    assert.ok(runs(job, "ok").length >= 3, `${job} ran ok in each cycle`);
  }
  const statuses = notify.messages.flatMap((m) => m.split("\n")).filter((line) => line.startsWith("STATUS="));
  for (const expected of ["STATUS=extract running", "STATUS=transform running", "STATUS=export_serving running"]) {
    assert.ok(statuses.includes(expected), `systemd saw ${expected}`);
  }
  assert.ok(statuses.some((line) => /^STATUS=idle, next run \d\d:\d\d:\d\d$/.test(line)), "systemd saw the idle wait");
  assert.equal(notify.messages.filter((m) => /^READY=1$/m.test(m)).length, 1, "READY=1 is sent once");
  assert.ok(notify.messages.filter((m) => m === "WATCHDOG=1").length >= 2, "the watchdog is pinged");

  const cli = await run_cli(["status"], sandbox.env);
  assert.equal(cli.code, 0, cli.stderr);
  assert.match(cli.stdout, /^daemon: (idle|running|updating)/m);
  assert.match(cli.stdout, /export_serving\s+ok/);

  const old_web_pid = status()!.web_pid!;
  process.kill(old_web_pid, "SIGKILL");
  const new_url = await wait_until("a new web child that serves", 10_000, async () => {
    const now = status();
    if (!now?.web_pid || now.web_pid === old_web_pid || !now.web_url) return undefined;
    return [200, 503].includes((await http_status(`${now.web_url}/healthz`)) ?? 0) && now.web_url;
  });
  const health = await fetch(`${new_url}/healthz`);
  assert.equal(health.status, 200, `the new web child serves the published file: ${await health.text()}`);

  const stopped = await daemon.terminate(stop_timeout_s * 1000 + 5_000);
  assert.equal(stopped.code, 0);
  assert.ok(stopped.elapsed_ms < stop_timeout_s * 1000, `stopped in ${stopped.elapsed_ms} ms`);
  assert.ok(notify.messages.some((m) => /^STOPPING=1$/m.test(m)), "systemd saw STOPPING=1");
  assert.deepEqual(processes_tagged(tag), [], "no process of the daemon is left");
  assert.ok(daemon.lines.every((line) => /^<[0-7]>(error|warn|info|debug): /.test(line)), "every log line carries its syslog priority");
});

test("a failing extract (upstream 500) leads to the backoff wait, in STATUS and the log, then to the next attempt", async (t) => {
  let requests = 0;
  const upstream = http.createServer((_req, res) => {
    requests++;
    res.writeHead(500).end("upstream broke");
  });
  await new Promise<void>((resolve) => upstream.listen(0, "127.0.0.1", resolve));
  t.after(() => upstream.close());
  const url = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}/psd_coffee_csv.zip`;
  const { daemon, notify, runs, status } = await daemon_in_sandbox(t, { PSD_SOURCE_URL: url });

  await notify.wait_for("backoff STATUS", /^STATUS=backoff after extract failure, retry \d\d:\d\d:\d\d$/m, 30_000);
  await wait_until("a second extract attempt", 30_000, () => runs("extract", "failed").length >= 2);
  assert.ok(requests >= 2, "the upstream was asked again after the backoff");
  assert.equal(runs("transform").length, 0, "nothing runs after a failed extract");
  assert.match(status()!.last_error ?? "", /extract: .*500/);

  const error_line = await daemon.wait_for_line(/^<3>error: extract: failed after \d+ ms: .*500/, 5_000);
  assert.ok(error_line);
  await daemon.wait_for_line(/^<4>warn: backoff after extract failure: next attempt at /, 5_000);
  await daemon.wait_for_line(/^<6>info: extract: started$/, 5_000);
  const starts = daemon.lines.filter((line) => line === "<6>info: extract: started");
  assert.ok(starts.length >= 2, "the log shows the next attempt");
  assert.equal((await daemon.terminate(stop_timeout_s * 1000 + 5_000)).code, 0);
});

test("a hung SQLMESH_BIN is killed at TRANSFORM_TIMEOUT_S with its whole process group, recorded as timeout, and the loop goes on", async (t) => {
  const hung = write_hung_sqlmesh(t);
  const { daemon, notify, runs, tag } = await daemon_in_sandbox(t, { TRANSFORM_TIMEOUT_S: "2", SQLMESH_BIN: hung.bin });
  const timed_out = await wait_until("a transform timeout", 60_000, () => runs("transform", "timeout")[0]);
  const pgid = Number(fs.readFileSync(hung.pgid_file, "utf8"));
  assert.ok(pgid > 0);
  assert.equal(process_group_alive(pgid), false, "no process of SQLMesh's group is left");
  assert.match(timed_out.message, /timed out after 2 s/);
  assert.ok(timed_out.ended_at);
  await daemon.wait_for_line(/^<3>error: transform: timeout: /, 5_000);
  await notify.wait_for("backoff STATUS", /^STATUS=backoff after transform timeout, retry \d\d:\d\d:\d\d$/m, 5_000);

  await wait_until("the next cycle after the backoff", 30_000, () => runs("extract").length >= 2);
  const stopped = await daemon.terminate(stop_timeout_s * 1000 + 5_000);
  assert.equal(stopped.code, 0);
  assert.deepEqual(processes_tagged(tag), []);
});

test("TERM during a running transform: exit 0 within STOP_TIMEOUT_S, no process left, the run recorded as cancelled, daemon.json and materia status say stopped cleanly", async (t) => {
  const hung = write_hung_sqlmesh(t);
  const { sandbox, daemon, notify, runs, tag, status } = await daemon_in_sandbox(t, { SQLMESH_BIN: hung.bin });
  await wait_until("SQLMesh running", 60_000, () => fs.existsSync(hung.pgid_file) && fs.readFileSync(hung.pgid_file, "utf8").trim() !== "");
  const pgid = Number(fs.readFileSync(hung.pgid_file, "utf8"));
  assert.equal(process_group_alive(pgid), true);
  const by_hand = await run_cli(["pipeline", "run", "all"], sandbox.env, 60_000);
  assert.equal(by_hand.code, 1, "a pipeline run from the CLI is refused while the daemon's cycle runs");
  assert.match(by_hand.stderr, /pipeline already running \(pid \d+\)/);

  const stopped = await daemon.terminate(stop_timeout_s * 1000 + 5_000);
  assert.equal(stopped.code, 0);
  t.diagnostic(`TERM to exit during a transform whose group ignores TERM: ${stopped.elapsed_ms} ms`);
  assert.ok(stopped.elapsed_ms < stop_timeout_s * 1000, `stopped in ${stopped.elapsed_ms} ms`);
  assert.equal(process_group_alive(pgid), false, "SQLMesh's process group is gone");
  assert.deepEqual(processes_tagged(tag), [], "no process of the daemon is left");
  assert.equal(runs("transform", "cancelled").length, 1);
  assert.ok(notify.messages.some((m) => /^STOPPING=1$/m.test(m)));

  const after = status()!;
  assert.equal(after.state, "stopped");
  assert.equal(after.exit_code, 0);
  assert.equal(after.pid, daemon.pid);
  assert.deepEqual([after.worker_pid, after.web_pid, after.current_job], [null, null, null], "no dead PID is named as running");
  const stopped_ms = Date.parse(after.stopped_at!);
  assert.ok(stopped_ms >= Date.now() - stopped.elapsed_ms - 60_000 && stopped_ms <= Date.now(), `stopped at ${after.stopped_at}`);
  const cli = await run_cli(["status"], sandbox.env);
  assert.equal(cli.code, 0, cli.stderr);
  assert.match(cli.stdout, new RegExp(`^daemon: stopped cleanly at ${after.stopped_at!.replace(/\./g, "\\.")} \\(pid ${daemon.pid}, commit \\S+\\)$`, "m"));
});

test("a web process that keeps dying is re-forked after growing delays, capped at RESTART_DELAY_MS_MAX; READY=1 waits until one listens", async (t) => {
  // While the flag file exists, every web process exits at start (test/support/web_dies.ts).
  const flag_dir = fs.mkdtempSync(path.join(os.tmpdir(), "materia-web-dies-"));
  t.after(() => fs.rmSync(flag_dir, { recursive: true, force: true }));
  const flag_file = path.join(flag_dir, "web-dies");
  fs.writeFileSync(flag_file, "");
  const { daemon, notify, status } = await daemon_in_sandbox(t, { RESTART_DELAY_MS_MAX: "2000", PIPELINE_INTERVAL_S: "3600",
    MATERIA_TEST_WEB_DIES: flag_file, NODE_OPTIONS: `--import=${pathToFileURL(compiled_path("test/support/web_dies.ts"))}` });

  await wait_until("four re-forks", 30_000, () => daemon.lines.filter((line) => / re-forking in \d+ ms$/.test(line)).length >= 4);
  const delays_ms = daemon.lines.map((line) => / re-forking in (\d+) ms$/.exec(line)?.[1]).filter(Boolean).map(Number);
  assert.deepEqual(delays_ms.slice(0, 4), [500, 1000, 2000, 2000]);
  assert.ok(daemon.lines.some((line) => /^<3>error: web: pid \d+ exited \(code 1\) after \d+ ms; re-forking in /.test(line)));
  assert.equal(notify.messages.filter((m) => /^READY=1$/m.test(m)).length, 0, "no READY=1 while no web process listens");

  fs.rmSync(flag_file);
  await notify.wait_for("READY=1", /^READY=1$/m, 10_000);
  assert.equal(await http_status(`${status()!.web_url}/healthz`).then((code) => code !== undefined), true);
  assert.equal((await daemon.terminate(stop_timeout_s * 1000 + 5_000)).code, 0);
});

test("a port another process listens on stops the daemon at start with one line naming it, exit 1", async (t) => {
  const squatter = http.createServer((_req, res) => res.end());
  await new Promise<void>((resolve) => squatter.listen(0, "127.0.0.1", resolve));
  t.after(() => squatter.close());
  const port = (squatter.address() as AddressInfo).port;
  const { daemon, tag } = await daemon_in_sandbox(t, { WEB_PORT: String(port) });
  const exit = await Promise.race([daemon.exited, sleep(30_000, undefined, { ref: false })]);
  assert.deepEqual(exit, { code: 1, signal: null });
  assert.deepEqual(daemon.lines.filter((line) => line.startsWith("<3>")),
    [`<3>error: daemon: cannot listen on 127.0.0.1:${port}: EADDRINUSE`]);
  assert.deepEqual(processes_tagged(tag), [], "no worker or web process was started");
});

test("kill -9 of the daemon's worker during a transform: the daemon (same PID) starts a new worker, which kills the SQLMesh group left behind and closes the run", async (t) => {
  const hung = write_hung_sqlmesh(t);
  const { daemon, status, runs, tag, sandbox } = await daemon_in_sandbox(t, { SQLMESH_BIN: hung.bin });
  await wait_until("SQLMesh running", 60_000, () => fs.existsSync(hung.pgid_file) && fs.readFileSync(hung.pgid_file, "utf8").trim() !== "");
  const pgid = Number(fs.readFileSync(hung.pgid_file, "utf8"));
  // The shell writes its pgid file on its own clock; the kill must come after the worker put the group on disk.
  const groups_file = path.join(sandbox.config.materia_state_dir, "job_groups.json");
  await wait_until("the group on disk", 10_000, () => fs.existsSync(groups_file)
    && (JSON.parse(fs.readFileSync(groups_file, "utf8")) as { pgid: number }[]).some((group) => group.pgid === pgid));
  const old_worker_pid = status()!.worker_pid!;

  process.kill(old_worker_pid, "SIGKILL");
  const web_pid = status()!.web_pid;
  assert.ok(web_pid);
  await daemon.wait_for_line(new RegExp(`^<3>error: daemon: worker ${old_worker_pid} died \\(SIGKILL\\); starting a new one in \\d+ ms; the web keeps serving$`), 30_000);
  await wait_until("the left SQLMesh group killed", 20_000, () => !process_group_alive(pgid));
  await daemon.wait_for_line(/^<4>warn: killed 1 process group\(s\) left by a worker that died$/, 5_000);
  const closed = await wait_until("the dead worker's transform run closed", 5_000,
    () => runs("transform", "cancelled").find((run) => run.message === "the daemon died while it ran"));
  assert.ok(closed.ended_at);
  assert.equal(status()!.pid, daemon.pid);
  assert.notEqual(status()!.worker_pid, old_worker_pid);
  await wait_until("the new worker to know the web process", 30_000, () => status()?.web_pid === web_pid);
  assert.equal(pid_alive(web_pid), true, "the web process the dead worker knew still runs");

  assert.equal((await daemon.terminate(stop_timeout_s * 1000 + 5_000)).code, 0);
  assert.deepEqual(processes_tagged(tag), []);
});

test("kill -9 of the daemon itself: its worker and web child stop on their own within STOP_TIMEOUT_S, and materia status says it died", async (t) => {
  const hung = write_hung_sqlmesh(t);
  const { daemon, tag, sandbox, status } = await daemon_in_sandbox(t, { SQLMESH_BIN: hung.bin });
  await wait_until("SQLMesh running", 60_000, () => fs.existsSync(hung.pgid_file) && fs.readFileSync(hung.pgid_file, "utf8").trim() !== "");

  process.kill(daemon.pid, "SIGKILL");
  await wait_until("every process of the daemon gone", stop_timeout_s * 1000, () => processes_tagged(tag).length === 0);
  await daemon.wait_for_line(/^<6>info: the daemon's launcher is gone: stopping/, 1_000);

  assert.notEqual(status()!.state, "stopped", "nobody recorded a stop");
  const cli = await run_cli(["status"], sandbox.env);
  assert.equal(cli.code, 0, cli.stderr);
  assert.match(cli.stdout, new RegExp(`^daemon: DIED \\(pid ${daemon.pid} is gone without a clean stop; last state \\w+ at \\S+, commit \\S+\\)$`, "m"));
});
