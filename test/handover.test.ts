import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { pid_alive } from "../lib/pipeline_lock.js";
import { processes_tagged, wait_until } from "./support/daemon_process.js";
import { DeployedDaemon } from "./support/handover_events.js";
import { failure_summary, LoadClient, type LoadRequest } from "./support/load_client.js";

// Issue 13 §2: the listening socket outlives every process that serves it, and a web process is
// replaced only once its successor listens. A steady load of readers runs through each event;
// every request is counted.

const load_clients = 8;

describe("no request is dropped under load", () => {
  let deployed: DeployedDaemon;

  before(async () => {
    deployed = await DeployedDaemon.start(fs.mkdtempSync(path.join(os.tmpdir(), "materia-handover-")));
    assert.equal(await fetch(`${deployed.web_url}/api/country/BR`).then((response) => response.status), 200);
  });
  after(() => deployed?.cleanup());

  /**
   * Readers on /api/country/BR while `event` runs: it starts once every client has had answers,
   * and the load goes on until more answers came after it. Every request of the run, and those
   * under way during the event.
   */
  async function under_load(event: () => Promise<unknown>): Promise<{ requests: LoadRequest[]; during: LoadRequest[] }> {
    const load = new LoadClient(`${deployed.web_url}/api/country/BR`, { clients: load_clients, request_timeout_ms: 30_000, pause_after_failure_ms: 50 });
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
    const { web_pid } = deployed.status();
    const { requests, during } = await under_load(() => deployed.kill_worker());
    assert.equal(failure_summary(requests), "none");
    assert.ok(during.length > 0, "requests were under way while the worker was replaced");
    assert.equal(pid_alive(web_pid!), true, "the same web process serves");
  });

  test("(e) kill -9 of the web process: only requests in flight on it fail, at most one per connection; no connection is refused", async () => {
    const { requests } = await under_load(() => deployed.kill_web());
    const failed = requests.filter((request) => request.outcome !== "ok");
    assert.deepEqual(failed.filter((request) => request.outcome !== "ECONNRESET" && request.outcome !== "EPIPE"), [],
      `only resets of requests in flight on the killed process: ${failure_summary(requests)}`);
    for (let client = 0; client < load_clients; client++) {
      assert.ok(failed.filter((request) => request.client === client).length <= 1, `client ${client} (one connection) lost at most one request`);
    }
    assert.ok(requests.filter((request) => request.outcome === "ok").length > failed.length, "the load went on");
  });

  test("(a) kill -HUP with a new commit on the origin: no request fails while the web hands over to the new code", async () => {
    const { web_pid } = deployed.status();
    let newer = "";
    const { requests, during } = await under_load(async () => (newer = await deployed.hup_with_new_commit()));
    assert.equal(failure_summary(requests), "none");
    assert.ok(during.length > 0);
    assert.equal(deployed.status().commit, newer);
    assert.notEqual(deployed.status().web_pid, web_pid, "a new web process serves");
  });

  test("(b) a self-update found by a cycle (Run now): no request fails while the web hands over to the new code", async () => {
    let newer = "";
    const { requests, during } = await under_load(async () => (newer = await deployed.cycle_with_new_commit()));
    assert.equal(failure_summary(requests), "none");
    assert.ok(during.length > 0);
    assert.equal(deployed.status().commit, newer);

    assert.equal((await deployed.stop()).code, 0);
    assert.deepEqual(processes_tagged(deployed.tag), [], "no process of the daemon is left");
  });
});
