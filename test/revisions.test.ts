import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { read_current_release } from "../jobs/current_release.js";
import { start_http_server, serve_release, type TestServer } from "./support/http_server.js";
import { write_edited_release, type CellEdit } from "./support/psd_zip.js";
import { make_sandbox, run_cli, shipped_zip_path, type Sandbox } from "./support/sandbox.js";
import { get } from "./support/web_client.js";
import { start_web, type WebProcess } from "./support/web_process.js";
import { read_wide_csv } from "./support/wide_csv.js";

// Issue 12 end to end, on real SQLMesh and real files: an HTTP server stands in for USDA and
// serves release A (the shipped file), then B (A revised, with market year 2024 added), then B
// again, then A again; after each cycle the dashboard is read as a client would.

type Row = Record<string, unknown>;
interface Api {
  release_id: string;
  tables: Record<string, { rows: Row[]; notes?: string[]; marks?: Record<string, Record<string, { kind: string }>> }>;
}

/** serving column → USDA's wide file column: the independent source of the expected figures. */
const wide_columns: Record<string, string> = {
  production: "Production", arabica_production: "Arabica Production", robusta_production: "Robusta Production",
  other_production: "Other Production", beginning_stocks: "Beginning Stocks", imports: "Imports",
  total_supply: "Total Supply", exports: "Exports", domestic_consumption: "Domestic Consumption", ending_stocks: "Ending Stocks",
};

/** Release B's revisions of A (old values from the wide file). */
const revisions: (CellEdit & { measure: string; country: string; old: number })[] = [
  { country_code: "BR", country: "Brazil", market_year: 2023, attribute: "Production", measure: "production", value: 70_000, old: 66_300 },
  { country_code: "VM", country: "Vietnam", market_year: 2023, attribute: "Exports", measure: "exports", value: 24_000, old: 25_000 },
  { country_code: "CO", country: "Colombia", market_year: 2022, attribute: "Ending Stocks", measure: "ending_stocks", value: 999, old: 845 },
];

async function fetch_text(base: string, address: string): Promise<string> {
  const reply = await get(base, address);
  assert.equal(reply.status, 200, `${address}: ${reply.text.slice(0, 300)}`);
  return reply.text;
}
const api = async (base: string, address: string) => JSON.parse(await fetch_text(base, address)) as Api;
const rows_of = (reply: Api, table: string) => reply.tables[table]!.rows;
const key = (row: Row) => `${row.country_code ?? "world"} ${row.market_year} ${row.measure}`;

/** The upstream: serves one release at a time, with its ETag, as PSD Online does. */
class Upstream {
  served = { file: shipped_zip_path, etag: '"release-a"', last_modified: "Thu, 10 Oct 2024 12:00:00 GMT" };
  constructor(readonly server: TestServer) {}
  static async start(): Promise<Upstream> {
    let upstream: Upstream | undefined;
    const server = await start_http_server((request, response) => {
      const { file, etag, last_modified } = upstream!.served;
      serve_release(file, etag, last_modified)(request, response);
    });
    upstream = new Upstream(server);
    return upstream;
  }
}

