import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { wait_until } from "./support/daemon_process.js";
import { start_http_server, serve_release, type TestServer } from "./support/http_server.js";
import { install_materia, supervisor_unit, type MateriaUnderSystemd } from "./support/materia_systemd.js";
import { shipped_zip_path } from "./support/sandbox.js";
import { systemd_namespace_refused } from "./support/systemd_namespace.js";

// The real units from infra/systemd/, installed by infra/bootstrap.sh into a real systemd 252
// (PID 1 of a private namespace: test/support/systemd_boot.sh), driven with systemctl and read
// with journalctl as an operator would. One namespace for all the checks below, in order: each
// leaves the service running for the next, except where it says otherwise.

const refused = await systemd_namespace_refused();
const etag = '"psd-release-1"';

interface Health {
  status: number;
  body: { status?: string; commit?: string; serving?: { release_id?: string } };
}

async function healthz(url: string): Promise<Health | undefined> {
  try {
    const response = await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(5_000) });
    return { status: response.status, body: await response.json() as Health["body"] };
  } catch {
    return undefined;
  }
}

describe("materia under a real systemd", { skip: refused }, () => {
  let upstream: TestServer;
  let materia: MateriaUnderSystemd;
  const unit = supervisor_unit;

  before(async () => {
    upstream = await start_http_server(serve_release(shipped_zip_path, etag, "Tue, 12 Nov 2024 12:00:00 GMT"));
    materia = await install_materia({ PSD_SOURCE_URL: upstream.url, WEB_PORT: "0" });
  });
  after(async () => {
    await materia?.cleanup();
    await upstream?.close();
  });

  test("bootstrap.sh starts the daemon: active (running) once READY=1, its STATUS in systemctl status, the dashboard answers", async () => {
    const started = await materia.ns.show(unit, ["ActiveState", "SubState", "Type", "NRestarts"]);
    assert.deepEqual(started, { ActiveState: "active", SubState: "running", Type: "notify", NRestarts: "0" });
    const idle = await wait_until("the first cycle to end in the idle wait", 300_000, async () => {
      const { StatusText } = await materia.ns.show(unit, ["StatusText"]);
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
  });

  test("systemctl stop: inactive, a clean exit within TimeoutStopSec, nothing left in the unit's cgroup", async () => {
    const cursor = await materia.ns.journal_cursor();
    const stop = await materia.ns.systemctl("stop", unit);
    assert.equal(stop.code, 0, stop.stderr);
    const stopped = await materia.ns.show(unit, ["ActiveState", "SubState", "Result", "ControlGroup"]);
    assert.deepEqual(stopped, { ActiveState: "inactive", SubState: "dead", Result: "success", ControlGroup: "" });
    const journal = await materia.ns.journal_after(cursor, "-u", unit);
    assert.ok(journal.includes("info: stopped"), `the daemon says it stopped:\n${journal.join("\n")}`);
    assert.ok(journal.some((line) => /Deactivated successfully/.test(line)), journal.join("\n"));
    assert.ok(!journal.some((line) => /SIGKILL|Killing process|timed out/i.test(line)), `systemd had to kill:\n${journal.join("\n")}`);
    const left = await materia.ns.run(["pgrep", "-u", "materia", "-a", "."]);
    assert.deepEqual({ code: left.code, processes: left.stdout }, { code: 1, processes: "" }, "no process of the service user is left");
  });
});
