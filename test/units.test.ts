import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { publish_gate_refusals } from "../jobs/export_serving/publish_gate.js";
import { check_psd_header, etag_file_stem, landing_path, PSD_CSV_HEADER } from "../jobs/extract/psd_format.js";
import { next_current_release } from "../jobs/current_release.js";
import { failure_line, release_replaced } from "../jobs/transform/transform.js";
import { format_status_report } from "../daemon/status_report.js";
import { status_text } from "../daemon/status_text.js";
import { format_age, judge_freshness, stale_at_ms } from "../lib/freshness.js";
import { format_line } from "../lib/log.js";
import { market_year_label } from "../web/market_year.js";
import { cache_key, serving_version } from "../web/pages.js";
import { break_note } from "../web/series_breaks.js";
import { matched_etag, negotiate_encoding } from "../web/prepared_response.js";
import { ResponseCache } from "../web/response_cache.js";

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
  const version = serving_version({ release_id: "r1", exported_at: "2026-11-25T10:00:00.000Z" });
  test("a cache key does not depend on the order of the params", () => {
    assert.equal(cache_key(version, "country", "html", { units: "bags", code: "BR", from: 1960, to: 2023 }),
      cache_key(version, "country", "html", { to: 2023, from: 1960, code: "BR", units: "bags" }));
  });
  test("a cache key differs by release, re-export, page, representation, every param and the stale-data banner", () => {
    const params = { units: "bags", code: "BR", from: 1960, to: 2023 } as const;
    const keys = [
      cache_key(version, "country", "html", params),
      cache_key(serving_version({ release_id: "r2", exported_at: "2026-11-25T10:00:00.000Z" }), "country", "html", params),
      cache_key(serving_version({ release_id: "r1", exported_at: "2026-11-25T11:00:00.000Z" }), "country", "html", params),
      cache_key(version, "overview", "html", params),
      cache_key(version, "country", "json", params),
      cache_key(version, "country", "csv:balance", params),
      cache_key(version, "country", "html", { ...params, units: "tonnes" }),
      cache_key(version, "country", "html", { ...params, code: "CO" }),
      cache_key(version, "country", "html", { ...params, from: 1961 }),
      cache_key(version, "country", "html", { ...params, to: 2022 }),
      cache_key(version, "country", "html", { ...params, to: "2023" }),
      cache_key(version, "country", "html", params, "The data pipeline last succeeded 5 h 3 min ago."),
      cache_key(version, "country", "html", params, "The data pipeline last succeeded 5 h 4 min ago."),
    ];
    assert.equal(new Set(keys).size, keys.length);
  });
});

describe("response cache", () => {
  const entry = (size_bytes: number, label = "") => ({ size_bytes, label });

  test("keeps entries up to its bound in bytes and evicts the least recently used first", async () => {
    const cache = new ResponseCache<{ size_bytes: number; label: string }>(100);
    cache.reset("v1");
    for (const key of ["a", "b", "c"]) await cache.get_or_compute("v1", key, async () => entry(30, key));
    assert.equal(cache.get("a")?.label, "a", "a is now the most recently used");
    await cache.get_or_compute("v1", "d", async () => entry(30, "d"));
    assert.equal(cache.get("b"), undefined, "b was the least recently used");
    assert.deepEqual(["a", "c", "d"].map((key) => cache.get(key)?.label), ["a", "c", "d"]);
    assert.equal(cache.stats().size_bytes, 90);
    await cache.get_or_compute("v1", "huge", async () => entry(101, "huge"));
    assert.equal(cache.get("huge"), undefined, "an entry larger than the bound is served but not kept");
    assert.equal(cache.stats().entries, 3, "and pushes nothing out");
  });

  test("a new version empties it, and a computation that started on the old one is not kept", async () => {
    const cache = new ResponseCache<{ size_bytes: number; label: string }>(100);
    cache.reset("v1");
    await cache.get_or_compute("v1", "a", async () => entry(10, "a"));
    let finish: (value: { size_bytes: number; label: string }) => void = () => {};
    const late = cache.get_or_compute("v1", "late", () => new Promise((resolve) => (finish = resolve)));
    cache.reset("v2");
    assert.deepEqual([cache.stats().entries, cache.stats().size_bytes], [0, 0]);
    finish(entry(10, "late"));
    assert.equal((await late).label, "late", "its waiters still get their answer");
    assert.equal(cache.get("late"), undefined);
    assert.equal(cache.stats().entries, 0);
  });

  test("concurrent requests for a missing key compute it once; a failure is not kept", async () => {
    const cache = new ResponseCache<{ size_bytes: number; label: string }>(100);
    cache.reset("v1");
    let computations = 0;
    const compute = async () => {
      computations++;
      await new Promise((resolve) => setTimeout(resolve, 10));
      return entry(10, "x");
    };
    const all = await Promise.all(Array.from({ length: 10 }, () => cache.get_or_compute("v1", "x", compute)));
    assert.equal(computations, 1);
    assert.deepEqual(new Set(all.map((e) => e.label)), new Set(["x"]));
    await assert.rejects(cache.get_or_compute("v1", "bad", async () => { throw new Error("query failed"); }), /query failed/);
    assert.equal((await cache.get_or_compute("v1", "bad", async () => entry(10, "retried"))).label, "retried");
  });
});