describe("what changed between releases, end to end", () => {
  let sandbox: Sandbox;
  let upstream: Upstream;
  let web: WebProcess;
  let release_b: string;
  const release_a = { file: shipped_zip_path, etag: '"release-a"', last_modified: "Thu, 10 Oct 2024 12:00:00 GMT" };
  const wide = read_wide_csv();
  const wide_value = (country: string, year: number, measure: string) =>
    wide.find((row) => row.country === country && row.year === year)!.values[wide_columns[measure]!]!;

  const cycle = async () => {
    const result = await run_cli(["pipeline", "run", "all"], sandbox.env);
    assert.equal(result.code, 0, result.stderr + result.stdout.slice(-3000));
    return result;
  };

  before(async () => {
    upstream = await Upstream.start();
    sandbox = make_sandbox({ PSD_SOURCE_URL: upstream.server.url, LOG_LEVEL: "info" });
    release_b = path.join(sandbox.dir, "release_b.zip");
    await write_edited_release(release_b, { revisions, new_year: { from: 2023 } });
    await cycle();
    web = await start_web(sandbox.env, "standalone");
  });
  after(async () => {
    try {
      await web?.stop();
      await upstream?.server.close();
    } finally {
      sandbox?.cleanup();
    }
  });

  test("the first release published has nothing to compare with, and /changes says so", async () => {
    const changes = await api(web.url, "/api/changes");
    for (const table of ["revised", "new", "removed", "world"]) assert.deepEqual(rows_of(changes, table), [], table);
    assert.deepEqual(rows_of(changes, "releases").map((row) => row.role), ["this release"]);
    assert.match(await fetch_text(web.url, "/changes"), /is the first release published here/);
  });

  test("the EU's 2002 and the UK's 2016 imports have no year-on-year change, and those years are marked as breaks", async () => {
    for (const [year, code, share] of [[2002, "E4", "47.3"], [2016, "UK", "3.3"]] as const) {
      const imports = await api(web.url, `/api/rankings?year=${year}&measure=imports&top=20`);
      const row = rows_of(imports, "imports").find((candidate) => candidate.country_code === code)!;
      assert.equal(row.change_vs_previous_year, null, `${code} ${year}`);
      assert.equal(row.change_vs_previous_year_pct, null);
      assert.match(imports.tables.imports!.notes!.join(" "), new RegExp(`${year}/\\d\\d: series break: .*\\(${share.replace(".", "\\.")} % of world imports\\)`));
    }
    const page = await fetch_text(web.url, "/rankings?year=2016&measure=imports&top=10");
    assert.match(page, /<td class="change marked mark-break" data-key="change_vs_previous_year" title="enters PSD&#39;s coffee data this year: no change to show" data-mark="break">— <span/);
    // Countries PSD has a row for the year before keep their change (Brazil, 2016 against 2015).
    const production = rows_of(await api(web.url, "/api/rankings?year=2016&measure=production&top=1"), "production");
    assert.equal(production[0]!.change_vs_previous_year, wide_value("Brazil", 2016, "production") - wide_value("Brazil", 2015, "production"));
  });

  test("the 1978 imports top 10 shows every country tied at the cut, and says so", async () => {
    const imports_1978 = wide.filter((row) => row.year === 1978 && row.values.Imports! > 0)
      .sort((a, b) => b.values.Imports! - a.values.Imports!);
    const cut_value = imports_1978[9]!.values.Imports!;
    const expected = imports_1978.filter((row) => row.values.Imports! >= cut_value).map((row) => row.country).sort();
    assert.ok(expected.length > 10, "the data has a tie at the 10th place");
    const reply = await api(web.url, "/api/rankings?year=1978&measure=imports&top=10");
    assert.deepEqual(rows_of(reply, "imports").map((row) => row.country_name).sort(), expected);
    assert.match(reply.tables.imports!.notes!.join(" "), new RegExp(`${expected.length} countries for a top 10: \\d+ are tied at rank \\d+`));
  });

  test("market years read 2023/24 in pages, charts and CSV; JSON keeps the integer and adds the label", async () => {
    const overview = await api(web.url, "/api/overview?from=2020&to=2023");
    assert.deepEqual(rows_of(overview, "balance").map((row) => [row.market_year, row.market_year_label]),
      [[2020, "2020/21"], [2021, "2021/22"], [2022, "2022/23"], [2023, "2023/24"]]);
    const csv = await fetch_text(web.url, "/api/overview.csv?table=balance&from=1998&to=1999");
    assert.match(csv, /^market_year,market_year_label,production,/);
    assert.match(csv, /\r\n1999,1999\/00,/);
    const page = await fetch_text(web.url, "/?from=2020&to=2023");
    assert.match(page, /Production 2023\/24<\/div>/);
    assert.match(page, /data-chart="[^"]*&#34;labels&#34;:\[&#34;2020\/21&#34;,&#34;2021\/22&#34;/);
  });

  test("after release B, /api/changes lists exactly the revised figures (old and new) and the added year as new", async () => {
    upstream.served = { file: release_b, etag: '"release-b"', last_modified: "Tue, 12 Nov 2024 12:00:00 GMT" };
    await cycle();
    const changes = await api(web.url, "/api/changes?top=1000");
    assert.equal(changes.release_id, "release-b");
    assert.deepEqual(rows_of(changes, "releases").map((row) => [row.role, row.release_id]),
      [["this release", "release-b"], ["compared with", "release-a"]]);

    const revised = rows_of(changes, "revised").map((row) => [key(row), row.previous_value, row.new_value, row.change]);
    const expected_revised = revisions.map((r) => [`${r.country_code} ${r.market_year} ${r.measure}`, r.old, r.value, r.value - r.old])
      .sort((a, b) => Math.abs(b[3] as number) - Math.abs(a[3] as number));
    assert.deepEqual(revised, expected_revised, "largest revision first");

    // Every non-zero figure of 2023 (as B has it) is new in 2024.
    const b_value = (country: string, measure: string) =>
      revisions.find((r) => r.country === country && r.market_year === 2023 && r.measure === measure)?.value ?? wide_value(country, 2023, measure);
    const expected_new = wide.filter((row) => row.year === 2023).flatMap((row) => Object.keys(wide_columns)
      .map((measure) => ({ country: row.country, measure, value: b_value(row.country, measure) }))
      .filter((cell) => cell.value !== 0));
    const added = rows_of(changes, "new");
    assert.equal(added.length, expected_new.length);
    for (const cell of expected_new) {
      const found = added.find((row) => row.country_name === cell.country && row.measure === cell.measure);
      assert.ok(found, `${cell.country} 2024 ${cell.measure} is new`);
      assert.deepEqual([found.market_year, found.previous_value, found.new_value], [2024, null, cell.value]);
    }
    assert.deepEqual(rows_of(changes, "removed"), []);
  });

  test("the world totals' revisions equal the sum of the country revisions", async () => {
    const changes = await api(web.url, "/api/changes?top=1000");
    const sums = new Map<string, number>();
    for (const row of [...rows_of(changes, "revised"), ...rows_of(changes, "new"), ...rows_of(changes, "removed")]) {
      const world_key = `${row.market_year} ${row.measure}`;
      const change = ((row.new_value as number | null) ?? 0) - ((row.previous_value as number | null) ?? 0);
      sums.set(world_key, (sums.get(world_key) ?? 0) + change);
    }
    const world = rows_of(changes, "world");
    assert.equal(world.length, sums.size);
    for (const row of world) {
      const change = row.revision === "new" ? row.new_value : row.change;
      assert.equal(change, sums.get(`${row.market_year} ${row.measure}`), `${row.market_year} ${row.measure}`);
    }
    const production_2023 = world.find((row) => row.market_year === 2023 && row.measure === "production")!;
    const world_a = wide.filter((row) => row.year === 2023).reduce((sum, row) => sum + row.values.Production!, 0);
    assert.deepEqual([production_2023.previous_value, production_2023.new_value], [world_a, world_a + 3_700]);
  });

  test("outside the What changed page, release A's figures appear nowhere", async () => {
    for (const r of revisions) {
      const country = rows_of(await api(web.url, `/api/country/${r.country_code}`), "balance");
      assert.equal(country.find((row) => row.market_year === r.market_year)![r.measure], r.value, `${r.country_code} ${r.market_year}`);
    }
    // Figures found nowhere else on these pages in either release (Colombia's old 845 is also its
    // 2023 beginning stocks, unrevised, so it is checked by cell above only).
    for (const [address, old] of [["/country/BR", "66,300"], ["/country/VM", "25,000"], ["/rankings?year=2023&top=100", "66,300"]]) {
      assert.ok(!(await fetch_text(web.url, address!)).includes(old!), `${address} does not show ${old}`);
    }
    const world_a = wide.filter((row) => row.year === 2023).reduce((sum, row) => sum + row.values.Production!, 0);
    const overview = await api(web.url, "/api/overview?from=2023&to=2023");
    assert.equal(rows_of(overview, "balance")[0]!.production, world_a + 3_700);
    assert.ok(!(await fetch_text(web.url, "/?to=2023")).includes(world_a.toLocaleString("en-US")), "the overview does not show A's world total");
    const ranking = rows_of(await api(web.url, "/api/rankings?year=2023&measure=production&top=1"), "production");
    assert.equal(ranking[0]!.value, 70_000);
  });

  test("the overview cards show this release's revision of the year; the country page marks revised and new figures", async () => {
    const overview = await api(web.url, "/api/overview?to=2023");
    const production = rows_of(overview, "latest").find((row) => row.measure === "Production")!;
    assert.deepEqual([production.revision, production.revision_kind], [3_700, "revised"]);
    const robusta = rows_of(overview, "latest").find((row) => row.measure === "Robusta")!;
    assert.deepEqual([robusta.revision, robusta.revision_kind], [0, "unrevised"]);
    assert.match(await fetch_text(web.url, "/?to=2023"), /<div class="card-revision" data-revision="revised">revised \+3,700 \(\+2\.2 %\) in this release<\/div>/);
    assert.match(await fetch_text(web.url, "/"), /data-revision="new">new in this release</, "2024/25 is new in this release");

    const brazil = await api(web.url, "/api/country/BR?from=2022&to=2024");
    assert.deepEqual(brazil.tables.balance!.marks!["1"]!.production, { kind: "revised", note: "revised in this release" });
    assert.equal(brazil.tables.balance!.marks!["2"]!.production!.kind, "new");
    assert.equal(brazil.tables.balance!.marks!["0"], undefined, "2022/23 was not revised");
    const page = await fetch_text(web.url, "/country/BR?from=2022&to=2024");
    assert.match(page, /data-key="production" title="revised in this release" data-mark="revised">70,000 /);
  });

  test("landing the same release again publishes no change", async () => {
    const addresses = ["/api/changes?top=1000", "/api/overview", "/api/country/BR", "/api/rankings?year=2024"];
    const before_rerun = await Promise.all(addresses.map((address) => fetch_text(web.url, address)));
    const rerun = await cycle();
    assert.match(rerun.stdout, /extract: up to date/);
    assert.match(rerun.stdout, /transform: ok in \d+ ms: up to date: release /, "the transform is skipped: nothing it reads changed");
    const after_rerun = await Promise.all(addresses.map((address) => fetch_text(web.url, address)));
    const without_export_time = (text: string) => text.replace(/"exported_at":"[^"]+"/, "");
    assert.deepEqual(after_rerun.map(without_export_time), before_rerun.map(without_export_time));
  });

  test("upstream going back to release A publishes A, with its revisions against B", async () => {
    upstream.served = release_a;
    const back = await cycle();
    assert.match(back.stdout, /release already landed/);
    assert.equal(read_current_release(sandbox.config.materia_state_dir)!.release_id, "release-a");
    const changes = await api(web.url, "/api/changes?top=1000");
    assert.equal(changes.release_id, "release-a");
    assert.deepEqual(rows_of(changes, "releases").map((row) => row.release_id), ["release-a", "release-b"]);
    assert.deepEqual(rows_of(changes, "revised").map((row) => [key(row), row.previous_value, row.new_value]).sort(),
      revisions.map((r) => [`${r.country_code} ${r.market_year} ${r.measure}`, r.value, r.old]).sort());
    assert.deepEqual(rows_of(changes, "new"), []);
    assert.ok(rows_of(changes, "removed").length > 0 && rows_of(changes, "removed").every((row) => row.market_year === 2024),
      "2024 is gone again");
    const brazil = rows_of(await api(web.url, "/api/country/BR"), "balance");
    assert.deepEqual([brazil.at(-1)!.market_year, brazil.at(-1)!.production], [2023, 66_300]);
    assert.equal(fs.readdirSync(path.join(sandbox.config.landing_dir, "psd"), { recursive: true })
      .filter((name) => String(name).endsWith(".csv.gzip")).length, 2, "nothing new landed");
  });

  test("bad filters on /changes are refused with a message naming them", async () => {
    const cases: [string, number, RegExp][] = [
      ["/api/changes?measure=yield", 400, /measure must be one of production, arabica_production/],
      ["/api/changes?country=XX", 404, /no country with code XX/],
      ["/api/changes?year=1800", 400, /year must be between 1960 and 2023/],
      ["/api/changes?top=5000", 400, /top must be a whole number from 1 to 1000/],
      ["/api/changes.csv?table=secrets", 400, /table must be one of revised, new, removed, world, releases/],
    ];
    for (const [address, status, message] of cases) {
      const reply = await get(web.url, address);
      assert.equal(reply.status, status, address);
      assert.match(reply.text, message, address);
    }
    const filtered = await api(web.url, "/api/changes?measure=production&country=BR&year=2023");
    assert.deepEqual(rows_of(filtered, "revised").map(key), ["BR 2023 production"]);
    assert.deepEqual(rows_of(filtered, "world"), [], "no world totals for one country");
  });
});
