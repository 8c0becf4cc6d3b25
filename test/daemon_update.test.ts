import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import test from "node:test";
import { read_daemon_status } from "../lib/run_history.js";
import { deployed_checkout, git } from "./support/git_origin.js";
import { healthz, NotifySocket, processes_tagged, wait_until } from "./support/daemon_process.js";
import { press_run_now } from "./support/web_client.js";

const admin_password = "test-admin-password";

test("HUP with a newer commit on the git origin: the daemon (same PID) runs it and the web serves it; a failed update keeps the old commit; Run now on the admin page picks up the next one; a commit that does not build is rolled back", async (t) => {
  const deployed = await deployed_checkout(t, "update", {
    PIPELINE_INTERVAL_S: "3600", STOP_TIMEOUT_S: "10", SUBPROCESS_KILL_GRACE_MS: "1000", WEB_SHUTDOWN_GRACE_MS: "2000",
    GIT_TIMEOUT_S: "30", ADMIN_PASSWORD: admin_password,
  });
  const { sandbox, tag, checkout } = deployed;
  const { work, origin } = deployed.origin;
  const notify = await NotifySocket.open(sandbox.dir);
  t.after(() => notify.close());
  const base = await git(checkout, "rev-parse", "--short=12", "HEAD");
  const status = () => read_daemon_status(sandbox.config.materia_state_dir);

  const daemon = deployed.start_daemon({ ...sandbox.env, NOTIFY_SOCKET: notify.path });
  await daemon.wait_for_line(new RegExp(`^<6>info: materia daemon ${base} started`), 30_000);
  await notify.wait_for("READY=1", /^READY=1$/m, 30_000);
  await wait_until("the first cycle to finish", 120_000, () => status()?.state === "idle");
  const first_worker_pid = status()!.worker_pid;

  // A newer commit lands on the origin: a code change, as a deploy would push.
  fs.appendFileSync(path.join(work, "lib/contract.ts"), "// a newer commit\n");
  await git(work, "commit", "-q", "-am", "newer");
  await git(work, "push", "-q", origin, "main");
  const newer = await git(work, "rev-parse", "--short=12", "HEAD");
  const notify_seen = notify.messages.length;

  const hup_ms = Date.now();
  process.kill(daemon.pid, "SIGHUP");
  await daemon.wait_for_line(new RegExp(`^<6>info: materia daemon ${newer} started`), 30_000);
  const web = await wait_until("the web serving the new commit", 30_000, async () => {
    const url = status()?.commit === newer ? status()?.web_url : undefined;
    const health = url ? await healthz(url) : undefined;
    return health?.commit === newer && health;
  });
  const hup_to_serving_ms = Date.now() - hup_ms;
  t.diagnostic(`HUP to the web serving the new commit: ${hup_to_serving_ms} ms`);
  assert.ok(hup_to_serving_ms < 30_000, "the new commit runs within 30 s of the HUP");
  assert.equal(web.status, 200, "the new web process serves the published file");
  assert.equal(status()!.pid, daemon.pid, "the daemon keeps its PID");
  assert.notEqual(status()!.worker_pid, first_worker_pid, "its worker was restarted");
  assert.equal(await git(checkout, "rev-parse", "--short=12", "HEAD"), newer);
  const reload = await notify.wait_for("RELOADING=1", /^RELOADING=1\nMONOTONIC_USEC=\d+\n/, 5_000, notify_seen);
  await notify.wait_for("READY=1 after the reload", /^READY=1$/m, 30_000, notify.messages.indexOf(reload));

  // The origin is gone: the update fails, is logged, the reload still ends with READY=1, the
  // daemon keeps running the commit it has.
  fs.renameSync(origin, `${origin}.gone`);
  const seen_before_failure = notify.messages.length;
  const lines_before_failure = daemon.lines.length;
  process.kill(daemon.pid, "SIGHUP");
  await daemon.wait_for_line(/^<3>error: reload: update failed, running \S+ still: git fetch .* failed \(exit \d+\): fatal: /, 60_000, lines_before_failure);
  const failed_reload = await notify.wait_for("RELOADING=1", /^RELOADING=1\n/m, 5_000, seen_before_failure);
  await notify.wait_for("READY=1 after the failed reload", /^READY=1$/m, 10_000, notify.messages.indexOf(failed_reload));
  assert.equal(status()!.commit, newer);
  await daemon.wait_for_line(/^<6>info: cycle ok; next run at /, 60_000, lines_before_failure);

  // The origin is back with a third commit; nothing would run for an hour, but the operator
  // presses "Run now": the cycle starts at once, its self-update finds the commit and restarts on it.
  fs.renameSync(`${origin}.gone`, origin);
  fs.appendFileSync(path.join(work, "lib/contract.ts"), "// a third commit\n");
  await git(work, "commit", "-q", "-am", "third");
  await git(work, "push", "-q", origin, "main");
  const third = await git(work, "rev-parse", "--short=12", "HEAD");
  assert.equal(await press_run_now(status()!.web_url!, admin_password), 303);
  await daemon.wait_for_line(new RegExp(`^<6>info: materia daemon ${third} started`), 30_000);
  await wait_until("the web serving the third commit", 30_000, async () => {
    const url = status()?.commit === third ? status()?.web_url : undefined;
    return url !== undefined && url !== null && (await healthz(url))?.commit === third;
  });
  assert.equal(status()!.pid, daemon.pid);

  // A commit that does not compile: the rebuild fails, the checkout goes back to the third
  // commit and is rebuilt, the daemon goes on with it, and later cycles do not try it again.
  fs.appendFileSync(path.join(work, "lib/contract.ts"), "export const broken: number = \"not a number\";\n");
  await git(work, "commit", "-q", "-am", "broken");
  await git(work, "push", "-q", origin, "main");
  const broken = await git(work, "rev-parse", "--short=12", "HEAD");
  const lines_before_broken = daemon.lines.length;
  process.kill(daemon.pid, "SIGHUP");
  await daemon.wait_for_line(new RegExp(`^<3>error: update: sh infra/setup.sh failed .*; switching back to ${third}$`), 120_000, lines_before_broken);
  await daemon.wait_for_line(/^<3>error: reload: update failed, running /, 120_000, lines_before_broken);
  await daemon.wait_for_line(new RegExp(`^<3>error: update failed, running ${third} still: origin/main is still at ${broken}, which failed to build`),
    60_000, lines_before_broken);
  assert.equal(await git(checkout, "rev-parse", "--short=12", "HEAD"), third);
  assert.equal(status()!.commit, third);
  assert.equal((await healthz(status()!.web_url!))?.commit, third, "the web still serves the third commit");

  const stopped = await daemon.terminate(15_000);
  assert.equal(stopped.code, 0);
  assert.deepEqual(processes_tagged(tag), [], "no process of the daemon is left");
});
