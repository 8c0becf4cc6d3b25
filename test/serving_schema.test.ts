import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { schema_mismatches, serving_schema, type ColumnRow } from "../lib/serving_schema.js";
import { balance_columns } from "../web/routes/balance.js";
import { make_sandbox, run_cli, type Sandbox } from "./support/sandbox.js";
import { alter_duckdb_file, altered_copy, open_read_only, swap_in } from "./support/serving_reader.js";
import { start_web, type WebProcess } from "./support/web_process.js";

// A serving file the pages cannot read (a column gone, a column of another type) is refused
// where it is opened, like an unreadable one, and export_serving never publishes one.

const drop_column = "ALTER TABLE country_balance DROP COLUMN stocks_to_use_pct";
const change_type = "ALTER TABLE country_balance ALTER COLUMN stocks_to_use_pct TYPE VARCHAR";

/** The columns of a file as the schema check reads them. */
function columns_of(schema: Record<string, Record<string, string>>): ColumnRow[] {
  return Object.entries(schema).flatMap(([table_name, columns]) =>
    Object.entries(columns).map(([column_name, data_type]) => ({ table_name, column_name, data_type })));
}

describe("the serving schema", () => {
  test("a file with every table and column the web reads fits, extra tables and columns included", () => {
    const extra = [{ table_name: "release", column_name: "source_file", data_type: "VARCHAR" },
      { table_name: "revisions", column_name: "note", data_type: "VARCHAR" }];
    assert.deepEqual(schema_mismatches([...columns_of(serving_schema), ...extra]), []);
  });

  test("a missing table, a missing column and a column of another type are each named", () => {
    const { rankings: _rankings, ...without_rankings } = serving_schema;
    const columns = columns_of(without_rankings)
      .filter((column) => !(column.table_name === "country_balance" && column.column_name === "stocks_to_use_pct"))
      .map((column) => column.table_name === "world_balance" && column.column_name === "market_year" ? { ...column, data_type: "VARCHAR" } : column);
    assert.deepEqual(schema_mismatches(columns), [
      "column world_balance.market_year is VARCHAR, not INTEGER",
      "column country_balance.stocks_to_use_pct is missing",
      "table rankings is missing",
    ]);
  });

  test("every column the balance pages select is in the schema", () => {
    for (const table of ["world_balance", "country_balance"] as const) {
      for (const column of balance_columns) assert.ok(Object.hasOwn(serving_schema[table], column.key), `${table}.${column.key}`);
    }
  });
});

