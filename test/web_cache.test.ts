import assert from "node:assert/strict";
import crypto from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { DuckDBInstance } from "@duckdb/node-api";
import { repo_root } from "../lib/paths.js";
import { decoded, raw_get, type RawReply } from "./support/raw_http.js";
import { make_sandbox, run_cli, type Sandbox } from "./support/sandbox.js";
import { start_web, type WebProcess } from "./support/web_process.js";

// The web's response cache, fast path and static assets, over HTTP on a serving file built by
// the real pipeline. The web logs every DuckDB query at debug level: counting those lines is how
// these tests see whether an answer touched DuckDB.

const query_lines = (web: WebProcess) => web.output().split("\n").filter((line) => line.includes("web: query on inode")).length;

/** Runs `work` and returns how many DuckDB queries the web ran meanwhile. */
async function queries_during(web: WebProcess, work: () => Promise<unknown>): Promise<number> {
  const before_work = query_lines(web);
  await work();
  return query_lines(web) - before_work;
}

const brazil_json = (reply: RawReply) =>
  JSON.parse(decoded(reply).toString()) as { release_id: string; tables: { balance: { rows: { market_year: number; production: number }[] } } };

/** A copy of a real serving file with one figure and its release changed, as a revised release would be. */
async function revised_copy(source: string, target: string, release_id: string, brazil_production_2023: number): Promise<void> {
  fs.copyFileSync(source, target);
  const instance = await DuckDBInstance.create(target);
  const connection = await instance.connect();
  try {
    await connection.run("UPDATE country_balance SET production = $value WHERE country_code = 'BR' AND market_year = 2023",
      { value: brazil_production_2023 });
    await connection.run("UPDATE release SET release_id = $id", { id: release_id });
    await connection.run("UPDATE export_info SET release_id = $id, exported_at = now()", { id: release_id });
    await connection.run("CHECKPOINT");
  } finally {
    connection.closeSync();
    instance.closeSync();
  }
}

