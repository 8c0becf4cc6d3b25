import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { wait_until } from "./support/daemon_process.js";
import { free_port, serve_release, start_http_server, type TestServer } from "./support/http_server.js";
import { failure_summary, LoadClient } from "./support/load_client.js";
import { install_materia, supervisor_unit, type MateriaUnderSystemd } from "./support/materia_systemd.js";
import { shipped_zip_path } from "./support/sandbox.js";
import { systemd_namespace_refused } from "./support/systemd_namespace.js";

// Issue 13 §2 (d): with socket activation, systemd holds the dashboard's socket while the service
// restarts, so even `systemctl restart` refuses no connection. The real units, installed by
// infra/bootstrap.sh into a real systemd (test/support/materia_systemd.ts).

const refused = await systemd_namespace_refused();
const socket_unit = "materia-web.socket";
const load_clients = 8;

describe("the dashboard's socket under a real systemd", { skip: refused }, () => {
  let upstream: TestServer;
  let materia: MateriaUnderSystemd;
  let port: number;

  before(async () => {
    upstream = await start_http_server(serve_release(shipped_zip_path, '"psd-release-1"', "Tue, 12 Nov 2024 12:00:00 GMT"));
    port = await free_port();
    materia = await install_materia({ PSD_SOURCE_URL: upstream.url, WEB_PORT: String(port) });
    await wait_until("the first cycle to publish", 300_000, async () => (await materia.daemon_status())?.state === "idle");
  });
  after(async () => {
    await materia?.cleanup();
    await upstream?.close();
  });

  test("bootstrap.sh enables materia-web.socket on WEB_HOST:WEB_PORT, and the daemon takes its fd 3 for the web", async () => {
    assert.deepEqual(await materia.ns.show(socket_unit, ["ActiveState", "Listen"]),
      { ActiveState: "active", Listen: `127.0.0.1:${port} (Stream)` });
    const journal = (await materia.ns.check(["journalctl", "--no-pager", "-o", "cat", "-u", supervisor_unit])).split("\n");
    assert.ok(journal.some((line) => line.endsWith("daemon: the dashboard's socket is fd 3 from systemd (materia-web.socket)")), journal.join("\n"));
    const web_pid = (await materia.daemon_status())!.web_pid!;
    const web_env = await materia.ns.check(["sh", "-c", `tr '\\0' '\\n' < /proc/${web_pid}/environ`]);
    assert.deepEqual(web_env.split("\n").filter((line) => /^(LISTEN_|NOTIFY_SOCKET|WATCHDOG_|MATERIA_WEB_LISTEN_FD)/.test(line)),
      ["MATERIA_WEB_LISTEN_FD=4"], "the web gets our own setting, never systemd's LISTEN_*");
  });

  test("(d) systemctl restart of the service under load: no request fails, no connection is refused", async () => {
    const { MainPID: main_pid_before } = await materia.ns.show(supervisor_unit, ["MainPID"]);
    const load = new LoadClient(`http://127.0.0.1:${port}/api/country/BR`, { clients: load_clients, request_timeout_ms: 60_000, pause_after_failure_ms: 50 });
    try {
      await wait_until("answers to every client", 30_000, () => new Set(load.requests.map((request) => request.client)).size === load_clients);
      const from_ms = load.mark();
      const restart = await materia.ns.systemctl("restart", supervisor_unit);
      assert.equal(restart.code, 0, restart.stderr);
      const to_ms = load.mark();
      const seen = load.requests.length;
      await wait_until("answers after the restart", 60_000, () => load.requests.slice(seen).filter((r) => r.outcome === "ok").length >= 2 * load_clients);
      assert.equal(failure_summary(load.requests), "none");
      assert.ok(load.window(from_ms, to_ms).length > 0, "requests were under way during the restart");
    } finally {
      await load.stop();
    }
    const after_restart = await materia.ns.show(supervisor_unit, ["ActiveState", "SubState", "MainPID", "NRestarts"]);
    assert.deepEqual({ ...after_restart, MainPID: undefined }, { ActiveState: "active", SubState: "running", MainPID: undefined, NRestarts: "0" });
    assert.notEqual(after_restart.MainPID, main_pid_before, "a new daemon runs");
  });
});
