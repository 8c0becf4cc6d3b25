import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { temporary_serving_path } from "../jobs/export_serving/export_serving.js";
import { write_revised_release } from "./support/psd_zip.js";
import { cli_path, list_files, make_sandbox, run_cli, type Sandbox } from "./support/sandbox.js";
import { open_read_only } from "./support/serving_reader.js";
import { world_totals } from "./support/wide_csv.js";

async function serving_rows(sandbox: Sandbox, sql: string, values: Record<string, string | number> = {}) {
  const reader = await open_read_only(sandbox.config.serving_duckdb_path);
  try {
    return await reader.rows(sql, values);
  } finally {
    reader.close();
  }
}

async function run_ok(args: string[], env: NodeJS.ProcessEnv) {
  const result = await run_cli(args, env);
  assert.equal(result.code, 0, `materia ${args.join(" ")} failed: ${result.stderr}`);
  return result;
}

const brazil_2023 = "SELECT production, arabica_production FROM country_balance WHERE country_code = 'BR' AND market_year = 2023";

describe("the pipeline on the real PSD data", () => {
  let sandbox: Sandbox;
  before(async () => {
    sandbox = make_sandbox();
    await run_ok(["pipeline", "run", "all"], sandbox.env);
  });
  after(() => sandbox.cleanup());

  test("serving says Brazil 2023 produced 66,300 thousand bags, 44,900 of them arabica", async () => {
    assert.deepEqual(await serving_rows(sandbox, brazil_2023), [{ production: 66300, arabica_production: 44900 }]);
  });

  test("world totals equal the sums of USDA's wide file, every year and measure", async () => {
    const measures: Record<string, string> = {
      production: "Production", arabica_production: "Arabica Production", robusta_production: "Robusta Production",
      imports: "Imports", exports: "Exports", domestic_consumption: "Domestic Consumption",
      ending_stocks: "Ending Stocks", beginning_stocks: "Beginning Stocks", total_supply: "Total Supply",
    };
    const rows = await serving_rows(sandbox, `SELECT market_year, ${Object.keys(measures).join(", ")} FROM world_balance ORDER BY market_year`);
    assert.equal(rows.length, 64);
    for (const [measure, column] of Object.entries(measures)) {
      const expected = world_totals(column);
      for (const row of rows) {
        assert.equal(row[measure], expected.get(row.market_year as number), `${measure} in ${row.market_year}`);
      }
    }
  });

  test("the serving file holds only tables in main, a release row and when it was exported", async () => {
    const tables = await serving_rows(sandbox,
      "SELECT table_schema, table_name, table_type FROM information_schema.tables ORDER BY table_name");
    assert.deepEqual(tables.map((t) => `${t.table_schema}.${t.table_name}:${t.table_type}`), [
      "main.country_balance:BASE TABLE", "main.export_info:BASE TABLE", "main.rankings:BASE TABLE",
      "main.release:BASE TABLE", "main.revisions:BASE TABLE", "main.series_breaks:BASE TABLE",
      "main.world_balance:BASE TABLE", "main.world_revisions:BASE TABLE"]);
    const [release] = await serving_rows(sandbox, "SELECT release_id, row_count, country_count, market_year_last FROM release");
    assert.match(String(release!.release_id), /^sha256-[0-9a-f]{32}$/);
    assert.equal(release!.row_count, 77406);
    assert.equal(release!.market_year_last, 2023);
    const [info] = await serving_rows(sandbox, "SELECT release_id FROM export_info");
    assert.equal(info!.release_id, release!.release_id);
  });

  test("rankings put Brazil first in 2023 production with its share of the world", async () => {
    const [top] = await serving_rows(sandbox,
      "SELECT country_code, rank, share_of_world_pct FROM rankings WHERE market_year = 2023 AND measure = 'production' ORDER BY rank LIMIT 1");
    assert.deepEqual(top, { country_code: "BR", rank: 1, share_of_world_pct: Math.round((66300 / world_totals("Production").get(2023)!) * 10000) / 100 });
  });

  test("a reader holding the old file keeps reading it, unharmed, while a revised release is published", async () => {
    const reader = await open_read_only(sandbox.config.serving_duckdb_path);
    try {
      const revised = path.join(sandbox.dir, "revised.zip");
      await write_revised_release(revised, { country_code: "BR", market_year: 2023, attribute: "Production", value: 70000 });
      const env = { ...sandbox.env, PSD_SOURCE_URL: `file://${revised}` };
      await run_ok(["pipeline", "run", "all"], env);

      assert.equal(list_files(path.join(sandbox.config.landing_dir, "psd")).length, 2, "both releases stay landed");
      assert.deepEqual(await serving_rows(sandbox, brazil_2023), [{ production: 70000, arabica_production: 44900 }]);
      assert.deepEqual(await reader.rows(brazil_2023), [{ production: 66300, arabica_production: 44900 }],
        "the old file, still open, still answers with the old release");
    } finally {
      reader.close();
    }
  });

  test("kill -9 of an export midway leaves the published file intact, and the next export cleans up", async () => {
    const published = fs.readFileSync(sandbox.config.serving_duckdb_path);
    const temporary = temporary_serving_path(sandbox.config.serving_duckdb_path);
    let caught_midway = false;
    for (let attempt = 0; attempt < 20 && !caught_midway; attempt++) {
      // --force: the lakehouse holds what is published, and an unforced export would publish nothing.
      const exporter = spawn(process.execPath, [cli_path, "pipeline", "run", "export_serving", "--force"], { env: sandbox.env, stdio: "ignore" });
      const exited = new Promise((resolve) => exporter.once("exit", resolve));
      // Kill the moment the temporary file exists: the export is then between its start and the rename.
      while (exporter.exitCode === null && !fs.existsSync(temporary)) await sleep(1);
      exporter.kill("SIGKILL");
      await exited;
      caught_midway = fs.existsSync(temporary);
      assert.deepEqual(fs.readFileSync(sandbox.config.serving_duckdb_path), published, "the published file is untouched");
    }
    assert.ok(caught_midway, "an export was killed while its temporary file existed");
    assert.deepEqual(await serving_rows(sandbox, brazil_2023), [{ production: 70000, arabica_production: 44900 }]);
    // The killed run's lock names a dead pid: the next run takes it over.
    await run_ok(["pipeline", "run", "export_serving"], sandbox.env);
    assert.equal(fs.existsSync(temporary), false, "the stale temporary file is gone");
    assert.deepEqual(await serving_rows(sandbox, brazil_2023), [{ production: 70000, arabica_production: 44900 }]);
  });
});