describe("the response cache on the real data", () => {
  let sandbox: Sandbox;
  let web: WebProcess;
  let original: string;

  before(async () => {
    sandbox = make_sandbox({ LOG_LEVEL: "debug" });
    const built = await run_cli(["pipeline", "run", "all"], { ...sandbox.env, LOG_LEVEL: "info" });
    assert.equal(built.code, 0, built.stderr + built.stdout);
    original = path.join(sandbox.dir, "original.duckdb");
    fs.copyFileSync(sandbox.config.serving_duckdb_path, original);
    web = await start_web(sandbox.env, "forked");
  });
  after(async () => {
    try {
      if (web) assert.equal(await web.stop(), 0);
    } finally {
      sandbox.cleanup();
    }
  });

  test("a repeated request is answered from memory: the same bytes, the same ETag, no query", async () => {
    const first = await raw_get(web.url, "/api/country/BR");
    assert.equal(first.status, 200);
    let again: RawReply | undefined;
    assert.equal(await queries_during(web, async () => (again = await raw_get(web.url, "/api/country/BR"))), 0);
    assert.equal(again!.status, 200);
    assert.deepEqual(again!.body, first.body);
    assert.equal(again!.headers.etag, first.headers.etag);
    assert.match(first.headers.etag!, /^"[\w-]{32}"$/, "a strong ETag");
  });

  test("a conditional request gets 304 without a query, also from a new process that never rendered the page", async (t) => {
    const target = "/country/BR?units=tonnes";
    const page = await raw_get(web.url, target, { "accept-encoding": "br" });
    assert.equal(page.status, 200);
    const etag = page.headers.etag!;
    let revalidated: RawReply | undefined;
    assert.equal(await queries_during(web, async () => (revalidated = await raw_get(web.url, target, { "if-none-match": etag }))), 0);
    assert.equal(revalidated!.status, 304);
    assert.equal(revalidated!.body.length, 0);
    assert.equal(revalidated!.headers.etag, etag);
    assert.equal(revalidated!.headers["cache-control"], page.headers["cache-control"]);

    const fresh = await start_web(sandbox.env, "forked");
    t.after(() => fresh.stop());
    assert.equal((await raw_get(fresh.url, "/healthz")).status, 200, "the file is open");
    let from_new: RawReply | undefined;
    assert.equal(await queries_during(fresh, async () => (from_new = await raw_get(fresh.url, target, { "if-none-match": `W/"nope", ${etag}` }))), 0);
    assert.equal(from_new!.status, 304);

    const other = await raw_get(web.url, target, { "if-none-match": '"someone-elses-etag"' });
    assert.equal(other.status, 200, "a tag that is not ours gets the page");
  });

  test("concurrent requests for a page nobody asked for yet run its query once", async () => {
    const target = "/api/country/CO?from=1990&to=2000";
    let replies: RawReply[] = [];
    const queries = await queries_during(web, async () => {
      replies = await Promise.all(Array.from({ length: 20 }, () => raw_get(web.url, target)));
    });
    assert.equal(queries, 1, "the country page runs one query, once");
    assert.deepEqual(replies.map((reply) => reply.status), Array(20).fill(200));
    assert.equal(new Set(replies.map((reply) => reply.body.toString())).size, 1);
  });

  test("the body is compressed as the client asks, and every encoding decodes to the same bytes", async () => {
    const target = "/country/BR";
    const plain = await raw_get(web.url, target);
    assert.equal(plain.headers["content-encoding"], undefined);
    const cases: [accept_encoding: string, expected: string | undefined][] = [
      ["br", "br"], ["gzip", "gzip"], ["gzip, deflate, br, zstd", "br"], ["br;q=0.5, gzip", "gzip"], ["*", "br"],
      ["identity", undefined], ["deflate", undefined], ["br;q=0, gzip;q=0", undefined],
    ];
    for (const [accept_encoding, expected] of cases) {
      const reply = await raw_get(web.url, target, { "accept-encoding": accept_encoding });
      assert.equal(reply.status, 200, accept_encoding);
      assert.equal(reply.headers["content-encoding"], expected, accept_encoding);
      assert.equal(Number(reply.headers["content-length"]), reply.body.length, accept_encoding);
      assert.deepEqual(decoded(reply), plain.body, accept_encoding);
      assert.match(reply.headers.vary!, /Accept-Encoding/, accept_encoding);
      if (expected !== undefined) assert.ok(reply.body.length < plain.body.length / 4, `${accept_encoding}: ${reply.body.length} bytes`);
    }
    const br = await raw_get(web.url, target, { "accept-encoding": "br" });
    const gzip = await raw_get(web.url, target, { "accept-encoding": "gzip" });
    assert.equal(new Set([plain.headers.etag, br.headers.etag, gzip.headers.etag]).size, 3, "each encoding has its own strong ETag");
    const head = await raw_get(web.url, target, { "accept-encoding": "br" }, "HEAD");
    assert.equal(head.status, 200);
    assert.equal(head.body.length, 0);
    assert.equal(head.headers["content-length"], br.headers["content-length"]);
    assert.equal(head.headers.etag, br.headers.etag);
  });

  test("pages tell a CDN how long to keep them, and vary on the cookie only where it can change them", async () => {
    const page = await raw_get(web.url, "/api/overview");
    assert.match(page.headers["cache-control"]!, /^public, max-age=0, s-maxage=60, stale-while-revalidate=600$/);
    assert.equal(page.headers.vary, "Accept-Encoding, Cookie", "the cookie supplies units and years");
    const explicit = await raw_get(web.url, "/api/overview?units=bags&from=1960&to=2023");
    assert.equal(explicit.headers.vary, "Accept-Encoding", "every input the cookie could supply is in the query");
    assert.equal(explicit.headers.etag, page.headers.etag, "the same params: the same response");
    const error = await raw_get(web.url, "/api/overview?units=gallons");
    assert.equal(error.status, 400);
    assert.equal(error.headers["cache-control"], "no-store", "an error is never cached");
  });

  test("a cache hit carries the same security headers as a page Express renders", async () => {
    await raw_get(web.url, "/rankings");
    const hit = await raw_get(web.url, "/rankings");
    const express_page = await raw_get(web.url, "/settings");
    const policy = ["content-security-policy", "x-frame-options", "x-content-type-options", "referrer-policy",
      "cross-origin-opener-policy", "x-permitted-cross-domain-policies"];
    for (const name of policy) {
      assert.ok(express_page.headers[name], `Express sends ${name}`);
      assert.equal(hit.headers[name], express_page.headers[name], name);
    }
    // HSTS only over TLS through a trusted proxy (test/web_hostile.test.ts checks hits over TLS).
    assert.equal(hit.headers["strict-transport-security"], undefined, "no HSTS over plain HTTP");
    assert.equal(hit.headers["x-powered-by"], undefined);
  });

  test("bad input is refused as clearly on a warm cache as on a cold one", async () => {
    await raw_get(web.url, "/api/country/BR");
    const cases: [target: string, status: number, message: RegExp, headers?: Record<string, string>][] = [
      ["/api/country/BR?units=gallons", 400, /units must be bags or tonnes/],
      ["/api/country/BR?units=bags&units=tonnes", 400, /units must be given once/],
      ["/api/country/%E0%A4%A", 400, /malformed percent-encoding/],
      ["/api/country/BR.csv?table=secrets", 400, /table must be one of balance/],
      ["/api/country/BR", 400, /settings cookie is not valid/, { cookie: "beanflows_settings=units%3Dgallons" }],
    ];
    for (const [target, status, message, headers] of cases) {
      const reply = await raw_get(web.url, target, headers);
      assert.equal(reply.status, status, target);
      assert.match(reply.body.toString(), message, target);
    }
  });

  test("static assets have content-hashed names, are immutable, compressed, and are the files' bytes", async () => {
    const html = decoded(await raw_get(web.url, "/country/BR")).toString();
    const addresses = [...html.matchAll(/(?:href|src)="(\/static\/[^"]+)"/g)].map((found) => found[1]!);
    const files: Record<string, string> = {
      style: "web/public/style.css", charts: "web/public/charts.js", "vendor/chartjs/chart.umd.min": "node_modules/chart.js/dist/chart.umd.min.js",
    };
    assert.deepEqual(addresses.map((address) => address.replace(/\.[0-9a-f]{12}\.(css|js)$/, "")).sort(),
      Object.keys(files).map((name) => `/static/${name}`).sort());
    for (const address of addresses) {
      const name = address.replace(/^\/static\//, "").replace(/\.[0-9a-f]{12}\.(css|js)$/, "");
      const bytes = fs.readFileSync(path.join(repo_root, files[name]!));
      const hash = /\.([0-9a-f]{12})\.(css|js)$/.exec(address)![1];
      assert.equal(hash, crypto.createHash("sha256").update(bytes).digest("hex").slice(0, 12), `${address} names its content`);
      const reply = await raw_get(web.url, address, { "accept-encoding": "gzip, br" });
      assert.equal(reply.status, 200, address);
      assert.equal(reply.headers["cache-control"], "public, max-age=31536000, immutable", address);
      assert.equal(reply.headers["content-encoding"], "br", address);
      assert.deepEqual(decoded(reply), bytes, address);
      assert.equal(reply.headers["content-security-policy"], (await raw_get(web.url, "/settings")).headers["content-security-policy"]);
      const revalidated = await raw_get(web.url, address, { "if-none-match": reply.headers.etag! });
      assert.equal(revalidated.status, 304, address);
    }
    const stale_hash = await raw_get(web.url, "/static/style.000000000000.css");
    assert.equal(stale_hash.status, 404, "an address with another hash is not served");
    const unhashed = await raw_get(web.url, "/static/style.css");
    assert.equal(unhashed.status, 200, "the plain address still works for pages rendered by an older version");
  });

  test("a new release is never answered from the old release's cache", async () => {
    const targets = ["/api/country/BR?from=2023&to=2023", "/country/BR?from=2023&to=2023", "/api/country/BR.csv?from=2023&to=2023"];
    const warm = async () => {
      const replies: RawReply[] = [];
      for (const target of targets) {
        await raw_get(web.url, target, { "accept-encoding": "br" });
        replies.push(await raw_get(web.url, target, { "accept-encoding": "br" }));
      }
      return replies;
    };
    const old_replies = await warm();
    assert.equal(brazil_json(old_replies[0]!).tables.balance.rows[0]!.production, 66300);
    assert.match(decoded(old_replies[1]!).toString(), /data-measure="production">66,300</);

    const revised = path.join(sandbox.dir, "revised.duckdb");
    await revised_copy(original, revised, "revised-release", 70000);
    fs.renameSync(revised, sandbox.config.serving_duckdb_path);

    const [json, html, csv] = await Promise.all(targets.map((target, index) =>
      raw_get(web.url, target, { "accept-encoding": "br", "if-none-match": old_replies[index]!.headers.etag! })));
    assert.deepEqual([json!.status, html!.status, csv!.status], [200, 200, 200], "the old ETags no longer hold");
    assert.equal(brazil_json(json!).release_id, "revised-release");
    assert.equal(brazil_json(json!).tables.balance.rows[0]!.production, 70000);
    assert.match(decoded(html!).toString(), /data-measure="production">70,000</);
    assert.match(decoded(html!).toString(), /title="revised-release"/);
    assert.match(decoded(csv!).toString(), /\r\n2023,2023\/24,70000,/);

    // Back to the first release under a new inode, as export_serving would publish it.
    const again = path.join(sandbox.dir, "again.duckdb");
    fs.copyFileSync(original, again);
    fs.renameSync(again, sandbox.config.serving_duckdb_path);
    assert.equal(brazil_json(await raw_get(web.url, targets[0]!)).tables.balance.rows[0]!.production, 66300);
  });
});
