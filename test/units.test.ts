import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { publish_gate_refusals } from "../jobs/export_serving/publish_gate.js";
import { check_psd_header, etag_file_stem, landing_path, PSD_CSV_HEADER } from "../jobs/extract/psd_format.js";
import { next_current_release } from "../jobs/current_release.js";
import { failure_line, release_replaced } from "../jobs/transform/transform.js";
import { format_line } from "../lib/log.js";
import { cache_key, serving_version } from "../web/pages.js";

describe("publish gate", () => {
  test("publishes a first release and one that grew or shrank a little", () => {
    assert.deepEqual(publish_gate_refusals({ world_balance: 64 }, undefined), []);
    assert.deepEqual(publish_gate_refusals({ world_balance: 40 }, { world_balance: 64 }), []);
  });
  test("refuses an empty table, one that lost more than half its rows, and one that disappeared", () => {
    assert.deepEqual(publish_gate_refusals({ release: 0, rankings: 100, world_balance: 64 }, { rankings: 201, world_balance: 64, country_balance: 9 }), [
      "release is empty", "rankings would shrink from 201 to 100 rows", "country_balance would disappear"]);
  });
  test("publishes a release that revised nothing, and one that revised less than the last", () => {
    assert.deepEqual(publish_gate_refusals({ world_balance: 64, revisions: 0, world_revisions: 2 },
      { world_balance: 64, revisions: 900, world_revisions: 40 }), []);
    assert.deepEqual(publish_gate_refusals({ world_balance: 64 }, { world_balance: 64, revisions: 900 }), ["revisions would disappear"]);
  });
});

describe("PSD format", () => {
  test("accepts USDA's header with BOM, quotes and CRLF; refuses another", () => {
    check_psd_header(`\uFEFF"${PSD_CSV_HEADER.replaceAll(",", '","')}"\r`);
    assert.throws(() => check_psd_header("Country,Year"), /header is not PSD's: got "Country,Year"/);
  });
  test("an ETag becomes a safe file name, and the release date picks year and month in UTC", () => {
    assert.equal(etag_file_stem('W/"5f3a-1b2c/d"'), "5f3a-1b2c_d");
    assert.equal(etag_file_stem('"..hidden"'), "_hidden");
    assert.throws(() => etag_file_stem('""'), /unusable ETag/);
    assert.equal(landing_path("/l", new Date("2024-12-31T23:30:00-05:00"), '"e1"'), "/l/psd/2025/01/e1.csv.gzip");
  });
});

describe("the current release and the one it replaces", () => {
  const now = new Date("2024-11-12T08:30:00Z");
  const oct = { etag: '"oct"', release_id: "oct", file: "psd/2024/10/oct.csv.gzip" };
  const nov = { etag: '"nov"', release_id: "nov", file: "psd/2024/11/nov.csv.gzip" };
  test("the pointer moves to whatever upstream serves, an older release included, and stays on a repeat", () => {
    assert.deepEqual(next_current_release(undefined, oct, now), { ...oct, since: now.toISOString() });
    const on_nov = { ...nov, since: "2024-11-01T00:00:00.000Z" };
    assert.equal(next_current_release(on_nov, nov, now), undefined, "the same release again: no write");
    assert.deepEqual(next_current_release(on_nov, oct, now), { ...oct, since: now.toISOString() }, "back to October");
  });
  test("a new release replaces the one built; a rerun keeps the pair; the first build replaces none", () => {
    const cases: [current: string, built: Parameters<typeof release_replaced>[1], replaced: string][] = [
      ["nov", undefined, ""],
      ["nov", { release_id: "oct", previous_release_id: "sep" }, "oct"],
      ["nov", { release_id: "nov", previous_release_id: "oct" }, "oct"],
      ["oct", { release_id: "nov", previous_release_id: "oct" }, "nov"],
      ["nov", { release_id: "nov", previous_release_id: null }, ""],
    ];
    for (const [current, built, replaced] of cases) assert.equal(release_replaced(current, built), replaced, `${current} over ${built?.release_id}`);
  });
});

describe("SQLMesh failure line", () => {
  test("names the error, the failed model and the audit", () => {
    const output = [
      "[1/1] foundation.psd_fact [full refresh]", "**Failed models**", '* `"lakehouse"."foundation"."psd_fact"`', "```",
      "'accepted_range' audit error: 1 row failed", "Audit arguments", "Error: Plan application failed.",
    ].join("\n");
    assert.equal(failure_line(output),
      "Error: Plan application failed: lakehouse.foundation.psd_fact: 'accepted_range' audit error: 1 row failed");
    assert.equal(failure_line("starting\nError: Invalid config"), "Error: Invalid config");
  });
});

describe("log lines for journald", () => {
  test("carry the syslog priority and stay one line, cut at the bound", () => {
    assert.equal(format_line("error", "boom\nat x", {}), "<3>error: boom\\nat x");
    assert.equal(format_line("warn", "w", { job: "extract" }), '<4>warn: w {"job":"extract"}');
    assert.match(format_line("info", "x".repeat(100_000), {}), /^<6>info: x+…\[cut\]$/);
  });
});

describe("page contract", () => {
  const version = serving_version({ dev: 2049, ino: 11 }, { release_id: "r1", exported_at: "2026-11-25T10:00:00.000Z" });
  test("a cache key does not depend on the order of the params", () => {
    assert.equal(cache_key(version, "country", "html", { units: "bags", code: "BR", from: 1960, to: 2023 }),
      cache_key(version, "country", "html", { to: 2023, from: 1960, code: "BR", units: "bags" }));
  });
  test("a cache key differs by release, re-export, file, page, representation and every param", () => {
    const params = { units: "bags", code: "BR", from: 1960, to: 2023 } as const;
    const keys = [
      cache_key(version, "country", "html", params),
      cache_key(serving_version({ dev: 2049, ino: 11 }, { release_id: "r2", exported_at: "2026-11-25T10:00:00.000Z" }), "country", "html", params),
      cache_key(serving_version({ dev: 2049, ino: 11 }, { release_id: "r1", exported_at: "2026-11-25T11:00:00.000Z" }), "country", "html", params),
      cache_key(serving_version({ dev: 2049, ino: 12 }, { release_id: "r1", exported_at: "2026-11-25T10:00:00.000Z" }), "country", "html", params),
      cache_key(version, "overview", "html", params),
      cache_key(version, "country", "json", params),
      cache_key(version, "country", "csv:balance", params),
      cache_key(version, "country", "html", { ...params, units: "tonnes" }),
      cache_key(version, "country", "html", { ...params, code: "CO" }),
      cache_key(version, "country", "html", { ...params, from: 1961 }),
      cache_key(version, "country", "html", { ...params, to: 2022 }),
      cache_key(version, "country", "html", { ...params, to: "2023" }),
    ];
    assert.equal(new Set(keys).size, keys.length);
  });
});
