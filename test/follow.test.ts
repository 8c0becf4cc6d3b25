import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import crypto from "node:crypto";
import fs from "node:fs";
import net, { type AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { files_to_prune } from "../jobs/publish/retention.js";
import { parse_manifest, type ServingManifest } from "../lib/serving_manifest.js";
import { daemon_in_sandbox, wait_until } from "./support/daemon_process.js";
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

  test("every follower gives a page the same ETag, so a CDN revalidating against any of them gets a 304", async () => {
    const page = "/country/BR?units=tonnes&from=2000&to=2023";
    const etags = await Promise.all(followers.map(async (web) => (await fetch(web.url + page)).headers.get("etag")));
    assert.match(etags[0] ?? "", /^"/);
    assert.deepEqual(new Set(etags).size, 1, `one ETag on every node: ${etags.join(" ")}`);
    for (const web of followers) {
      const revalidated = await fetch(web.url + page, { headers: { "if-none-match": etags[0]! } });
      assert.equal(revalidated.status, 304);
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

  test("a publish that cannot reach the remote fails after the local swap and within SERVING_PUBLISH_TIMEOUT_S; the next one publishes, keeping SERVING_PUBLISH_KEEP files", async () => {
    const manifest_before = fs.readFileSync(path.join(remote, "serving", "current.json"), "utf8");
    const exported = await run_cli(["pipeline", "run", "export_serving", "--force"], sandbox.env);
    assert.equal(exported.code, 0, exported.stderr);
    const local_sha256 = sha256(sandbox.config.serving_duckdb_path);
    assert.notEqual(local_sha256, read_manifest(remote).sha256, "a new file was exported");

    const refused = await run_cli(["pipeline", "run", "publish"],
      { ...sandbox.env, SERVING_PUBLISH_REMOTE: `:webdav,url='http://127.0.0.1:${await free_port()}/':` });
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /^materia: publish: rclone lsjson failed \(exit \d+\): .*connection refused/m);
    // A remote that accepts and never answers: the publish is cut at its bound, its rclone killed.
    const silent = net.createServer(() => undefined);
    await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", resolve));
    try {
      const hung = await run_cli(["pipeline", "run", "publish"], { ...sandbox.env, SERVING_PUBLISH_TIMEOUT_S: "2",
        SERVING_PUBLISH_REMOTE: `:webdav,url='http://127.0.0.1:${(silent.address() as AddressInfo).port}/':` });
      assert.equal(hung.code, 1);
      assert.match(hung.stderr, /^materia: publish: timed out after SERVING_PUBLISH_TIMEOUT_S=2 s$/m);
    } finally {
      silent.close();
    }
    assert.equal(sha256(sandbox.config.serving_duckdb_path), local_sha256, "the failed publishes left the local file alone");
    assert.equal(fs.readFileSync(path.join(remote, "serving", "current.json"), "utf8"), manifest_before, "and the remote's manifest");

    const published = await run_cli(["pipeline", "run", "publish"], { ...sandbox.env, SERVING_PUBLISH_KEEP: "2" });
    assert.equal(published.code, 0, published.stderr);
    assert.equal(read_manifest(remote).sha256, local_sha256);
    const kept = fs.readdirSync(path.join(remote, "serving")).filter((name) => /^[0-9a-f]{64}\.duckdb$/.test(name));
    assert.equal(kept.length, 2, `the current file and one other: ${kept.join(", ")}`);
    assert.ok(kept.includes(`${local_sha256}.duckdb`));
    const again = await run_cli(["pipeline", "run", "publish"], sandbox.env);
    assert.match(again.stdout, /already on the remote; manifest confirmed/, "an unchanged file is not uploaded again");
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

test("the daemon publishes in each cycle, after export_serving; a follower serves its release and takes its confirmations as freshness", async (t) => {
  const remote = fs.mkdtempSync(path.join(os.tmpdir(), "materia-remote-"));
  t.after(() => fs.rmSync(remote, { recursive: true, force: true }));
  const { sandbox, runs, notify } = await daemon_in_sandbox(t, { SERVING_PUBLISH_REMOTE: remote, PIPELINE_INTERVAL_S: "2" });
  // Two cycles: the first publishes the file, the second finds it there and confirms it.
  await wait_until("two publish runs", 300_000, () => runs("publish", "ok").length >= 2);
  const [first_publish, second_publish] = runs("publish", "ok").sort((a, b) => a.started_at.localeCompare(b.started_at));
  assert.match(first_publish!.message, /uploaded \d+ bytes/);
  assert.match(second_publish!.message, /already on the remote; manifest confirmed/);
  const export_run = runs("export_serving", "ok").find((run) => run.cycle_id === first_publish!.cycle_id)!;
  assert.ok(export_run.ended_at! <= first_publish!.started_at, "publish runs after export_serving's local swap");
  assert.ok(notify.messages.some((m) => /^STATUS=publish running$/m.test(m)), "systemd saw STATUS=publish running");

  const follower_dir = path.join(sandbox.dir, "follower");
  const follower = await start_web({ ...sandbox.env, SERVING_DUCKDB_PATH: path.join(follower_dir, "serving.duckdb"),
    MATERIA_STATE_DIR: path.join(follower_dir, "state"), FOLLOW_POLL_INTERVAL_S: "1", LOG_LEVEL: "info" },
  { cli_args: ["web", "--follow", remote] });
  t.after(() => follower.stop());
  const published = read_manifest(remote);
  await wait_until("the follower to serve the daemon's release", 30_000, () => serves(follower, published.release_id));
  // Its freshness is the daemon's last confirmation of the file it serves, not its own poll.
  await wait_until("the follower to record a confirmation", 30_000, async () => {
    const response = await fetch(`${follower.url}/healthz`);
    const body = (await response.json()) as { freshness: { last_success_at: string | null } };
    const confirmed = read_manifest(remote).confirmed_at;
    return response.status === 200 && body.freshness.last_success_at !== null &&
      Date.parse(body.freshness.last_success_at) <= Date.parse(confirmed) && Date.parse(body.freshness.last_success_at) >= Date.parse(published.confirmed_at);
  });
});

describe("the manifest and the retention rule", () => {
  const sha = (digit: string) => digit.repeat(64);
  const good: ServingManifest = { format: 1, release_id: "r1", sha256: sha("a"), size_bytes: 1847296,
    exported_at: "2026-11-25T17:00:00.000Z", confirmed_at: "2026-11-25T17:01:00.000Z" };

  test("a well-formed manifest is read as written", () => {
    assert.deepEqual(parse_manifest(JSON.stringify(good)), good);
  });

  test("a malformed manifest is refused with a message naming what is wrong", () => {
    const cases: [string, RegExp][] = [
      ["{\"format\": 1, \"release", /^the manifest is not JSON$/],
      [JSON.stringify({ ...good, sha256: "ABC" }), /^the manifest's sha256 must be 64 lowercase hex digits$/],
      [JSON.stringify({ ...good, size_bytes: -1 }), /^the manifest's size_bytes /],
      [JSON.stringify({ ...good, format: 2 }), /^the manifest's format /],
      [JSON.stringify({ ...good, confirmed_at: "yesterday" }), /^the manifest's confirmed_at /],
    ];
    for (const [text, message] of cases) assert.throws(() => parse_manifest(text), { message }, text);
  });

  test("materia web --follow with an empty remote stops at start with one line, exit 2 (the unit with FOLLOW_REMOTE unset)", async () => {
    const result = await run_cli(["web", "--follow", ""], process.env, 30_000);
    assert.deepEqual([result.code, result.stderr.trim()], [2, "materia: config: --follow needs an rclone remote:path (FOLLOW_REMOTE is empty)"]);
  });

  test("pruning keeps the current file and the newest others up to the bound, and never touches names not ours", () => {
    const entry = (Name: string, ModTime: string) => ({ Name, ModTime, Size: 1, IsDir: false });
    const entries = [
      entry(`${sha("1")}.duckdb`, "2026-11-20T00:00:00Z"), entry(`${sha("2")}.duckdb`, "2026-11-21T00:00:00Z"),
      entry(`${sha("3")}.duckdb`, "2026-11-22T00:00:00Z"), entry(`${sha("4")}.duckdb`, "2026-11-19T00:00:00Z"),
      entry("current.json", "2026-11-18T00:00:00Z"), entry("notes.duckdb", "2026-11-01T00:00:00Z"),
    ];
    // The current file is the oldest here (a release served again): it stays whatever its age.
    assert.deepEqual(files_to_prune(entries, `${sha("4")}.duckdb`, 3).sort(), [`${sha("1")}.duckdb`]);
    assert.deepEqual(files_to_prune(entries, `${sha("3")}.duckdb`, 2).sort(), [`${sha("1")}.duckdb`, `${sha("4")}.duckdb`]);
    assert.deepEqual(files_to_prune(entries, `${sha("3")}.duckdb`, 5), []);
    assert.throws(() => files_to_prune(entries, `${sha("3")}.duckdb`, 1), /at least 2/);
  });
});
