import assert from "node:assert/strict";
import crypto from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { read_daemon_status } from "../daemon/run_history.js";
import { pid_alive } from "../lib/pipeline_lock.js";
import { DaemonProcess, healthz, kill_tagged, processes_tagged, wait_until } from "./support/daemon_process.js";
import { make_origin_and_checkout, press_run_now, push_commit } from "./support/git_origin.js";
import { failure_summary, LoadClient, type LoadRequest } from "./support/load_client.js";
import { make_sandbox, type Sandbox } from "./support/sandbox.js";

// Issue 13 §2: the listening socket outlives every process that serves it, and a web process is
// replaced only once its successor listens. A steady load of readers runs through each event;
// every request is counted.

const admin_password = "test-admin-password";
const load_clients = 8;

describe("no request is dropped under load", () => {
  let dir: string;
  let sandbox: Sandbox;
  let daemon: DaemonProcess;
  let origin: { work: string; origin: string; checkout: string };
  let web_url: string;
  const tag = crypto.randomUUID();
  const status = () => read_daemon_status(sandbox.config.materia_state_dir);

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "materia-handover-"));
    sandbox = make_sandbox({
      WEB_PORT: "0", MATERIA_GIT_REF: "origin/main", PIPELINE_INTERVAL_S: "3600", STOP_TIMEOUT_S: "20",
      WEB_SHUTDOWN_GRACE_MS: "5000", GIT_TIMEOUT_S: "60", ADMIN_PASSWORD: admin_password,
    });
    origin = await make_origin_and_checkout(dir);
    daemon = new DaemonProcess(sandbox.env, tag, path.join(origin.checkout, "dist/cli/materia.js"));
    await wait_until("the first cycle to publish", 180_000, () => status()?.state === "idle" && status()?.web_url);
    web_url = status()!.web_url!;
    assert.equal(await fetch(`${web_url}/api/country/BR`).then((response) => response.status), 200);
  });

  after(async () => {
    await daemon?.kill();
    kill_tagged(tag);
    sandbox?.cleanup();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  /**
   * Readers on /api/country/BR while `event` runs: it starts once every client has had answers,
   * and the load goes on until more answers came after it. Every request of the run is returned.
   */
  async function under_load(event: () => Promise<void>): Promise<{ requests: LoadRequest[]; during: LoadRequest[] }> {
    const load = new LoadClient(`${web_url}/api/country/BR`, { clients: load_clients, request_timeout_ms: 30_000, pause_after_failure_ms: 50 });
    try {
      await wait_until("answers to every client", 30_000, () => new Set(load.requests.map((request) => request.client)).size === load_clients);
      const from_ms = load.mark();
      await event();
      const to_ms = load.mark();
      const seen = load.requests.length;
      await wait_until("answers after the event", 30_000, () => load.requests.slice(seen).filter((r) => r.outcome === "ok").length >= 2 * load_clients);
      return { requests: [...load.requests], during: load.window(from_ms, to_ms) };
    } finally {
      await load.stop();
    }
  }

  test("(c) kill -9 of the daemon's worker: no request fails, and the web process goes on serving", async () => {
    const { worker_pid, web_pid } = status()!;
    assert.ok(worker_pid && web_pid);
    const { requests, during } = await under_load(async () => {
      process.kill(worker_pid, "SIGKILL");
      await wait_until("a new worker that knows the web process", 30_000,
        () => status()?.worker_pid !== worker_pid && status()?.web_pid === web_pid);
    });
    assert.equal(failure_summary(requests), "none");
    assert.ok(during.length > 0, "requests were made while the worker was replaced");
    assert.equal(pid_alive(web_pid), true, "the same web process serves");
  });

  test("(e) kill -9 of the web process: only requests in flight on it fail, at most one per connection; no connection is refused", async () => {
    const { web_pid } = status()!;
    assert.ok(web_pid);
    const { requests } = await under_load(async () => {
      process.kill(web_pid, "SIGKILL");
      await wait_until("a new web process", 30_000, () => status()?.web_pid !== null && status()?.web_pid !== web_pid);
    });
    const failed = requests.filter((request) => request.outcome !== "ok");
    assert.deepEqual(failed.filter((request) => request.outcome !== "ECONNRESET" && request.outcome !== "EPIPE"), [],
      `only resets of requests in flight on the killed process: ${failure_summary(requests)}`);
    for (let client = 0; client < load_clients; client++) {
      assert.ok(failed.filter((request) => request.client === client).length <= 1, `client ${client} (one connection) lost at most one request`);
    }
    assert.ok(requests.filter((request) => request.outcome === "ok").length > failed.length, "the load went on");
  });

  test("(a) kill -HUP with a new commit on the origin: no request fails while the web hands over to the new code", async () => {
    const newer = await push_commit(origin.work, origin.origin, "daemon/exit_codes.ts", "// a newer commit, deployed by HUP");
    const { web_pid } = status()!;
    assert.ok(web_pid);
    const { requests, during } = await under_load(async () => {
      process.kill(daemon.pid, "SIGHUP");
      await wait_until("the new commit served and the old web process gone", 180_000,
        async () => (await healthz(web_url))?.commit === newer && !pid_alive(web_pid));
    });
    assert.equal(failure_summary(requests), "none");
    assert.ok(during.length > 0);
    assert.equal(status()!.commit, newer);
    assert.notEqual(status()!.web_pid, web_pid, "a new web process serves");
  });

  test("(b) a self-update found by a cycle (Run now): no request fails while the web hands over to the new code", async () => {
    // A worker started on a new commit runs a cycle at once; "Run now" is ignored until it is done.
    await wait_until("the daemon idle", 180_000, () => status()?.state === "idle");
    const newer = await push_commit(origin.work, origin.origin, "daemon/exit_codes.ts", "// a newer commit, found by a cycle");
    const { web_pid } = status()!;
    assert.ok(web_pid);
    const { requests, during } = await under_load(async () => {
      assert.equal(await press_run_now(web_url, admin_password), 303);
      await wait_until("the new commit served and the old web process gone", 180_000,
        async () => (await healthz(web_url))?.commit === newer && !pid_alive(web_pid));
    });
    assert.equal(failure_summary(requests), "none");
    assert.ok(during.length > 0);
    assert.equal(status()!.commit, newer);

    const stopped = await daemon.terminate(30_000);
    assert.equal(stopped.code, 0);
    assert.deepEqual(processes_tagged(tag), [], "no process of the daemon is left");
  });
});
