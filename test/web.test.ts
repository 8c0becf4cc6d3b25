import assert from "node:assert/strict";
import fs from "node:fs";
import http from "node:http";
import net from "node:net";
import { after, before, describe, test } from "node:test";
import { RunHistory, write_daemon_status } from "../daemon/run_history.js";
import { running_commit } from "../lib/version.js";
import { wait_until } from "./support/daemon_process.js";
import { make_sandbox, run_cli, type Sandbox } from "./support/sandbox.js";
import { basic, form, form_session, get, type Reply } from "./support/web_client.js";
import { start_web, type WebProcess } from "./support/web_process.js";
import { read_wide_csv, world_totals } from "./support/wide_csv.js";

// The dashboard over HTTP, on a serving file built by the real pipeline from the shipped USDA
// release, checked against USDA's own wide file (test/fixtures), which the pipeline never reads.

const admin_password = "correct horse battery staple";
const bags = new Intl.NumberFormat("en-US", { maximumFractionDigits: 0 });
/** serving column → the wide file's column */
const wide_columns: Record<string, string> = {
  production: "Production", arabica_production: "Arabica Production", robusta_production: "Robusta Production",
  other_production: "Other Production", beginning_stocks: "Beginning Stocks", imports: "Imports",
  total_supply: "Total Supply", exports: "Exports", domestic_consumption: "Domestic Consumption", ending_stocks: "Ending Stocks",
};

type Rows = Record<string, number | string | null>[];
const json_table = (reply: Reply, table: string): Rows => (JSON.parse(reply.text) as { tables: Record<string, { rows: Rows }> }).tables[table]!.rows;

function parse_csv(text: string): Record<string, string>[] {
  const [header, ...lines] = text.trim().split("\r\n");
  const keys = header!.split(",");
  return lines.map((line) => Object.fromEntries(line.split(",").map((cell, index) => [keys[index]!, cell])));
}


