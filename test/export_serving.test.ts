import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { describe, test } from "node:test";
import { shipped_csv, write_revised_release, write_zip } from "./support/psd_zip.js";
import { make_sandbox, run_cli } from "./support/sandbox.js";
import { open_read_only } from "./support/serving_reader.js";

async function release_id(file: string): Promise<string> {
  const reader = await open_read_only(file);
  try {
    return String((await reader.rows("SELECT release_id FROM release"))[0]!.release_id);
  } finally {
    reader.close();
  }
}

describe("export_serving", () => {
  test("refuses to publish without a lakehouse, with one line saying what to do", async (t) => {
    const sandbox = make_sandbox();
    t.after(() => sandbox.cleanup());
    const result = await run_cli(["pipeline", "run", "export_serving"], sandbox.env);
    assert.equal(result.code, 1);
    assert.equal(result.stderr.trim(), `materia: export_serving: no lakehouse at ${sandbox.config.duckdb_path}: run transform first`);
    assert.equal(fs.existsSync(sandbox.config.serving_duckdb_path), false);
  });

  test("the publish gate keeps the current file when a release lost most of its rows; --force overrides", async (t) => {
    const sandbox = make_sandbox();
    t.after(() => sandbox.cleanup());
    assert.equal((await run_cli(["pipeline", "run", "all"], sandbox.env)).code, 0);
    const published = fs.readFileSync(sandbox.config.serving_duckdb_path);
    const first_release = await release_id(sandbox.config.serving_duckdb_path);

    // A release cut down to the 1960s: still a valid PSD file, but most of the history is gone.
    const lines = (await shipped_csv()).split("\r\n");
    const sixties = lines.filter((line, index) => index === 0 || /^\d+,"[^"]*",[A-Z0-9]+,"[^"]*",196\d,/.test(line));
    const gutted = path.join(sandbox.dir, "gutted.zip");
    await write_zip(gutted, { "psd_coffee.csv": sixties.join("\r\n") });
    const env = { ...sandbox.env, PSD_SOURCE_URL: `file://${gutted}` };

    const refused = await run_cli(["pipeline", "run", "all"], env);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr.trim(),
      /^materia: export_serving: publish gate refused release sha256-\w+: country_balance would shrink from \d+ to \d+ rows; .*--force overrides\)$/);
    assert.deepEqual(fs.readFileSync(sandbox.config.serving_duckdb_path), published, "the current file stays");
    assert.deepEqual(fs.readdirSync(sandbox.dir).filter((f) => f.startsWith("serving")), ["serving.duckdb"], "no temporary file left");

    const forced = await run_cli(["pipeline", "run", "export_serving", "--force"], env);
    assert.equal(forced.code, 0, forced.stderr);
    assert.notEqual(await release_id(sandbox.config.serving_duckdb_path), first_release);
  });

  test("a cycle that finds nothing new publishes nothing; --force or a new release does", async (t) => {
    const sandbox = make_sandbox();
    t.after(() => sandbox.cleanup());
    const serving = sandbox.config.serving_duckdb_path;
    assert.equal((await run_cli(["pipeline", "run", "all"], sandbox.env)).code, 0);
    const published = fs.statSync(serving);
    const bytes = fs.readFileSync(serving);
    const first_release = await release_id(serving);

    const again = await run_cli(["pipeline", "run", "all"], sandbox.env);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, /export_serving: ok in \d+ ms: nothing new: .*serving\.duckdb already holds release sha256-\w+ from these model versions/);
    assert.equal(fs.statSync(serving).ino, published.ino, "the same file: web processes keep it open, and their caches");
    assert.deepEqual(fs.readFileSync(serving), bytes);
    assert.deepEqual(fs.readdirSync(sandbox.dir).filter((f) => f.startsWith("serving")), ["serving.duckdb"], "no temporary file left");

    const forced = await run_cli(["pipeline", "run", "export_serving", "--force"], sandbox.env);
    assert.equal(forced.code, 0, forced.stderr);
    assert.match(forced.stdout, /published release/);
    const reexported = fs.statSync(serving);
    assert.notEqual(reexported.ino, published.ino, "--force re-exports");

    const zip = path.join(sandbox.dir, "revised.zip");
    await write_revised_release(zip, { country_code: "BR", market_year: 2023, attribute: "Production", value: 70000 });
    const revised = await run_cli(["pipeline", "run", "all"], { ...sandbox.env, PSD_SOURCE_URL: `file://${zip}` });
    assert.equal(revised.code, 0, revised.stderr);
    assert.notEqual(fs.statSync(serving).ino, reexported.ino, "a new release is published");
    assert.notEqual(await release_id(serving), first_release);
  });
});
