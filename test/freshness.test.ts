import assert from "node:assert/strict";
import fs from "node:fs";
import test from "node:test";
import { freshness_path, record_cycle_success } from "../lib/freshness.js";
import { daemon_in_sandbox, wait_until } from "./support/daemon_process.js";
import { serve_release, start_http_server } from "./support/http_server.js";
import { start_ping_server } from "./support/ping_server.js";
import { make_sandbox, run_cli, shipped_zip_path, type Sandbox } from "./support/sandbox.js";
import { start_web } from "./support/web_process.js";

// Stale data is loud (the dead-man's switch): /healthz, the dashboard's banner, STATUS and
// `materia status` once nothing confirmed the data for STALE_AFTER_S, and the pings of
// HEALTHCHECK_PING_URL for a service that alerts when they stop.

interface Health {
  status: number;
  body: {
    status: string;
    reason?: string;
    freshness: { last_success_at: string | null; last_publish_at: string | null; last_success_age_s: number | null;
      last_publish_age_s: number | null; stale_after_s: number };
  };
}

async function healthz(url: string): Promise<Health> {
  const response = await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(10_000) });
  return { status: response.status, body: await response.json() as Health["body"] };
}

async function overview_html(url: string): Promise<string> {
  const response = await fetch(`${url}/`, { signal: AbortSignal.timeout(10_000) });
  assert.equal(response.status, 200, "the dashboard still serves the data it has");
  return response.text();
}

const banner_of = (html: string) => /<p class="stale-banner" role="alert">([^<]*)<\/p>/.exec(html)?.[1];

test("a web started alone judges its data by the daemon's record and the file's publish time: /healthz 503 stale and a banner past STALE_AFTER_S, never a cached page without it, fresh again once a cycle is recorded", async (t) => {
  const stale_after_s = 10;
  const sandbox: Sandbox = make_sandbox({ STALE_AFTER_S: String(stale_after_s), WEB_PORT: "0" });
  t.after(() => sandbox.cleanup());
  const built = await run_cli(["pipeline", "run", "all"], sandbox.env);
  assert.equal(built.code, 0, built.stderr);
  const web = await start_web(sandbox.env, "standalone");
  t.after(() => web.stop());
  const state_dir = sandbox.config.materia_state_dir;

  // No daemon has recorded a cycle: the publish time alone decides, and it lies past STALE_AFTER_S.
  const published = await wait_until("the file's publish to lie past STALE_AFTER_S", 60_000, async () => {
    const health = await healthz(web.url);
    return health.status === 503 && health;
  });
  assert.equal(published.body.status, "stale");
  assert.match(published.body.reason!, /^no pipeline cycle has succeeded, and the data was published \d+ s ago \(STALE_AFTER_S=10\)$/);
  assert.equal(published.body.freshness.last_success_at, null);
  assert.ok(published.body.freshness.last_publish_age_s! > stale_after_s);
  const first_banner = banner_of(await overview_html(web.url));
  assert.match(first_banner ?? "", /^Stale data: The data pipeline has not confirmed these figures; this release was published \d+ s ago\. Newer USDA figures may exist\.$/);

  // A record this version cannot read is no record: still judged by the publish time, nothing breaks.
  fs.mkdirSync(state_dir, { recursive: true });
  fs.writeFileSync(freshness_path(state_dir), "{ not json");
  await wait_until("the unreadable record read", 10_000, async () => (await healthz(web.url)).body.freshness.last_success_at === null);
  assert.equal((await healthz(web.url)).status, 503);

  // The daemon records a successful cycle: fresh within a second, and the page loses its banner
  // although a bannered copy of it was cached a moment ago.
  record_cycle_success(state_dir, new Date());
  const fresh = await wait_until("the record to be read", 10_000, async () => {
    const health = await healthz(web.url);
    return health.status === 200 && health;
  });
  assert.equal(fresh.body.status, "ok");
  assert.ok(fresh.body.freshness.last_success_age_s! <= stale_after_s);
  assert.equal(fresh.body.freshness.stale_after_s, stale_after_s);
  const page = await overview_html(web.url);
  assert.equal(banner_of(page), undefined, "no banner while fresh");
  assert.equal(await overview_html(web.url), page, "the fresh page is the cached one");

  // Then nothing more is recorded: the page cached while fresh is not served once data went stale.
  const stale = await wait_until("STALE_AFTER_S to pass", 60_000, async () => {
    const health = await healthz(web.url);
    return health.status === 503 && health;
  });
  assert.match(stale.body.reason!, /^no pipeline cycle has succeeded for \d+ s \(STALE_AFTER_S=10\)$/);
  assert.match(banner_of(await overview_html(web.url)) ?? "", /^Stale data: The data pipeline last succeeded \d+ s ago; this release was published \d+ s ago\. Newer USDA figures may exist\.$/);
  const api = await fetch(`${web.url}/api/overview`);
  assert.equal(api.status, 200, "the data itself is still served");
  await api.arrayBuffer();
});