describe("the dashboard on the real data", () => {
  let sandbox: Sandbox;
  let web: WebProcess;
  const brazil = read_wide_csv().filter((row) => row.country === "Brazil");

  before(async () => {
    sandbox = make_sandbox({ ADMIN_PASSWORD: admin_password });
    const built = await run_cli(["pipeline", "run", "all"], sandbox.env);
    assert.equal(built.code, 0, built.stderr + built.stdout);
    web = await start_web(sandbox.env, "forked");
  });
  after(async () => {
    try {
      if (web) assert.equal(await web.stop(), 0, "the web process exits 0 on SIGTERM");
    } finally {
      sandbox.cleanup();
    }
  });

  test("the overview shows the world balance of USDA's wide file, every year, in HTML, JSON and CSV", async () => {
    const rows = json_table(await get(web.url, "/api/overview"), "balance");
    assert.equal(rows.length, 64);
    for (const [key, column] of Object.entries(wide_columns)) {
      const expected = world_totals(column);
      for (const row of rows) assert.equal(row[key], expected.get(row.market_year as number), `${key} ${row.market_year}`);
    }
    const csv = parse_csv((await get(web.url, "/api/overview.csv?table=balance")).text);
    assert.deepEqual(csv.map((row) => Number(row.production)), rows.map((row) => row.production));

    const page = await get(web.url, "/");
    assert.equal(page.status, 200);
    const production = world_totals("Production");
    assert.match(page.text, new RegExp(`Production 2023/24</div>\\s*<div class="card-value"[^>]*>${bags.format(production.get(2023)!)}<`));
    const change = production.get(2023)! - production.get(2022)!;
    assert.ok(page.text.includes(`+${bags.format(change)} `), "the change against 2022 is shown");
    assert.ok(page.text.includes('<canvas id="world-production"'), "the page holds the charts");
  });

  test("the country page for Brazil agrees with the wide file in bags and in tonnes (66,300 → 3,978,000)", async () => {
    const html = await get(web.url, "/country/BR");
    assert.equal(html.status, 200);
    assert.match(html.text, /<h1>Brazil/);
    assert.match(html.text, /data-measure="production">66,300</);
    const tonnes_html = await get(web.url, "/country/BR?units=tonnes");
    assert.match(tonnes_html.text, /data-measure="production">3,978,000</);
    assert.match(tonnes_html.text, /metric tonnes/);

    const rows = json_table(await get(web.url, "/api/country/BR"), "balance");
    assert.equal(rows.length, brazil.length);
    for (const wide of brazil) {
      const row = rows.find((candidate) => candidate.market_year === wide.year)!;
      for (const [key, column] of Object.entries(wide_columns)) assert.equal(row[key], wide.values[column], `${key} ${wide.year}`);
    }
    const csv = parse_csv((await get(web.url, "/api/country/br.csv?units=tonnes")).text);
    const csv_2023 = csv.find((row) => row.market_year === "2023")!;
    assert.equal(csv_2023.production, "3978000");
    assert.equal(csv_2023.arabica_production, String(44900 * 60));
    assert.equal(csv_2023.stocks_to_use_pct, String(rows.at(-1)!.stocks_to_use_pct), "percentages are not converted");
  });

  test("the rankings for 2023 list the wide file's largest producers with their share of the world", async () => {
    const wide_2023 = read_wide_csv().filter((row) => row.year === 2023);
    const world = wide_2023.reduce((sum, row) => sum + row.values.Production!, 0);
    const expected = wide_2023.sort((a, b) => b.values.Production! - a.values.Production!).slice(0, 5);

    const rows = json_table(await get(web.url, "/api/rankings?year=2023&top=5"), "production");
    assert.deepEqual(rows.map((row) => [row.country_name, row.value]), expected.map((row) => [row.country, row.values.Production]));
    assert.equal(rows[0]!.share_of_world_pct, Math.round((10_000 * 66300) / world) / 100);

    const csv = parse_csv((await get(web.url, "/api/rankings.csv?year=2023&top=5&table=production&units=tonnes")).text);
    assert.deepEqual(csv.map((row) => Number(row.value)), expected.map((row) => row.values.Production! * 60));

    const page = await get(web.url, "/rankings?year=2023");
    for (const heading of ["Top producers 2023/24", "Top exporters 2023/24", "Top importers 2023/24", "Top consumers 2023/24"]) {
      assert.ok(page.text.includes(heading), heading);
    }
    assert.match(page.text, /<a href="\/country\/BR">Brazil<\/a><\/td>\s*<td class="text" data-key="country_code">BR<\/td>\s*<td class="quantity" data-key="value">66,300</);
  });

  test("the settings cookie switches units and years on every page, and a bad value is refused", async () => {
    const session = await form_session(web.url, "/settings");
    const saved = await get(web.url, "/settings", form({ units: "tonnes", from: "2020", to: "2023", csrf_token: session.token },
      { cookie: session.cookie }));
    assert.equal(saved.status, 303);
    const cookie = saved.headers.get("set-cookie")!.split(";")[0]!;
    const page = await get(web.url, "/country/BR", { headers: { cookie } });
    assert.match(page.text, /data-measure="production">3,978,000</);
    const api = JSON.parse((await get(web.url, "/api/country/BR", { headers: { cookie } })).text) as { units: string; from: number };
    assert.deepEqual([api.units, api.from], ["tonnes", 2020]);

    const refused = await get(web.url, "/settings", form({ units: "gallons", csrf_token: session.token }, { cookie: session.cookie }));
    assert.equal(refused.status, 400);
    assert.match(refused.text, /units must be bags or tonnes/);
  });

  test("bad inputs get a 4xx with a clear message, never a 5xx or a stack trace", async () => {
    const cases: [path: string, status: number, message: RegExp, init?: RequestInit][] = [
      ["/country/XX", 404, /no country with code XX/],
      ["/api/country/ZZ", 404, /no country with code ZZ/],
      ["/api/country/B'R", 400, /a country code is two letters/],
      ["/api/country/BR%27%3B%20DROP%20TABLE%20country_balance%3B--", 400, /a country code is two letters/],
      ["/api/country/%E0%A4%A", 400, /./],
      ["/api/overview?from=1800", 400, /from must be between 1960 and 2023/],
      ["/api/overview?to=2999", 400, /to must be between 1960 and 2023/],
      ["/api/overview?from=2020&to=2010", 400, /from \(2020\) must not be after to \(2010\)/],
      ["/api/rankings?year=2023;DROP TABLE rankings", 400, /year must be a year/],
      ["/api/rankings?measure=production' OR '1'='1", 400, /measure must be one of production, exports/],
      ["/api/rankings?top=100000", 400, /top must be a whole number from 1 to 100/],
      ["/api/rankings?year=2023&year=2022", 400, /year must be given once/],
      ["/api/country/BR?units=gallons", 400, /units must be bags or tonnes/],
      ["/api/overview.csv?table=secrets", 400, /table must be one of latest, balance/],
      ["/country?code=../../etc", 400, /a country code is two letters/],
      [`/api/overview?from=${"9".repeat(10_000)}`, 414, /longer than WEB_URL_BYTES_MAX=4096 bytes/],
      ["/no/such/page", 404, /no such page/],
      ["/api/overview", 400, /settings cookie is not valid \(units must be bags or tonnes\)/,
        { headers: { cookie: "beanflows_settings=units%3Dgallons" } }],
      ["/", 400, /settings cookie is not valid/, { headers: { cookie: `beanflows_settings=${"a".repeat(500)}` } }],
      ["/", 400, /settings cookie is not valid \(not URL-encoded\)/, { headers: { cookie: "beanflows_settings=%E0%A4%A" } }],
      ["/settings", 413, /too large/, form({ units: "bags", padding: "x".repeat(20_000) })],
    ];
    for (const [path, status, message, init] of cases) {
      const reply = await get(web.url, path, init);
      assert.equal(reply.status, status, `${path.slice(0, 80)}: ${reply.text.slice(0, 200)}`);
      assert.match(reply.text, message, path.slice(0, 80));
      assert.doesNotMatch(reply.text, /\n\s+at /, `${path.slice(0, 80)}: no stack trace`);
    }
    const cleared = await get(web.url, "/", { headers: { cookie: "beanflows_settings=units%3Dgallons" } });
    assert.match(cleared.headers.get("set-cookie") ?? "", /beanflows_settings=;.*Expires=Thu, 01 Jan 1970/, "a bad cookie is cleared");

    // Beyond Node's header limit the server answers 431 itself, before any of our code.
    const huge = await get(web.url, `/api/overview?from=${"9".repeat(100_000)}`);
    assert.equal(huge.status, 431);
    assert.equal((await get(web.url, "/healthz")).status, 200, "still serving after all that");
  });

  test("every page shows which release it shows and when it was exported", async () => {
    const { release_id, exported_at } = JSON.parse((await get(web.url, "/api/overview")).text) as { release_id: string; exported_at: string };
    for (const path of ["/", "/rankings", "/country/BR", "/settings", "/no/such/page"]) {
      const page = await get(web.url, path);
      assert.ok(page.text.includes(`title="${release_id}"`), `${path} names the release`);
      assert.ok(page.text.includes(`exported <time datetime="${exported_at}">`), `${path} says when it was exported`);
    }
  });

  test("/healthz names the serving file in use, its release and the running commit", async () => {
    const reply = await get(web.url, "/healthz");
    assert.equal(reply.status, 200);
    const body = JSON.parse(reply.text) as { commit: string; serving: { ino: number; release_id: string; mtime: string } };
    const stat = fs.statSync(sandbox.config.serving_duckdb_path);
    assert.equal(body.serving.ino, stat.ino);
    assert.equal(body.serving.mtime, stat.mtime.toISOString());
    assert.equal(body.serving.release_id, JSON.parse((await get(web.url, "/api/overview")).text).release_id);
    assert.equal(body.commit, running_commit());
  });

  test("/admin needs the password; Run now needs the CSRF token, then asks the daemon for a run", async () => {
    const state_dir = sandbox.config.materia_state_dir;
    const started = new Date(Date.now() - 90_000).toISOString();
    new RunHistory(state_dir, 100).record({ run_id: "c1.transform", cycle_id: "c1", job: "transform", started_at: started,
      ended_at: new Date(Date.parse(started) + 42_000).toISOString(), outcome: "failed",
      message: "sqlmesh exited with 1", output_tail: "Error: audit not_null failed on serving.rankings" });
    write_daemon_status(state_dir, { pid: 4242, commit: "abc123", state: "backoff", current_job: null,
      next_run_at: "2030-01-01T00:00:00.000Z", last_error: "transform failed", web_url: web.url, updated_at: started });

    const anonymous = await get(web.url, "/admin");
    assert.equal(anonymous.status, 401);
    assert.match(anonymous.headers.get("www-authenticate") ?? "", /^Basic /);
    assert.equal((await get(web.url, "/admin", { headers: basic("guess") })).status, 401);
    assert.equal((await get(web.url, "/api/admin", { headers: basic("guess") })).status, 401);
    assert.equal((await get(web.url, "/admin/run-now", form({}))).status, 401);

    const page = await get(web.url, "/admin", { headers: basic(admin_password) });
    assert.equal(page.status, 200);
    const session = await form_session(web.url, "/admin", basic(admin_password));
    for (const shown of ["backoff (pid 4242", "2030-01-01T00:00:00.000Z", "transform failed", "failed", "42 s", "sqlmesh exited with 1"]) {
      assert.ok(page.text.includes(shown), shown);
    }
    const log_tail = await get(web.url, "/admin/runs/c1.transform", { headers: basic(admin_password) });
    assert.match(log_tail.text, /audit not_null failed on serving\.rankings/);

    const no_token = await get(web.url, "/admin/run-now", form({}, { ...basic(admin_password), cookie: session.cookie }));
    assert.equal(no_token.status, 403);
    assert.match(no_token.text, /CSRF token/);
    const bad_token = await get(web.url, "/admin/run-now", form({ csrf_token: "forged" }, { ...basic(admin_password), cookie: session.cookie }));
    assert.equal(bad_token.status, 403);
    assert.deepEqual(web.messages.filter((m) => (m as { type: string }).type === "run_now"), []);

    const run = await get(web.url, "/admin/run-now", form({ csrf_token: session.token }, { ...basic(admin_password), cookie: session.cookie }));
    assert.equal(run.status, 303);
    assert.equal(run.headers.get("location"), "/admin?requested=1");
    assert.deepEqual(web.messages.filter((m) => (m as { type: string }).type === "run_now"), [{ type: "run_now" }]);
  });
});