describe("content negotiation and validators", () => {
  test("the encoding follows the client's q-values, brotli first among equals, identity when nothing fits", () => {
    const cases: [string | undefined, string][] = [
      [undefined, "identity"], ["", "identity"], ["gzip, deflate, br, zstd", "br"], ["gzip", "gzip"], ["br;q=0.8, gzip", "gzip"],
      ["*", "br"], ["identity", "identity"], ["deflate", "identity"], ["*;q=0", "identity"], ["gzip;q=0, br;q=0", "identity"],
    ];
    for (const [header, expected] of cases) assert.equal(negotiate_encoding(header), expected, String(header));
  });
  test("If-None-Match matches any encoding's tag of the resource, weak or strong, and nothing else", () => {
    const etag = '"abc"';
    assert.equal(matched_etag('"abc-br"', etag), '"abc-br"');
    assert.equal(matched_etag('W/"abc-gz"', etag), '"abc-gz"');
    assert.equal(matched_etag('"zzz", "abc"', etag), '"abc"');
    assert.equal(matched_etag("*", etag), '"abc"');
    assert.equal(matched_etag('"abcd"', etag), undefined);
    assert.equal(matched_etag('"abc-xx"', etag), undefined);
    assert.equal(matched_etag(undefined, etag), undefined);
  });
});

