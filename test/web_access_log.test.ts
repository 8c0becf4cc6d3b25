import assert from "node:assert/strict";
import net from "node:net";
import { after, before, describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { wait_until } from "./support/daemon_process.js";
import { make_sandbox, run_cli, type Sandbox } from "./support/sandbox.js";
import { basic, get } from "./support/web_client.js";
import { start_web } from "./support/web_process.js";

// The access log as an operator reads it in the journal: a summary per interval, and lines of
// their own only for what needs a look (server errors, cut-off responses, slow requests).

const admin_password = "access-log-admin-password";

interface Summary {
  requests: number;
  classes: Record<string, number>;
  p50_ms: number;
  p99_ms: number;
}

function summaries(output: string): Summary[] {
  const pattern = /^<6>info: web: (\d+) requests in \d+ s \(2xx (\d+), 3xx (\d+), 4xx (\d+), 5xx (\d+), cut off (\d+)\); latency p50 ([\d.]+) ms, p99 ([\d.]+) ms, max [\d.]+ ms; \d+ over \d+ ms/gm;
  return [...output.matchAll(pattern)].map((m) => ({
    requests: Number(m[1]),
    classes: { "2xx": Number(m[2]), "3xx": Number(m[3]), "4xx": Number(m[4]), "5xx": Number(m[5]), "cut off": Number(m[6]) },
    p50_ms: Number(m[7]),
    p99_ms: Number(m[8]),
  }));
}

const total = (all: Summary[], key: "requests" | "2xx" | "3xx" | "4xx" | "5xx" | "cut off") =>
  all.reduce((sum, s) => sum + (key === "requests" ? s.requests : s.classes[key]!), 0);

/** A form POST whose headers arrive now and whose body `body_after_ms` later, or never (the client hangs up instead). */
async function trickled_post(url: string, path: string, body_after_ms: number, hang_up: boolean): Promise<string> {
  const { hostname, port } = new URL(url);
  const socket = net.connect(Number(port), hostname);
  await new Promise((resolve) => socket.once("connect", resolve));
  const body = "units=bags";
  socket.write(`POST ${path} HTTP/1.1\r\nHost: ${hostname}:${port}\r\nContent-Type: application/x-www-form-urlencoded\r\n` +
    `Content-Length: ${body.length}\r\nConnection: close\r\n\r\n`);
  await sleep(body_after_ms);
  if (hang_up) {
    socket.destroy();
    return "";
  }
  socket.write(body);
  let reply = "";
  socket.on("data", (chunk: Buffer) => (reply += chunk.toString()));
  await new Promise((resolve) => socket.once("close", resolve));
  return reply;
}

describe("the access log", () => {
  let sandbox: Sandbox;

  before(async () => {
    sandbox = make_sandbox({ ADMIN_PASSWORD: admin_password });
    const built = await run_cli(["pipeline", "run", "all"], sandbox.env);
    assert.equal(built.code, 0, built.stderr + built.stdout);
  });
  after(() => sandbox?.cleanup());

  test("one info line per interval counts every request by status class, those the fast path answers from the page cache too, with p50 and p99; no line per request", async (t) => {
    const web = await start_web({ ...sandbox.env, LOG_LEVEL: "info", WEB_ACCESS_LOG_INTERVAL_S: "1" });
    t.after(() => web.stop());
    for (let i = 0; i < 20; i++) assert.equal((await get(web.url, "/api/overview")).status, 200);
    for (let i = 0; i < 3; i++) assert.equal((await get(web.url, "/no/such/page")).status, 404);
    assert.equal((await get(web.url, "/country/BR")).status, 200);

    const counted = await wait_until("24 requests summed up", 30_000, () => total(summaries(web.output()), "requests") >= 24 && summaries(web.output()));
    assert.equal(total(counted, "requests"), 24);
    assert.deepEqual(["2xx", "3xx", "4xx", "5xx", "cut off"].map((key) => total(counted, key as "2xx")), [21, 0, 3, 0, 0]);
    for (const summary of counted) assert.ok(summary.p50_ms > 0 && summary.p50_ms <= summary.p99_ms, JSON.stringify(summary));
    assert.doesNotMatch(web.output(), /web: GET \/api\/overview/, "no line per request at info");
    assert.doesNotMatch(web.output(), /<4>warn: web: /, "nothing to warn about");

    // The page cache answered 19 of the 20 overview requests (the fast path, in front of Express), and each was counted above.
    const admin = JSON.parse((await get(web.url, "/api/admin", { headers: basic(admin_password) })).text) as { page_cache: { hits: number } };
    assert.ok(admin.page_cache.hits >= 19, `page cache hits: ${admin.page_cache.hits}`);
  });

  test("slow and cut-off requests get a warn line of their own; at debug, every request does", async (t) => {
    const web = await start_web({ ...sandbox.env, LOG_LEVEL: "debug", WEB_ACCESS_LOG_INTERVAL_S: "3600", WEB_ACCESS_LOG_SLOW_MS: "1000" });
    t.after(() => web.stop());
    // The server cannot answer before the body is there: the request takes at least 1.5 s, by the client's clock.
    const slow = await trickled_post(web.url, "/settings", 1_500, false);
    assert.match(slow, /^HTTP\/1\.1 403 /, "refused: no CSRF token");
    await trickled_post(web.url, "/settings", 200, true);
    assert.equal((await get(web.url, "/api/overview")).status, 200);

    await wait_until("the slow request's line", 10_000, () => /^<4>warn: web: POST \/settings 403 [\d.]+ ms \(slow: over WEB_ACCESS_LOG_SLOW_MS=1000\)$/m.test(web.output()));
    await wait_until("the cut-off request's line", 10_000, () => /^<4>warn: web: POST \/settings \d{3} cut off [\d.]+ ms$/m.test(web.output()));
    await wait_until("the debug line", 10_000, () => /^<7>debug: web: GET \/api\/overview 200 [\d.]+ ms$/m.test(web.output()));
    assert.equal(await web.stop(), 0);
    const [summary] = summaries(web.output());
    assert.deepEqual(summary?.classes, { "2xx": 1, "3xx": 0, "4xx": 1, "5xx": 0, "cut off": 1 }, "the summary of the stopped web's last interval");
    assert.match(web.output(), /; 1 over 1000 ms$/m);
  });

  test("server errors get a warn line each, at most WEB_ACCESS_LOG_LINES_MAX per interval; the summary counts the rest", async (t) => {
    // No serving file published here: every page answers 503.
    const empty = make_sandbox({ LOG_LEVEL: "info", WEB_ACCESS_LOG_INTERVAL_S: "3600", WEB_ACCESS_LOG_LINES_MAX: "2" });
    t.after(() => empty.cleanup());
    const web = await start_web(empty.env);
    t.after(() => web.stop());
    for (let i = 0; i < 5; i++) assert.equal((await get(web.url, "/api/overview")).status, 503);
    assert.equal(await web.stop(), 0);
    const lines = web.output().split("\n").filter((line) => line.startsWith("<4>warn: web: GET"));
    assert.equal(lines.length, 2, lines.join("\n"));
    for (const line of lines) assert.match(line, /^<4>warn: web: GET \/api\/overview 503 [\d.]+ ms$/);
    assert.match(web.output(), /^<6>info: web: 5 requests in \d+ s \(2xx 0, 3xx 0, 4xx 0, 5xx 5, cut off 0\); .*; 3 error or slow lines left out$/m);
  });
});
