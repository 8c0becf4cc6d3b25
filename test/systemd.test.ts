import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import crypto from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { wait_until } from "./support/daemon_process.js";
import { serve_release, start_http_server, type TestServer } from "./support/http_server.js";
import { install_materia, supervisor_unit, type MateriaUnderSystemd } from "./support/materia_systemd.js";
import { start_ping_server, type PingServer } from "./support/ping_server.js";
import { list_files, shipped_zip_path } from "./support/sandbox.js";
import { systemd_namespace_refused } from "./support/systemd_namespace.js";

// The real units from infra/systemd/, installed by infra/bootstrap.sh into a real systemd 252
// (PID 1 of a private namespace: test/support/systemd_boot.sh), driven with systemctl and read
// with journalctl as an operator would. One namespace for all the checks below, in order: each
// leaves the daemon running for the next.

const refused = await systemd_namespace_refused();
const unit = supervisor_unit;
const alert_unit = "materia-alert@materia-supervisor.service";
/** Exposure score (0 safe … 10 exposed) each installed service must stay at or below. */
const security_exposure_max = 2.0;
const requirements = "jobs/transform/requirements.txt";

interface Health {
  status: number;
  body: { status?: string; commit?: string };
}

async function healthz(url: string): Promise<Health | undefined> {
  try {
    const response = await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(5_000) });
    return { status: response.status, body: await response.json() as Health["body"] };
  } catch {
    return undefined;
  }
}

