import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { publish_gate_refusals } from "../jobs/export_serving/publish_gate.js";
import { check_psd_header, etag_file_stem, landing_path, PSD_CSV_HEADER } from "../jobs/extract/psd_format.js";
import { newest_release } from "../jobs/landing.js";
import { failure_line } from "../jobs/transform/transform.js";
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
  test("transform reads the release landed last", () => {
    const releases = [{ path: "/l/a", etag_stem: "a", mtime_ms: 2 }, { path: "/l/b", etag_stem: "b", mtime_ms: 3 },
      { path: "/l/c", etag_stem: "c", mtime_ms: 1 }];
    assert.equal(newest_release(releases)?.etag_stem, "b");
    assert.equal(newest_release([]), undefined);
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
