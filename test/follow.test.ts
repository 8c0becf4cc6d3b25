import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import crypto from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import type { ServingManifest } from "../lib/serving_manifest.js";
import { wait_until } from "./support/daemon_process.js";
import { free_port } from "./support/http_server.js";
import { failure_summary, LoadClient } from "./support/load_client.js";
import { write_revised_release } from "./support/psd_zip.js";
import { make_sandbox, run_cli, type Sandbox } from "./support/sandbox.js";
import { start_web, type WebProcess } from "./support/web_process.js";

// Issue 11 on loopback: a publishing pipeline (`materia pipeline run all`, the daemon's jobs in the
// daemon's order: extract, transform, export_serving, publish) and follower web nodes started as an
// operator starts them (`materia web --follow REMOTE`), each with its own data dir. The remote is
// a directory, or `rclone serve webdav` of it where the test needs a remote that can be down.

const poll_interval_s = 3;
const brazil_2023 = "/api/country/BR?from=2023&to=2023";

interface Health {
  status: number;
  release_id?: string;
  follow?: { behind: boolean; last_error: string | null; manifest_release_id: string | null };
}

async function health(web: WebProcess): Promise<Health> {
  const response = await fetch(`${web.url}/healthz`, { signal: AbortSignal.timeout(10_000) });
  const body = (await response.json()) as { serving?: { release_id: string }; follow?: Health["follow"] };
  return { status: response.status, release_id: body.serving?.release_id, follow: body.follow };
}

const serves = async (web: WebProcess, release_id: string) => (await health(web)).release_id === release_id;

function sha256(file: string): string {
  return crypto.createHash("sha256").update(fs.readFileSync(file)).digest("hex");
}

/** As jobs/publish does it, on a directory remote: a complete file under a temporary name, then rename. */
function write_manifest(remote: string, manifest: ServingManifest): void {
  const temporary = path.join(remote, "serving", "current.json.tmp-test");
  fs.writeFileSync(temporary, JSON.stringify(manifest));
  fs.renameSync(temporary, path.join(remote, "serving", "current.json"));
}

function read_manifest(remote: string): ServingManifest {
  return JSON.parse(fs.readFileSync(path.join(remote, "serving", "current.json"), "utf8")) as ServingManifest;
}

/** The lines of a follower's log that report a refused file. */
const refusal_lines = (web: WebProcess) => web.output().split("\n").filter((line) => line.includes("follow: refused"));

