import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import zlib from "node:zlib";
import { current_release_path, read_current_release } from "../jobs/current_release.js";
import { serve_release, start_http_server, type TestServer } from "./support/http_server.js";
import { shipped_csv, zip_buffer } from "./support/psd_zip.js";
import { list_files, make_sandbox, run_cli, shipped_zip_path, type Sandbox } from "./support/sandbox.js";

const ETAG = '"psd-2024-10-10T12:00:00"';
const LAST_MODIFIED = "Thu, 10 Oct 2024 12:00:00 GMT";

describe("extract from an HTTP server", () => {
  let server: TestServer;
  let sandbox: Sandbox;
  before(async () => {
    server = await start_http_server(serve_release(shipped_zip_path, ETAG, LAST_MODIFIED));
    sandbox = make_sandbox({ PSD_SOURCE_URL: "" });
    sandbox.env.PSD_SOURCE_URL = server.url;
  });
  after(async () => {
    await server.close();
    sandbox.cleanup();
  });

  test("a 200 with an ETag lands exactly one gzipped CSV at psd/{year}/{month}/{etag}.csv.gzip", async () => {
    const result = await run_cli(["pipeline", "run", "extract"], sandbox.env);
    assert.equal(result.code, 0, result.stderr);
    assert.deepEqual(list_files(sandbox.config.landing_dir), ["psd/2024/10/psd-2024-10-10T12_00_00.csv.gzip"]);
    const landed = zlib.gunzipSync(fs.readFileSync(path.join(sandbox.config.landing_dir, "psd/2024/10/psd-2024-10-10T12_00_00.csv.gzip")));
    assert.equal(landed.toString("utf8"), await shipped_csv());
  });

  test("a repeat sends If-None-Match, gets 304, says up to date and writes nothing", async () => {
    const before_files = list_files(sandbox.config.landing_dir);
    const before_mtime = fs.statSync(path.join(sandbox.config.landing_dir, before_files[0]!)).mtimeMs;
    const result = await run_cli(["pipeline", "run", "extract"], sandbox.env);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(server.requests.at(-1)!.if_none_match, ETAG);
    assert.match(result.stdout, /up to date/);
    assert.deepEqual(list_files(sandbox.config.landing_dir), before_files);
    assert.equal(fs.statSync(path.join(sandbox.config.landing_dir, before_files[0]!)).mtimeMs, before_mtime);
  });

  test("the release upstream serves is the current one, and a damaged pointer is replaced by the next extract", async () => {
    const pointer = read_current_release(sandbox.config.materia_state_dir)!;
    assert.deepEqual([pointer.etag, pointer.release_id, pointer.file], [ETAG, "psd-2024-10-10T12_00_00", "psd/2024/10/psd-2024-10-10T12_00_00.csv.gzip"]);
    fs.writeFileSync(current_release_path(sandbox.config.materia_state_dir), "{ cut short");
    const result = await run_cli(["pipeline", "run", "extract"], sandbox.env);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /warn: extract: ignoring the current-release pointer: .*current_release\.json is not readable JSON/);
    assert.equal(server.requests.at(-1)!.if_none_match, undefined, "an unconditional request");
    assert.match(result.stdout, /already landed/);
    assert.deepEqual(read_current_release(sandbox.config.materia_state_dir)!.file, pointer.file);
  });

  test("a server that ignores If-None-Match and sends the same ETag lands nothing new", async () => {
    fs.rmSync(path.join(sandbox.config.materia_state_dir, "current_release.json"));
    const before_files = list_files(sandbox.config.landing_dir);
    const result = await run_cli(["pipeline", "run", "extract"], sandbox.env);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /already landed/);
    assert.deepEqual(list_files(sandbox.config.landing_dir), before_files);
  });
});

describe("extract follows redirects, within EXTRACT_REDIRECTS_MAX", () => {
  test("a redirect to the release is followed and the release lands", async (t) => {
    const release = serve_release(shipped_zip_path, ETAG, LAST_MODIFIED);
    const server = await start_http_server((request, response) => {
      if (request.url === "/psdonline/downloads/psd_coffee_csv.zip") {
        response.writeHead(302, { location: "/mirror/psd_coffee_csv.zip" }).end();
      } else release(request, response);
    });
    const sandbox = make_sandbox({ PSD_SOURCE_URL: server.url });
    t.after(async () => {
      await server.close();
      sandbox.cleanup();
    });
    const result = await run_cli(["pipeline", "run", "extract"], sandbox.env);
    assert.equal(result.code, 0, result.stderr);
    assert.deepEqual(list_files(sandbox.config.landing_dir), ["psd/2024/10/psd-2024-10-10T12_00_00.csv.gzip"]);
  });
});