/** The backup's remote: `rclone serve webdav` of a host directory on loopback (production's is R2). */
async function start_webdav_remote(): Promise<{ dir: string; url: string; stop(): Promise<void> }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "materia-remote-"));
  const child: ChildProcess = spawn("rclone", ["serve", "webdav", dir, "--addr", "127.0.0.1:0", "--config", "/dev/null"],
    { stdio: ["ignore", "ignore", "pipe"] });
  let output = "";
  child.stderr!.setEncoding("utf8").on("data", (chunk: string) => (output += chunk));
  const url = await wait_until("rclone serve webdav to listen", 30_000, () => {
    if (child.exitCode !== null) throw new Error(`rclone serve webdav exited: ${output}`);
    return /WebDav Server started on (http:\/\/\S+)/.exec(output)?.[1];
  });
  return {
    dir, url,
    stop: async () => {
      if (child.exitCode === null) {
        child.kill("SIGKILL");
        await new Promise((resolve) => child.once("exit", resolve));
      }
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

describe("materia under a real systemd", { skip: refused }, () => {
  let upstream: TestServer;
  let upstream_fails = false;
  let ping: PingServer;
  let remote: Awaited<ReturnType<typeof start_webdav_remote>>;
  let materia: MateriaUnderSystemd;
  let settings: Record<string, string>;

  const show = (...properties: string[]) => materia.ns.show(unit, properties);
  /** The commit the dashboard serves now (its /healthz), once a web child answers. */
  const served_commit = async () => {
    const url = (await materia.daemon_status())?.web_url;
    return url ? (await healthz(url))?.body.commit : undefined;
  };
  /** Everything a reload or update must never show: a failed unit, a restart, another main PID. */
  const assert_never_down = (samples: Record<string, string>[], before: Record<string, string>) => {
    assert.ok(samples.length > 0);
    for (const sample of samples) {
      assert.ok(["active", "reloading"].includes(sample.ActiveState!), `the unit was ${sample.ActiveState}`);
      assert.equal(sample.NRestarts, before.NRestarts, "no restart was counted");
      assert.equal(sample.MainPID, before.MainPID, "the main PID stayed");
    }
  };

  before(async () => {
    const release = serve_release(shipped_zip_path, '"psd-release-1"', "Tue, 12 Nov 2024 12:00:00 GMT");
    upstream = await start_http_server((req, res) => {
      if (upstream_fails) res.writeHead(500).end("upstream broke");
      else release(req, res);
    });
    ping = await start_ping_server();
    remote = await start_webdav_remote();
    settings = { PSD_SOURCE_URL: upstream.url, WEB_PORT: "0", HEALTHCHECK_PING_URL: ping.url, BACKUP_RCLONE_REMOTE: "backup:" };
    materia = await install_materia(settings);
    // What OPERATIONS.md has the operator write for the backup's remote.
    await materia.ns.write_file("/etc/materia/rclone.conf", `[backup]\ntype = webdav\nurl = ${remote.url}\nvendor = other\n`,
      "0640", "root:materia");
  });
  after(async () => {
    await materia?.cleanup();
    await remote?.stop();
    await ping?.close();
    await upstream?.close();
  });

  test("bootstrap.sh starts the daemon: active (running) once READY=1, its STATUS in systemctl status, the dashboard answers, the cycle pinged", async () => {
    assert.deepEqual(await show("ActiveState", "SubState", "Type", "NRestarts"),
      { ActiveState: "active", SubState: "running", Type: "notify", NRestarts: "0" });
    const idle = await wait_until("the first cycle to end in the idle wait", 300_000, async () => {
      const { StatusText } = await show("StatusText");
      return /^idle, next run \d\d:\d\d:\d\d$/.test(StatusText!) && StatusText;
    });
    const status = await materia.ns.systemctl("status", unit);
    assert.equal(status.code, 0, status.stderr);
    assert.match(status.stdout, /^\s+Active: active \(running\) since /m);
    assert.match(status.stdout, new RegExp(`^\\s+Status: "${idle}"$`, "m"));

    const url = await materia.wait_for_web_url(10_000);
    const health = await healthz(url);
    assert.equal(health?.status, 200);
    assert.equal(health.body.commit, (await materia.daemon_status())?.commit);
    const page = await fetch(`${url}/`);
    assert.equal(page.status, 200);
    assert.match(await page.text(), /BeanFlows/);
    assert.equal(ping.pinged("/start").length, 1, "the cycle's start was pinged through the unit's sandbox");
    assert.equal(ping.pinged("").length, 1, "and its success");
  });

  test(`each installed service's exposure (systemd-analyze security) stays at or below ${security_exposure_max}`, async () => {
    for (const service of [unit, "materia-backup.service", alert_unit]) {
      const result = await materia.ns.run(["systemd-analyze", "security", "--no-pager", service]);
      const overall = /Overall exposure level for \S+: ([\d.]+)/.exec(result.stdout);
      assert.ok(overall, `${service}: ${result.stdout.slice(-300)}${result.stderr}`);
      assert.ok(Number(overall[1]) <= security_exposure_max, `${service}: exposure ${overall[1]}`);
    }
  });

  test("the backup timer is listed by systemctl list-timers, and its service copies the landing dir to the rclone remote under its own hardening", async () => {
    const timers = await materia.ns.systemctl("list-timers", "materia-backup.timer");
    assert.equal(timers.code, 0, timers.stderr);
    assert.match(timers.stdout, /\smateria-backup\.timer\s+materia-backup\.service\s*$/m);
    assert.match(timers.stdout, /^1 timers listed\.$/m);

    const backup = await materia.ns.systemctl("start", "materia-backup.service");
    assert.equal(backup.code, 0, `${backup.stderr}${(await materia.ns.journalctl("-u", "materia-backup.service", "-n", "20")).stdout}`);
    assert.equal((await materia.ns.show("materia-backup.service", ["Result"])).Result, "success");
    const landed = (await materia.ns.check(["find", "/data/materia/landing", "-type", "f", "-printf", "%P\\n"])).trim().split("\n").sort();
    assert.equal(landed.length, 1, "the first cycle landed one release");
    assert.deepEqual(list_files(remote.dir), landed);
    const sums = await materia.ns.check(["sha256sum", ...landed.map((file) => `/data/materia/landing/${file}`)]);
    for (const file of landed) {
      const remote_sum = crypto.createHash("sha256").update(fs.readFileSync(path.join(remote.dir, file))).digest("hex");
      assert.ok(sums.includes(`${remote_sum}  /data/materia/landing/${file}`), `${file} arrived whole`);
    }
  });

  test("systemctl reload with a newer commit on the origin: the dashboard serves it, the unit active throughout with no restart; journalctl -p err shows the new cycle's failure and no info line", async (t) => {
    const before = await show("MainPID", "NRestarts");
    const newer = await materia.origin.push_commit("a newer commit", (work) =>
      fs.appendFileSync(path.join(work, "lib/contract.ts"), "// a newer commit\n"));
    upstream_fails = true;
    const since = await materia.ns.journal_mark();
    const watch = materia.ns.watch_unit(unit, ["ActiveState", "NRestarts", "MainPID"]);
    const reload_ms = Date.now();
    const reload = await materia.ns.systemctl("reload", unit);
    assert.equal(reload.code, 0, reload.stderr);
    await wait_until("the dashboard to serve the new commit", 180_000, async () => (await served_commit()) === newer);
    t.diagnostic(`systemctl reload to the new commit served: ${Date.now() - reload_ms} ms (the issue asks for 30 s)`);
    await wait_until("the new commit's failing cycle to back off", 120_000, async () =>
      /^backoff after extract failure, retry /.test((await show("StatusText")).StatusText!));
    assert_never_down(await watch.stop(), before);
    assert.equal((await show("ActiveState")).ActiveState, "active");

    const errors = await materia.ns.journal_since(since, "-u", unit, "-p", "err");
    assert.ok(errors.some((line) => /^error: extract: failed after \d+ ms: .*500/.test(line)), errors.join("\n"));
    assert.deepEqual(errors.filter((line) => /^(warn|info|debug): /.test(line)), [], "only error lines");
    const everything = await materia.ns.journal_since(since, "-u", unit);
    assert.ok(everything.includes("info: extract: started"), "the info lines are there, filtered out by -p err");
    assert.ok(everything.some((line) => line.startsWith("warn: backoff after extract failure")));
    assert.match(ping.pinged("/fail").at(-1)?.body ?? "", /^extract: .*500/, "the failure was pinged with its reason");
  });

  test("a self-update whose package-lock.json and requirements.txt changed runs npm ci and reinstalls the Python venv under the unit's hardening (offline, from npm's cache and a wheelhouse) and the dashboard serves the new commit", async () => {
    upstream_fails = false;
    const before = await show("MainPID", "NRestarts");
    const bumped = await materia.origin.push_commit("version 0.1.1", (work) => {
      for (const file of ["package.json", "package-lock.json"]) {
        const json = JSON.parse(fs.readFileSync(path.join(work, file), "utf8")) as { version: string; packages?: Record<string, { version?: string }> };
        json.version = "0.1.1";
        if (json.packages?.[""]) json.packages[""].version = "0.1.1";
        fs.writeFileSync(path.join(work, file), JSON.stringify(json, null, 2) + "\n");
      }
      fs.appendFileSync(path.join(work, requirements), "# version 0.1.1\n");
    });
    const requirements_digest = crypto.createHash("sha256").update(fs.readFileSync(path.join(materia.origin.work, requirements))).digest("hex");
    const since = await materia.ns.journal_mark();
    const watch = materia.ns.watch_unit(unit, ["ActiveState", "NRestarts", "MainPID"]);
    assert.equal((await materia.ns.systemctl("reload", unit)).code, 0);
    await wait_until("the dashboard to serve the commit that needed npm ci", 600_000, async () => (await served_commit()) === bumped);
    await wait_until("the reload to end", 60_000, async () => (await show("ActiveState")).ActiveState === "active");
    assert_never_down(await watch.stop(), before);
    const journal = await materia.ns.journal_since(since, "-u", unit);
    assert.ok(journal.includes("info: update: package-lock.json changed; running npm ci"), journal.join("\n"));
    assert.deepEqual(journal.filter((line) => /update failed|EROFS|EACCES|read-only/i.test(line)), []);
    const installed = JSON.parse(await materia.ns.read_file("/opt/materia/node_modules/.package-lock.json")) as { version: string };
    assert.equal(installed.version, "0.1.1", "node_modules was installed from the new lock file");
    assert.equal((await materia.ns.read_file("/opt/materia/.venv/.requirements.sha256")).trim(), requirements_digest,
      "the venv was installed from the new requirements");
    assert.match(await materia.ns.check(["runuser", "-u", "materia", "--", "/opt/materia/.venv/bin/sqlmesh", "--version"]), /^0\.\d+\.\d+/);
  });

  test("kill -9 of the main PID: Restart=always brings the daemon back and the dashboard answers; no alert, the unit never failed", async () => {
    const before = await show("MainPID", "NRestarts");
    const since = await materia.ns.journal_mark();
    await materia.ns.check(["kill", "-9", before.MainPID!]);
    const after_restart = await wait_until("a new main PID, active", 120_000, async () => {
      const now = await show("ActiveState", "MainPID", "NRestarts");
      return now.ActiveState === "active" && now.MainPID !== before.MainPID && now.MainPID !== "0" && now;
    });
    assert.equal(Number(after_restart.NRestarts), Number(before.NRestarts) + 1);
    await wait_until("the new daemon's dashboard", 60_000, async () => {
      const status = await materia.daemon_status();
      return String(status?.pid) === after_restart.MainPID && status?.web_url && (await healthz(status.web_url))?.status === 200;
    });
    const journal = await materia.ns.journal_since(since, "-u", unit);
    assert.ok(journal.some((line) => /Main process exited, code=killed, status=9\/KILL/.test(line)), journal.join("\n"));
    assert.deepEqual(await materia.ns.journal_since(since, "-u", alert_unit), [], "OnFailure= did not fire");
  });

  test("a wedged daemon (SIGSTOP of the worker, the process that pings) is killed by the watchdog and restarted", async () => {
    // WatchdogSec is 120 s in the unit; a runtime drop-in shortens it for this test only.
    const drop_in = "/run/systemd/system/materia-supervisor.service.d/test-watchdog.conf";
    await materia.ns.write_file(drop_in, "[Service]\nWatchdogSec=10s\n");
    await materia.ns.check(["systemctl", "daemon-reload"]);
    await materia.ns.check(["systemctl", "restart", unit]);
    const before = await show("MainPID", "NRestarts", "WatchdogUSec");
    assert.equal(before.WatchdogUSec, "10s");
    const worker_pid = await wait_until("the new daemon's worker", 60_000, async () => {
      const status = await materia.daemon_status();
      return String(status?.pid) === before.MainPID && status?.web_url && status.worker_pid;
    });
    const since = await materia.ns.journal_mark();
    await materia.ns.check(["kill", "-STOP", String(worker_pid)]);
    await wait_until("the watchdog's restart", 120_000, async () => {
      const now = await show("ActiveState", "MainPID", "NRestarts");
      return now.ActiveState === "active" && now.MainPID !== before.MainPID && Number(now.NRestarts) === Number(before.NRestarts) + 1;
    });
    const journal = await materia.ns.journal_since(since, "-u", unit);
    assert.ok(journal.includes("materia-supervisor.service: Watchdog timeout (limit 10s)!"), journal.join("\n"));
    assert.ok(journal.includes("materia-supervisor.service: Failed with result 'watchdog'."));

    await materia.ns.check(["rm", drop_in]);
    await materia.ns.check(["systemctl", "daemon-reload"]);
    await materia.ns.check(["systemctl", "restart", unit]);
    assert.equal((await show("WatchdogUSec")).WatchdogUSec, "2min");
  });

  test("a configuration error (exit 2): failed, with the one-line reason in systemctl status; OnFailure= logs it at err and pings HEALTHCHECK_PING_URL/fail", async () => {
    const reason = 'materia: config: EXTRACT_TIMEOUT_S must be a whole number of seconds (got "soon")';
    await materia.write_settings({ ...settings, EXTRACT_TIMEOUT_S: "soon" });
    const since = await materia.ns.journal_mark();
    const fails_before = ping.pinged("/fail").length;
    const restart = await materia.ns.systemctl("restart", unit);
    assert.notEqual(restart.code, 0);
    assert.deepEqual(await show("ActiveState", "Result", "ExecMainStatus"), { ActiveState: "failed", Result: "exit-code", ExecMainStatus: "2" });
    const status = await materia.ns.systemctl("status", unit);
    assert.ok(status.stdout.includes(reason), status.stdout);
    assert.ok((await materia.ns.journal_since(since, "-u", unit, "-p", "err")).includes(reason));

    await wait_until("the alert unit to run", 60_000, async () =>
      (await materia.ns.show(alert_unit, ["ActiveState", "Result"])).Result === "success" &&
      (await materia.ns.journal_since(since, "-u", alert_unit, "-p", "err")).length > 0);
    const alert = `materia-supervisor.service failed (exit-code, exited 2): ${reason}`;
    assert.deepEqual(await materia.ns.journal_since(since, "-u", alert_unit, "-p", "err"), [alert]);
    const fail = await wait_until("the fail ping", 30_000, () => ping.pinged("/fail")[fails_before]);
    assert.equal(fail.body, alert);
    assert.equal((await show("NRestarts")).NRestarts, "0", "a config error is not restarted in a loop");

    await materia.write_settings(settings);
    assert.equal((await materia.ns.systemctl("start", unit)).code, 0);
    assert.equal((await show("ActiveState")).ActiveState, "active");
  });

  test("systemctl stop: inactive, a clean exit within TimeoutStopSec, nothing left in the unit's cgroup", async () => {
    const since = await materia.ns.journal_mark();
    const stop = await materia.ns.systemctl("stop", unit);
    assert.equal(stop.code, 0, stop.stderr);
    const stopped = await show("ActiveState", "SubState", "Result", "ControlGroup");
    assert.deepEqual(stopped, { ActiveState: "inactive", SubState: "dead", Result: "success", ControlGroup: "" });
    const journal = await materia.ns.journal_since(since, "-u", unit);
    assert.ok(journal.includes("info: stopped"), `the daemon says it stopped:\n${journal.join("\n")}`);
    assert.ok(journal.some((line) => /Deactivated successfully/.test(line)), journal.join("\n"));
    // What systemd says when it must kill what the daemon left (the daemon's own "killing process group" is its job).
    assert.ok(!journal.some((line) => /^materia-supervisor\.service: (Killing process|State '.+' timed out)/.test(line)),
      `systemd had to kill:\n${journal.join("\n")}`);
    const left = await materia.ns.run(["pgrep", "-u", "materia", "-a", "."]);
    assert.deepEqual({ code: left.code, processes: left.stdout }, { code: 1, processes: "" }, "no process of the service user is left");
  });
});