describe("the web process on its own", () => {
  test("without a serving file the pages say no data yet (503), /healthz is 503 with the commit, Run now has no daemon", async (t) => {
    const sandbox = make_sandbox({ ADMIN_PASSWORD: admin_password });
    t.after(() => sandbox.cleanup());
    const web = await start_web(sandbox.env, "standalone");
    t.after(() => web.stop());

    for (const path of ["/", "/country/BR", "/rankings", "/api/overview", "/settings"]) {
      const reply = await get(web.url, path);
      assert.equal(reply.status, 503, path);
      assert.match(reply.text, /no data yet/, path);
    }
    const health = await get(web.url, "/healthz");
    assert.equal(health.status, 503);
    assert.equal(JSON.parse(health.text).commit, running_commit());

    const session = await form_session(web.url, "/admin", basic(admin_password));
    const run = await get(web.url, "/admin/run-now", form({ csrf_token: session.token }, { ...basic(admin_password), cookie: session.cookie }));
    assert.equal(run.status, 503);
    assert.match(run.text, /no daemon is supervising this web process/);

    assert.equal(await web.stop(), 0, "SIGTERM: exit 0");
    assert.match(web.output(), /web: stopped/);
  });

  test("without ADMIN_PASSWORD the admin pages do not exist", async (t) => {
    const sandbox = make_sandbox({ ADMIN_PASSWORD: "" });
    t.after(() => sandbox.cleanup());
    const web = await start_web(sandbox.env, "standalone");
    t.after(() => web.stop());
    for (const path of ["/admin", "/api/admin"]) assert.equal((await get(web.url, path, { headers: basic("") })).status, 404, path);
    assert.equal((await get(web.url, "/admin/run-now", form({}))).status, 404);
  });

  test("after SIGTERM a keep-alive connection gets its next answer with Connection: close and ends cleanly, never reset", async (t) => {
    const sandbox = make_sandbox({ WEB_SHUTDOWN_GRACE_MS: "20000" });
    t.after(() => sandbox.cleanup());
    const web = await start_web(sandbox.env, "standalone");
    t.after(() => web.stop());
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    t.after(() => agent.destroy());
    const get_healthz = () => new Promise<{ response: http.IncomingMessage; reused: boolean; socket: net.Socket }>((resolve, reject) => {
      const request = http.get(`${web.url}/healthz`, { agent }, (response) => {
        response.resume();
        response.on("end", () => resolve({ response, reused: request.reusedSocket, socket: request.socket as net.Socket }));
      });
      request.on("error", reject);
    });
    const first = await get_healthz();
    assert.notEqual(first.response.headers.connection, "close", "kept alive before the stop");

    web.child.kill("SIGTERM");
    await wait_until("the web process stopping", 10_000, () => /web: stopping \(SIGTERM\)/.test(web.output()));
    const socket_closed = new Promise<boolean>((resolve) => first.socket.once("close", resolve));
    const second = await get_healthz();
    assert.equal(second.reused, true, "the second request went over the kept-alive connection");
    assert.equal(second.response.statusCode, 503, "answered (no data in this sandbox) while stopping");
    assert.equal(second.response.headers.connection, "close");
    assert.equal(await socket_closed, false, "the connection closed without an error");
    assert.equal(await web.stop(), 0);
  });

  test("SIGTERM cuts a stalled client after WEB_SHUTDOWN_GRACE_MS and exits 0", async (t) => {
    const grace_ms = 1000;
    const sandbox = make_sandbox({ WEB_SHUTDOWN_GRACE_MS: String(grace_ms) });
    t.after(() => sandbox.cleanup());
    const web = await start_web(sandbox.env, "standalone");
    t.after(() => web.stop());
    const { hostname, port } = new URL(web.url);
    const stalled = net.connect(Number(port), hostname);
    t.after(() => stalled.destroy());
    await new Promise((resolve) => stalled.once("connect", resolve));
    stalled.write("GET /healthz HTTP/1.1\r\nHost: test\r\n"); // the request never ends
    const cut = new Promise((resolve) => stalled.once("close", resolve));

    const started = Date.now();
    assert.equal(await web.stop(), 0);
    const stop_ms = Date.now() - started;
    await cut;
    assert.ok(stop_ms >= grace_ms, `the stalled client had its grace (${stop_ms} ms)`);
    assert.ok(stop_ms < grace_ms + 2000, `stopped ${stop_ms} ms after SIGTERM, grace ${grace_ms} ms`);
  });
});
