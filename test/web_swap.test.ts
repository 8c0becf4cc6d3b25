import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { write_revised_release } from "./support/psd_zip.js";
import { make_sandbox, run_cli, type Sandbox } from "./support/sandbox.js";
import { open_read_only, swap_in } from "./support/serving_reader.js";
import { start_web, type WebProcess } from "./support/web_process.js";

// export_serving replaces serving.duckdb with rename() while the web serves from it. Two real
// releases (the shipped one, and a revision with Brazil 2023 production at 70,000) are swapped
// in turn under a steady client load, the way export_serving does it.

const swaps = 30;
const clients = 4;
const brazil_2023 = "/api/country/BR?from=2023&to=2023";

interface Release {
  file: string;
  release_id: string;
  brazil_production_2023: number;
}

async function build(sandbox: Sandbox, env: NodeJS.ProcessEnv, keep_as: string, brazil_production_2023: number): Promise<Release> {
  const result = await run_cli(["pipeline", "run", "all"], env);
  assert.equal(result.code, 0, result.stderr + result.stdout);
  const file = path.join(sandbox.dir, keep_as);
  fs.copyFileSync(sandbox.config.serving_duckdb_path, file);
  const reader = await open_read_only(file);
  try {
    const [row] = await reader.rows("SELECT release_id FROM release");
    return { file, release_id: String(row!.release_id), brazil_production_2023 };
  } finally {
    reader.close();
  }
}

async function brazil(web: WebProcess) {
  const response = await fetch(web.url + brazil_2023);
  const body = (await response.json()) as { release_id: string; tables: { balance: { rows: { production: number }[] } } };
  return { status: response.status, release_id: body.release_id, production: body.tables?.balance.rows[0]?.production };
}

/** Files the process still holds open although they were renamed over: replaced versions not closed. */
function deleted_files_held_open(pid: number): string[] {
  const fd_dir = `/proc/${pid}/fd`;
  return fs.readdirSync(fd_dir).map((fd) => {
    try {
      return fs.readlinkSync(path.join(fd_dir, fd));
    } catch {
      return "";
    }
  }).filter((target) => target.includes("serving") && target.endsWith("(deleted)"));
}

describe("swapping the serving file under load", () => {
  let sandbox: Sandbox;
  let first: Release;
  let revised: Release;
  let web: WebProcess;

  before(async () => {
    sandbox = make_sandbox({ LOG_LEVEL: "warn" });
    first = await build(sandbox, sandbox.env, "first.duckdb", 66300);
    const zip = path.join(sandbox.dir, "revised.zip");
    await write_revised_release(zip, { country_code: "BR", market_year: 2023, attribute: "Production", value: 70000 });
    revised = await build(sandbox, { ...sandbox.env, PSD_SOURCE_URL: `file://${zip}` }, "revised.duckdb", 70000);
    assert.notEqual(first.release_id, revised.release_id);
    swap_in(sandbox.config.serving_duckdb_path, first.file);
    web = await start_web(sandbox.env, "forked");
  });
  after(async () => {
    try {
      await web?.stop();
    } finally {
      sandbox.cleanup();
    }
  });

  test("a swap during load fails no request, and the first request after each swap sees the new release", async (t) => {
    let running = true;
    const failures: string[] = [];
    let requests = 0;
    const paths = [brazil_2023, "/", "/api/rankings?year=2023", "/country/BR", "/healthz", "/api/overview.csv"];
    const client = async (offset: number) => {
      for (let i = offset; running; i++) {
        const target = paths[i % paths.length]!;
        try {
          const response = await fetch(web.url + target);
          await response.arrayBuffer();
          requests++;
          if (response.status !== 200) failures.push(`${target}: ${response.status}`);
        } catch (error) {
          failures.push(`${target}: ${(error as Error).message}`);
        }
      }
    };
    const load = Array.from({ length: clients }, (_, index) => client(index));

    try {
      for (let swap = 1; swap <= swaps; swap++) {
        const release = swap % 2 === 1 ? revised : first;
        swap_in(sandbox.config.serving_duckdb_path, release.file);
        const seen = await brazil(web);
        assert.deepEqual(seen, { status: 200, release_id: release.release_id, production: release.brazil_production_2023 },
          `the first request after swap ${swap}`);
        await sleep(50);
      }
    } finally {
      running = false;
      await Promise.all(load);
    }

    t.diagnostic(`${requests} requests by ${clients} clients during ${swaps} swaps`);
    assert.deepEqual(failures, [], "no request failed");
    assert.ok(requests > swaps * clients, `the clients kept requesting during the swaps (${requests} requests)`);
    await brazil(web);
    assert.deepEqual(deleted_files_held_open(web.child.pid!), [], "every replaced file was closed, its disk space freed");
  });

  test("a serving file that cannot be opened leaves the last good one serving, with one log line", async () => {
    const before_bad = await brazil(web);
    const garbage = path.join(sandbox.dir, "garbage.duckdb");
    fs.writeFileSync(garbage, "this is not a DuckDB file ".repeat(1000));
    swap_in(sandbox.config.serving_duckdb_path, garbage);
    for (let i = 0; i < 5; i++) assert.deepEqual(await brazil(web), before_bad, "still the last good release");
    const health = (await (await fetch(web.url + "/healthz")).json()) as { serving: { release_id: string } };
    assert.equal(health.serving.release_id, before_bad.release_id);
    const complaints = web.output().split("\n").filter((line) => line.includes("cannot open the serving file"));
    assert.equal(complaints.length, 1, complaints.join("\n"));
    assert.match(complaints[0]!, /^<3>error: .*still serving the previous file/);

    swap_in(sandbox.config.serving_duckdb_path, revised.file);
    assert.equal((await brazil(web)).release_id, revised.release_id, "a good file is picked up again");
  });
});