test("the daemon pings HEALTHCHECK_PING_URL (/start, success, /fail with the reason), a hung ping endpoint holds up no cycle, and STATUS, /healthz and materia status say when data goes stale and when it is fresh again", async (t) => {
  const stale_after_s = 8;
  let upstream_fails = false;
  const release = serve_release(shipped_zip_path, '"psd-1"', "Tue, 12 Nov 2024 12:00:00 GMT");
  const upstream = await start_http_server((req, res) => {
    if (upstream_fails) res.writeHead(500).end("upstream broke");
    else release(req, res);
  });
  t.after(() => upstream.close());
  const ping = await start_ping_server();
  t.after(() => ping.close());
  const { sandbox, notify, daemon, runs, status } = await daemon_in_sandbox(t, {
    PSD_SOURCE_URL: upstream.url, STALE_AFTER_S: String(stale_after_s), HEALTHCHECK_PING_URL: ping.url,
    // Long enough for a first fetch on a loaded machine: a /start given up would leave the order untested.
    HEALTHCHECK_TIMEOUT_MS: "5000",
  });
  const status_report = async () => {
    const result = await run_cli(["status"], sandbox.env);
    assert.equal(result.code, 0, result.stderr);
    return result.stdout;
  };

  // A good cycle: /start, then the bare URL; fresh everywhere.
  await wait_until("a success ping", 180_000, () => ping.pinged("").length >= 1);
  assert.deepEqual(ping.pings.slice(0, 2).map((p) => p.path), [`${new URL(ping.url).pathname}/start`, new URL(ping.url).pathname]);
  const web_url = status()!.web_url!;
  const fresh = await healthz(web_url);
  assert.equal(fresh.status, 200);
  assert.ok(fresh.body.freshness.last_success_at !== null && fresh.body.freshness.last_publish_at !== null);
  assert.match(await status_report(), /^data: fresh$/m);

  // Upstream breaks: /fail with the one-line reason; past STALE_AFTER_S, STATUS, /healthz and
  // materia status say the data is stale (the daemon says it in the middle of its backoff waits).
  upstream_fails = true;
  const fail = await wait_until("a fail ping", 60_000, () => ping.pinged("/fail")[0]);
  assert.match(fail.body, /^extract: .*500/);
  assert.doesNotMatch(fail.body, /\n/);
  await notify.wait_for("a stale STATUS", /^STATUS=STALE DATA \(no successful cycle since \d{4}-\d\d-\d\d \d\d:\d\d\); backoff after extract failure, retry /m, 60_000);
  const stale = await healthz(web_url);
  assert.equal(stale.status, 503);
  assert.match(stale.body.reason!, /^no pipeline cycle has succeeded for \d+ s \(STALE_AFTER_S=8\)$/);
  const report = await status_report();
  assert.match(report, /^data: STALE: no pipeline cycle has succeeded for \d+ s \(STALE_AFTER_S=8\)$/m);
  assert.match(report, /^last successful cycle: \S+ \(\d+ s ago\)$/m);
  assert.match(report, /^last publish: \S+ \(\d+ s ago\)$/m);

  // The ping endpoint hangs: cycles go on at their pace, each ping given up after HEALTHCHECK_TIMEOUT_MS.
  ping.hang = true;
  const failed_before = runs("extract", "failed").length;
  await wait_until("three more cycles with the ping endpoint hung", 60_000, () => runs("extract", "failed").length >= failed_before + 3);
  await daemon.wait_for_line(/^<4>warn: healthcheck: the (start|fail) ping failed: no answer within HEALTHCHECK_TIMEOUT_MS=5000$/, 30_000);

  // Both recover: a success ping, and the stale warning is gone from STATUS and /healthz.
  ping.hang = false;
  upstream_fails = false;
  const seen = notify.messages.length;
  const successes = ping.pinged("").length;
  await wait_until("a success ping after the recovery", 120_000, () => ping.pinged("").length > successes);
  await notify.wait_for("a plain STATUS", /^STATUS=(idle, next run|extract running)/m, 30_000, seen);
  assert.equal((await healthz(web_url)).status, 200);
  assert.equal((await daemon.terminate(15_000)).code, 0);
});