describe("serving files that do not fit the schema", () => {
  let sandbox: Sandbox;
  let good: string;
  let good_release: string;

  before(async () => {
    sandbox = make_sandbox({ LOG_LEVEL: "warn" });
    const built = await run_cli(["pipeline", "run", "all"], sandbox.env);
    assert.equal(built.code, 0, built.stderr + built.stdout);
    good = path.join(sandbox.dir, "good.duckdb");
    fs.copyFileSync(sandbox.config.serving_duckdb_path, good);
    const reader = await open_read_only(good);
    good_release = String((await reader.rows("SELECT release_id FROM release"))[0]!.release_id);
    reader.close();
  });
  after(() => sandbox.cleanup());

  test("at start, a file without country_balance.stocks_to_use_pct gets 503 everywhere with the reason, and /healthz names it", async (t) => {
    const served = path.join(sandbox.dir, "start", "serving.duckdb");
    fs.mkdirSync(path.dirname(served));
    await altered_copy(good, served, [drop_column]);
    const web = await start_web({ ...sandbox.env, SERVING_DUCKDB_PATH: served }, "forked");
    t.after(() => web.stop());

    for (const address of ["/", "/country/BR", "/api/country/BR.csv", "/api/overview", "/rankings"]) {
      const reply = await fetch(web.url + address);
      const text = await reply.text();
      assert.equal(reply.status, 503, address);
      assert.match(text, /the serving file was refused .*column country_balance\.stocks_to_use_pct is missing/, address);
    }
    const health = await fetch(web.url + "/healthz");
    assert.equal(health.status, 503);
    const body = (await health.json()) as { status: string; refused: { ino: number; reason: string } };
    assert.equal(body.status, "unavailable");
    assert.equal(body.refused.ino, fs.statSync(served).ino);
    assert.match(body.refused.reason, /column country_balance\.stocks_to_use_pct is missing/);
    assert.equal(web.output().split("\n").filter((line) => line.includes("cannot open the serving file")).length, 1,
      "one log line, however many requests");
  });

  test("a file whose column changed type, swapped in live, is refused: the previous file keeps serving and /healthz names the refused one", async (t) => {
    const served = path.join(sandbox.dir, "swap", "serving.duckdb");
    fs.mkdirSync(path.dirname(served));
    fs.copyFileSync(good, served);
    const web = await start_web({ ...sandbox.env, SERVING_DUCKDB_PATH: served }, "forked");
    t.after(() => web.stop());
    assert.equal((await fetch(web.url + "/country/BR")).status, 200);

    const bad = await altered_copy(good, path.join(sandbox.dir, "retyped.duckdb"), [change_type]);
    swap_in(served, bad);
    for (const address of ["/country/BR", "/api/country/BR.csv", "/"]) {
      const reply = await fetch(web.url + address);
      await reply.arrayBuffer();
      assert.equal(reply.status, 200, `${address} is still served from the previous file`);
    }
    const health = await fetch(web.url + "/healthz");
    assert.equal(health.status, 200, "still serving");
    const body = (await health.json()) as { serving: { release_id: string }; refused: { ino: number; reason: string } };
    assert.equal(body.serving.release_id, good_release);
    assert.equal(body.refused.ino, fs.statSync(served).ino);
    assert.match(body.refused.reason, /column country_balance\.stocks_to_use_pct is VARCHAR, not DOUBLE/);
    assert.match(web.output(), /cannot open the serving file .*stocks_to_use_pct is VARCHAR, not DOUBLE; still serving the previous file/);

    swap_in(served, good);
    const healed = (await (await fetch(web.url + "/healthz")).json()) as { refused?: unknown };
    assert.equal(healed.refused, undefined, "a good file clears the report");
  });

  test("export_serving refuses a lakehouse whose country_balance lost a column the web reads, even with --force", async (t) => {
    const own = make_sandbox({ LOG_LEVEL: "warn" });
    t.after(() => own.cleanup());
    assert.equal((await run_cli(["pipeline", "run", "all"], own.env)).code, 0);
    const published = fs.readFileSync(own.config.serving_duckdb_path);

    // As if a model change dropped the column: the serving view now leaves it out.
    const lakehouse = await open_read_only(own.config.duckdb_path);
    const [view] = await lakehouse.rows("SELECT sql FROM duckdb_views() WHERE schema_name = 'serving' AND view_name = 'country_balance'");
    lakehouse.close();
    const narrowed = String(view!.sql).replace("CREATE VIEW", "CREATE OR REPLACE VIEW")
      .replace("SELECT *", "SELECT * EXCLUDE (stocks_to_use_pct)");
    assert.notEqual(narrowed, String(view!.sql));
    await alter_duckdb_file(own.config.duckdb_path, [narrowed]);

    for (const args of [["pipeline", "run", "export_serving"], ["pipeline", "run", "export_serving", "--force"]]) {
      const refused = await run_cli(args, own.env);
      assert.equal(refused.code, 1, args.join(" "));
      assert.match(refused.stderr.trim(),
        /^materia: export_serving: release sha256-\w+ does not fit the schema the web reads: column country_balance\.stocks_to_use_pct is missing \(keeping the current serving file\)$/);
      assert.deepEqual(fs.readFileSync(own.config.serving_duckdb_path), published, "the published file stays");
      assert.deepEqual(fs.readdirSync(own.dir).filter((f) => f.startsWith("serving")), ["serving.duckdb"], "no temporary file left");
    }
  });
});