describe("stale data (the dead-man's switch)", () => {
  const now_ms = Date.parse("2026-11-25T12:00:00.000Z");
  const ago = (seconds: number) => new Date(now_ms - seconds * 1000).toISOString();
  const stale_after_s = 11_400;

  test("fresh while a cycle succeeded or a publish happened within STALE_AFTER_S; stale past it, saying why", () => {
    const cases: [string | null, string | null, string | null][] = [
      [ago(60), ago(40 * 86_400), null],
      [ago(stale_after_s), ago(stale_after_s), null],
      [null, ago(3600), null],
      [ago(30 * 86_400), ago(600), null],
      [null, null, null],
      [ago(stale_after_s + 1), ago(40 * 86_400), "no pipeline cycle has succeeded for 3 h 10 min (STALE_AFTER_S=11400)"],
      [ago(5 * 86_400 + 7200), null, "no pipeline cycle has succeeded for 5 d 2 h (STALE_AFTER_S=11400)"],
      [null, ago(4 * 3600), "no pipeline cycle has succeeded, and the data was published 4 h ago (STALE_AFTER_S=11400)"],
    ];
    for (const [last_success_at, last_publish_at, reason] of cases) {
      const verdict = judge_freshness({ last_success_at, last_publish_at }, now_ms, stale_after_s);
      assert.equal(verdict.stale_reason, reason, JSON.stringify({ last_success_at, last_publish_at }));
    }
    const verdict = judge_freshness({ last_success_at: ago(90), last_publish_at: ago(7200) }, now_ms, stale_after_s);
    assert.deepEqual([verdict.last_success_age_s, verdict.last_publish_age_s], [90, 7200]);
  });

  test("the stale instant is the newer confirmation plus STALE_AFTER_S, just past the threshold", () => {
    const freshness = { last_success_at: ago(600), last_publish_at: ago(7200) };
    const at_ms = stale_at_ms(freshness, stale_after_s)!;
    assert.equal(judge_freshness(freshness, at_ms - 1, stale_after_s).stale_reason, null);
    assert.notEqual(judge_freshness(freshness, at_ms, stale_after_s).stale_reason, null);
    assert.equal(stale_at_ms({ last_success_at: null, last_publish_at: null }, stale_after_s), undefined);
  });

  test("ages read as an operator says them", () => {
    assert.deepEqual([0, 59, 60, 3599, 3600, 3660, 47 * 3600 + 59 * 60, 48 * 3600, 49 * 3600 + 600].map(format_age),
      ["0 s", "59 s", "1 min", "59 min", "1 h", "1 h 1 min", "47 h 59 min", "2 d", "2 d 1 h"]);
  });

  test("STATUS leads with the warning while stale, naming an instant rather than an age, and is plain when fresh", () => {
    const status = { pid: 1, commit: "abc", state: "backoff", current_job: null, next_run_at: "2026-11-25T12:10:00.000Z",
      last_error: "extract: HTTP 500", web_url: null, updated_at: ago(0) } as const;
    const last_success_at = "2026-11-25T08:40:00.000Z";
    const stale = judge_freshness({ last_success_at, last_publish_at: null }, now_ms, stale_after_s);
    const fresh = judge_freshness({ last_success_at: ago(60), last_publish_at: null }, now_ms, stale_after_s);
    const doing = status_text(status, "extract failure", fresh);
    assert.match(doing, /^backoff after extract failure, retry \d\d:\d\d:\d\d$/);
    const local = new Date(last_success_at);
    const since = `${local.getFullYear()}-${String(local.getMonth() + 1).padStart(2, "0")}-${String(local.getDate()).padStart(2, "0")} ${local.toTimeString().slice(0, 5)}`;
    assert.equal(status_text(status, "extract failure", stale), `STALE DATA (no successful cycle since ${since}); ${doing}`);
  });

  test("materia status shows both ages, and STALE with the reason", () => {
    const fresh = judge_freshness({ last_success_at: ago(300), last_publish_at: ago(7200) }, now_ms, stale_after_s);
    const report = format_status_report(undefined, false, fresh, []);
    assert.match(report, new RegExp(`^last successful cycle: ${ago(300)} \\(5 min ago\\)$`, "m"));
    assert.match(report, new RegExp(`^last publish: ${ago(7200)} \\(2 h ago\\)$`, "m"));
    assert.match(report, /^data: fresh$/m);
    const never = format_status_report(undefined, false, judge_freshness({ last_success_at: null, last_publish_at: null }, now_ms, stale_after_s), []);
    assert.match(never, /^last successful cycle: none recorded$/m);
    assert.match(never, /^last publish: none \(no serving file\)$/m);
    const stale = format_status_report(undefined, false, judge_freshness({ last_success_at: ago(86_400), last_publish_at: ago(86_400) }, now_ms, stale_after_s), []);
    assert.match(stale, /^data: STALE: no pipeline cycle has succeeded for 24 h \(STALE_AFTER_S=11400\)$/m);
  });
});

describe("market years and series breaks as the pages say them", () => {
  test("a market year is the season it starts: 2023/24, 1999/00", () => {
    assert.deepEqual([2023, 1999, 2009, 1960].map(market_year_label), ["2023/24", "1999/00", "2009/10", "1960/61"]);
  });
  test("a break year names each country once, with its largest share, largest first", () => {
    const entry = (country_code: string, country_name: string, measure: string, share_of_world_pct: number, event: "enters" | "leaves" = "enters") =>
      ({ market_year: 2002, measure, country_code, country_name, event, share_of_world_pct });
    assert.equal(break_note(2002, [entry("JA", "Japan", "imports", 7.67), entry("E4", "European Union", "domestic_consumption", 36.27),
      entry("E4", "European Union", "imports", 47.3), entry("YE", "Yemen", "exports", 1.2, "leaves")]),
    "2002/03: series break: European Union (47.3 % of world imports), Japan (7.7 % of world imports) enter PSD's coffee data; "
      + "Yemen (1.2 % of world exports) leaves PSD's coffee data. The change against the year before is the data's coverage, not the market's.");
  });
});