describe("follower web nodes behind one publishing pipeline", () => {
  let sandbox: Sandbox;
  let remote: string;
  let release_b_zip: string;
  const followers: WebProcess[] = [];
  let first: ServingManifest;
  let first_file: string;
  let second: ServingManifest;

  const follower_env = (name: string, extra: Record<string, string> = {}) => {
    const dir = path.join(sandbox.dir, name);
    fs.mkdirSync(dir, { recursive: true });
    return { ...sandbox.env, SERVING_DUCKDB_PATH: path.join(dir, "serving.duckdb"), MATERIA_STATE_DIR: path.join(dir, "state"),
      LANDING_DIR: path.join(dir, "landing"), DUCKDB_PATH: path.join(dir, "lakehouse.duckdb"),
      FOLLOW_POLL_INTERVAL_S: String(poll_interval_s), LOG_LEVEL: "info", ...extra };
  };
  const start_follower = async (name: string, remote_arg: string, extra: Record<string, string> = {}) => {
    const web = await start_web(follower_env(name, extra), { cli_args: ["web", "--follow", remote_arg] });
    followers.push(web);
    return web;
  };

  before(async () => {
    sandbox = make_sandbox({ LOG_LEVEL: "info" });
    remote = path.join(sandbox.dir, "remote");
    sandbox.env.SERVING_PUBLISH_REMOTE = remote;
    const published = await run_cli(["pipeline", "run", "all"], sandbox.env);
    assert.equal(published.code, 0, published.stderr + published.stdout.slice(-3000));
    assert.match(published.stdout, /publish: ok/);
    first = read_manifest(remote);
    first_file = path.join(sandbox.dir, "first.duckdb");
    fs.copyFileSync(sandbox.config.serving_duckdb_path, first_file);
    assert.equal(sha256(first_file), first.sha256, "the manifest names the published file by its sha256");
    release_b_zip = path.join(sandbox.dir, "release_b.zip");
    await write_revised_release(release_b_zip, { country_code: "BR", market_year: 2023, attribute: "Production", value: 70_000 });
  });
  after(async () => {
    try {
      await Promise.all(followers.map((web) => web.stop()));
    } finally {
      sandbox?.cleanup();
    }
  });

  test("a release the pipeline publishes is served by all three followers within the poll interval + 5 s; load on all three fails no request", async (t) => {
    for (const name of ["node1", "node2", "node3"]) await start_follower(name, remote);
    await wait_until("every follower to serve the first release", 60_000,
      async () => (await Promise.all(followers.map((web) => serves(web, first.release_id)))).every(Boolean));
    const loads = followers.map((web) => new LoadClient(web.url + brazil_2023, { clients: 2, request_timeout_ms: 10_000, pause_after_failure_ms: 50 }));
    try {
      const cycle = await run_cli(["pipeline", "run", "all"], { ...sandbox.env, PSD_SOURCE_URL: `file://${release_b_zip}` });
      assert.equal(cycle.code, 0, cycle.stderr + cycle.stdout.slice(-3000));
      const published_ms = Date.now();
      second = read_manifest(remote);
      assert.notEqual(second.release_id, first.release_id);
      assert.equal(second.sha256, sha256(sandbox.config.serving_duckdb_path));
      // The bound: a poll, plus 5 s for the download, the check and the swap.
      await wait_until(`all three followers to serve release ${second.release_id}`, (poll_interval_s + 5) * 1000,
        async () => (await Promise.all(followers.map((web) => serves(web, second.release_id)))).every(Boolean));
      t.diagnostic(`publish to last follower: ${Date.now() - published_ms} ms`);
      await sleep(1000);
    } finally {
      await Promise.all(loads.map((load) => load.stop()));
    }
    const requests = loads.flatMap((load) => load.requests);
    assert.equal(failure_summary(requests), "none", "no request failed during the switch");
    for (const load of loads) assert.ok(load.requests.length > 10, `each follower answered under load (${load.requests.length} requests)`);
    for (const web of followers) {
      const reply = await fetch(web.url + brazil_2023);
      const body = (await reply.json()) as { tables: { balance: { rows: { production: number }[] } } };
      assert.equal(body.tables.balance.rows[0]!.production, 70_000, "the follower serves release B's figures");
    }
  });

  test("a manifest naming a truncated or wrong-hash file: no follower swaps, each logs one line and keeps serving; the next good manifest is picked up", async () => {
    assert.equal(followers.length, 3, "the followers of the test before");
    const serving_dir = path.join(remote, "serving");
    const bad_cases = [
      { name: "truncated", write: () => {
        const bytes = fs.readFileSync(first_file);
        fs.writeFileSync(path.join(serving_dir, `${first.sha256}.duckdb`), bytes.subarray(0, bytes.length >> 1));
        return { ...first, confirmed_at: new Date().toISOString() };
      }, pattern: /truncated/ },
      { name: "wrong hash", write: () => {
        const wrong = crypto.randomBytes(32).toString("hex");
        fs.copyFileSync(first_file, path.join(serving_dir, `${wrong}.duckdb`));
        return { ...first, sha256: wrong, confirmed_at: new Date().toISOString() };
      }, pattern: /sha256 .* not the manifest's/ },
    ];
    for (const [index, bad] of bad_cases.entries()) {
      write_manifest(remote, bad.write());
      await wait_until(`each follower to refuse the ${bad.name} file`, 30_000,
        () => followers.every((web) => refusal_lines(web).length === index + 1));
      // Two more polls: the refusal is neither retried nor logged again.
      await sleep(2 * poll_interval_s * 1000 + 500);
      for (const web of followers) {
        assert.equal(refusal_lines(web).length, index + 1, `one line per follower for the ${bad.name} file:\n${refusal_lines(web).join("\n")}`);
        assert.match(refusal_lines(web).at(-1)!, bad.pattern);
        const seen = await health(web);
        assert.deepEqual([seen.status, seen.release_id], [200, second.release_id], "keeps serving its last good release");
        assert.equal(seen.follow?.behind, true, "/healthz says the node is behind the manifest");
        assert.match(seen.follow?.last_error ?? "", bad.pattern);
      }
    }
    fs.copyFileSync(first_file, path.join(serving_dir, `${first.sha256}.duckdb`));
    write_manifest(remote, { ...first, confirmed_at: new Date().toISOString() });
    await wait_until("every follower to serve the good file the next manifest names", (poll_interval_s + 5) * 1000,
      async () => (await Promise.all(followers.map((web) => serves(web, first.release_id)))).every(Boolean));
    for (const web of followers) {
      const seen = await health(web);
      assert.deepEqual([seen.follow?.behind, seen.follow?.last_error], [false, null]);
    }
  });

  test("a follower started with no reachable remote serves its last local file (or 503 'no data yet'), and recovers when the remote comes back", async (t) => {
    const port = await free_port();
    const webdav = `:webdav,url='http://127.0.0.1:${port}/':`;
    const with_file = follower_env("offline_with_file");
    fs.copyFileSync(path.join(sandbox.dir, "node1", "serving.duckdb"), with_file.SERVING_DUCKDB_PATH);
    const offline_with = await start_follower("offline_with_file", webdav);
    const offline_empty = await start_follower("offline_empty", webdav);
    await wait_until("both followers to have failed a poll", 30_000,
      async () => (await Promise.all([offline_with, offline_empty].map(health))).every((seen) => seen.follow?.last_error));
    const with_health = await health(offline_with);
    assert.deepEqual([with_health.status, with_health.release_id, with_health.follow?.last_error],
      [200, first.release_id, "the remote does not answer"], "serves its local file");
    const page = await fetch(offline_empty.url + "/");
    assert.equal(page.status, 503);
    assert.match(await page.text(), /no data yet/);
    assert.equal((await health(offline_empty)).status, 503);

    // The remote comes back, with a release neither follower has.
    write_manifest(remote, { ...second, confirmed_at: new Date().toISOString() });
    const server = await serve_webdav(path.join(sandbox.dir, "remote"), port);
    t.after(() => server.kill("SIGKILL"));
    await wait_until("both followers to serve the remote's release", 30_000,
      async () => (await Promise.all([offline_with, offline_empty].map((web) => serves(web, second.release_id)))).every(Boolean));
    for (const web of [offline_with, offline_empty]) {
      assert.equal((await health(web)).follow?.last_error, null);
      const unreachable = web.output().split("\n").filter((line) => line.includes("the remote does not answer"));
      assert.equal(unreachable.length, 1, `one line for the outage, not one per poll:\n${unreachable.join("\n")}`);
    }
  });
});

/** `rclone serve webdav` of `dir` on 127.0.0.1:`port`, once it answers. */
async function serve_webdav(dir: string, port: number): Promise<ChildProcess> {
  const child = spawn("rclone", ["serve", "webdav", dir, "--addr", `127.0.0.1:${port}`, "--config", "/dev/null"], { stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  child.stderr!.on("data", (chunk: Buffer) => (output += chunk.toString()));
  await wait_until("rclone serve webdav to answer", 30_000, async () => {
    if (child.exitCode !== null) throw new Error(`rclone serve webdav exited: ${output}`);
    return fetch(`http://127.0.0.1:${port}/`).then(() => true, () => false);
  });
  return child;
}