describe("extract from a file:// URL (the offline default)", () => {
  test("a zip that stores its CSV uncompressed lands it gzipped all the same", async (t) => {
    const sandbox = make_sandbox();
    t.after(() => sandbox.cleanup());
    const stored = path.join(sandbox.dir, "stored.zip");
    fs.writeFileSync(stored, await zip_buffer({ "psd_coffee.csv": await shipped_csv() }, { compress: false }));
    const result = await run_cli(["pipeline", "run", "extract"], { ...sandbox.env, PSD_SOURCE_URL: `file://${stored}` });
    assert.equal(result.code, 0, result.stderr);
    const [landed] = list_files(sandbox.config.landing_dir);
    assert.equal(zlib.gunzipSync(fs.readFileSync(path.join(sandbox.config.landing_dir, landed!))).toString("utf8"), await shipped_csv());
  });

  test("leftovers of a crashed extract are removed at the next start", async (t) => {
    const sandbox = make_sandbox();
    t.after(() => sandbox.cleanup());
    const half_landed = path.join(sandbox.config.landing_dir, "psd", ".incoming", "x.csv.gzip.123.tmp");
    const half_downloaded = path.join(sandbox.config.materia_state_dir, "downloads", "psd-123.zip");
    for (const file of [half_landed, half_downloaded]) {
      fs.mkdirSync(path.dirname(file), { recursive: true });
      fs.writeFileSync(file, "cut short by kill -9");
    }
    const result = await run_cli(["pipeline", "run", "extract"], sandbox.env);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(fs.existsSync(half_landed), false);
    assert.equal(fs.existsSync(half_downloaded), false);
    assert.equal(list_files(sandbox.config.landing_dir).length, 1, "only the landed release is left");
  });

  test("lands the shipped release under a content-derived ETag, then is up to date", async (t) => {
    const sandbox = make_sandbox();
    t.after(() => sandbox.cleanup());
    const first = await run_cli(["pipeline", "run", "extract"], sandbox.env);
    assert.equal(first.code, 0, first.stderr);
    const files = list_files(sandbox.config.landing_dir);
    assert.equal(files.length, 1);
    assert.match(files[0]!, /^psd\/\d{4}\/\d{2}\/sha256-[0-9a-f]{32}\.csv\.gzip$/);
    const second = await run_cli(["pipeline", "run", "extract"], sandbox.env);
    assert.equal(second.code, 0, second.stderr);
    assert.match(second.stdout, /up to date/);
    assert.deepEqual(list_files(sandbox.config.landing_dir), files);
  });
});

/** Each bad upstream: one line on stderr naming the problem, a non-zero exit, an empty landing dir. */
async function assert_refused(t: { after(fn: () => unknown): void }, handler: Parameters<typeof start_http_server>[0],
  expected: RegExp, settings: Record<string, string> = {}) {
  const server = await start_http_server(handler);
  const sandbox = make_sandbox({ ...settings, PSD_SOURCE_URL: server.url });
  t.after(async () => {
    await server.close();
    sandbox.cleanup();
  });
  const result = await run_cli(["pipeline", "run", "extract"], sandbox.env);
  assert.notEqual(result.code, 0);
  const error_lines = result.stderr.trim().split("\n");
  assert.equal(error_lines.length, 1, result.stderr);
  assert.match(error_lines[0]!, /^materia: extract: /);
  assert.match(error_lines[0]!, expected);
  assert.deepEqual(list_files(sandbox.config.landing_dir), []);
  assert.equal(fs.existsSync(path.join(sandbox.config.materia_state_dir, "current_release.json")), false);
}

function serve_body(body: Buffer): Parameters<typeof start_http_server>[0] {
  return (_request, response) => {
    response.writeHead(200, { etag: '"bad"', "content-length": body.length }).end(body);
  };
}

describe("extract refuses bad upstream data and lands nothing", () => {
  test("an HTTP 500", (t) => assert_refused(t, (_request, response) => {
    response.writeHead(500).end("boom");
  }, /HTTP 500/));

  test("a server that never answers, past EXTRACT_TIMEOUT_S", (t) => assert_refused(t, () => {
    // Hold the request open: the client's own bound must end it.
  }, /timed out after EXTRACT_TIMEOUT_S=1 s/, { EXTRACT_TIMEOUT_S: "1" }));

  test("a truncated body", (t) => assert_refused(t, (_request, response) => {
    const body = fs.readFileSync(shipped_zip_path);
    response.writeHead(200, { etag: '"cut"', "content-length": body.length });
    response.write(body.subarray(0, 100_000));
    setTimeout(() => response.socket?.destroy(), 50);
  }, /broke off|truncated/));

  test("a body that is not a zip", (t) => assert_refused(t, serve_body(Buffer.from("<html>maintenance</html>")),
    /not a readable zip/));

  test("a zip without psd_coffee.csv", async (t) => assert_refused(t,
    serve_body(await zip_buffer({ "readme.txt": "nothing here" })), /zip holds no psd_coffee\.csv \(found: readme\.txt\)/));

  test("a CSV whose header is not PSD's", async (t) => assert_refused(t,
    serve_body(await zip_buffer({ "psd_coffee.csv": "Country,Year,Production\r\nBrazil,2023,66300\r\n" })),
    /header is not PSD's: got "Country,Year,Production"/));

  test("a zip whose compressed data was damaged in transit (its CRC no longer matches)", async (t) => {
    const zip = await zip_buffer({ "psd_coffee.csv": await shipped_csv() });
    const middle = Math.floor(zip.length / 2);
    zip.writeUInt32BE((zip.readUInt32BE(middle) ^ 0xffffffff) >>> 0, middle);
    await assert_refused(t, serve_body(zip), /not a readable zip file: .*(check|invalid|incorrect)/i);
  });

  test("a redirect loop", (t) => assert_refused(t, (_request, response) => {
    response.writeHead(301, { location: "/again" }).end();
  }, /redirects more than EXTRACT_REDIRECTS_MAX=5 times/));

  test("a download over EXTRACT_SIZE_BYTES_MAX", (t) => assert_refused(t, serve_body(fs.readFileSync(shipped_zip_path)),
    /EXTRACT_SIZE_BYTES_MAX=100000/, { EXTRACT_SIZE_BYTES_MAX: "100000" }));
});
