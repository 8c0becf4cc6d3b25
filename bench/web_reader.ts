import fs from "node:fs";
import path from "node:path";
import { load_config } from "../config/load.js";
import { write_revised_release } from "../test/support/psd_zip.js";
import { run_cli } from "../test/support/sandbox.js";
import { start_web } from "../test/support/web_process.js";
import { load_catalog, type Catalog } from "../web/catalog.js";
import { ServingReader } from "../web/serving.js";
import { load, type Load } from "./load.js";
import { figure, sample, seconds_of, side_by_side, type Figure } from "./stats.js";
import type { BenchContext } from "./workspace.js";

const OVERVIEW = "/api/overview";
const COUNTRY = "/api/country/BR";

/** 1–3: the reader's cost (swap detection on vs off), a page after a swap against a cached one, and swaps under load. */
export async function bench_web_reader(context: BenchContext): Promise<Figure[]> {
  const duration_s = context.quick ? 1 : 8;
  const runs = context.quick ? 1 : 3;
  const env = { ...context.workspace.env, LOG_LEVEL: "warn" };
  const with_check = await start_web({ ...env, WEB_SWAP_CHECK: "on" }, "forked");
  const without_check = await start_web({ ...env, WEB_SWAP_CHECK: "off" }, "forked");
  const figures: Figure[] = [];
  try {
    for (const [id, route] of [["1a", OVERVIEW], ["1b", COUNTRY]] as const) {
      const loads = { on: [] as Load[], off: [] as Load[] };
      await side_by_side(runs,
        async () => (loads.on.push(await load(with_check.url + route, { duration_s })), 0),
        async () => (loads.off.push(await load(without_check.url + route, { duration_s })), 0));
      figures.push(figure(id, `${route} req/s, inode-swap check on vs off`,
        sample(loads.on.map((l) => l.requests_per_s), "req/s"), sample(loads.off.map((l) => l.requests_per_s), "req/s"),
        "≥ 0.97", (ratio) => ratio >= 0.97));
      figures.push(figure(`${id}′`, `${route} p99 latency, check on vs off (p50 ${sample(loads.on.map((l) => l.latency_ms_p50), "ms").median} vs ${sample(loads.off.map((l) => l.latency_ms_p50), "ms").median} ms)`,
        sample(loads.on.map((l) => l.latency_ms_p99), "ms"), sample(loads.off.map((l) => l.latency_ms_p99), "ms"), "informational"));
    }
  } finally {
    await with_check.stop();
    await without_check.stop();
  }
  figures.push(...await cold_vs_warm(context, context.quick ? 2 : 10));
  figures.push(...await swaps_under_load(context, duration_s, runs));
  return figures;
}

/**
 * 2. What the cache saves a reader: the first request after a swap (open the new file, smoke-test
 * it, query, render, compress) against the same request again, answered from the cache.
 */
async function cold_vs_warm(context: BenchContext, swaps: number): Promise<Figure[]> {
  const { workspace } = context;
  const served = path.join(workspace.dir, "cold", "serving.duckdb");
  fs.mkdirSync(path.dirname(served), { recursive: true });
  fs.copyFileSync(workspace.config.serving_duckdb_path, served);
  const web = await start_web({ ...workspace.env, LOG_LEVEL: "warn", SERVING_DUCKDB_PATH: served }, "forked");
  const request_ms = async (route: string) => 1000 * await seconds_of(async () => {
    const response = await fetch(web.url + route);
    await response.arrayBuffer();
    if (response.status !== 200) throw new Error(`${route} answered ${response.status}`);
  });
  const figures: Figure[] = [];
  try {
    for (const [id, route] of [["2a", "/country/BR"], ["2b", "/api/rankings?year=2023"]] as const) {
      const cold: number[] = [];
      const warm: number[] = [];
      for (let swap = 0; swap < swaps; swap++) {
        const incoming = `${served}.incoming`;
        fs.copyFileSync(workspace.config.serving_duckdb_path, incoming);
        fs.renameSync(incoming, served);
        cold.push(await request_ms(route));
        warm.push(await request_ms(route));
      }
      figures.push(figure(id, `${route} latency: first request after a swap (open, query, render, compress) vs cached`,
        sample(cold, "ms"), sample(warm, "ms"), "informational"));
    }
  } finally {
    await web.stop();
  }
  return figures;
}

/** 3. The serving file swapped every 200 ms under load: no failures, throughput kept, the next request sees the new release. */
async function swaps_under_load(context: BenchContext, duration_s: number, runs: number): Promise<Figure[]> {
  const { workspace } = context;
  const releases = await two_releases(context);
  const served = path.join(workspace.dir, "swapped", "serving.duckdb");
  fs.mkdirSync(path.dirname(served), { recursive: true });
  fs.copyFileSync(releases[0].file, served);
  const web = await start_web({ ...workspace.env, LOG_LEVEL: "warn", SERVING_DUCKDB_PATH: served }, "forked");
  let failed = 0;
  const requests_until_new: number[] = [];
  try {
    const swaps_max = Math.ceil((duration_s * 1000) / 200) + 1;
    const times = await side_by_side(runs,
      async () => {
        // Every swap's new file is copied before the load starts: as with export_serving, the
        // swap itself is one rename, and copying would steal CPU from the load generator.
        const incoming = Array.from({ length: swaps_max }, (_, index) => {
          const file = `${served}.incoming-${index}`;
          fs.copyFileSync(releases[(index + 1) % 2]!.file, file);
          return file;
        });
        let next = 0;
        let swapping = true;
        const swaps = (async () => {
          while (swapping && next < swaps_max) {
            await new Promise((resolve) => setTimeout(resolve, 200));
            if (!swapping) break;
            const release = releases[(next + 1) % 2]!;
            fs.renameSync(incoming[next++]!, served);
            // A probe client: how many requests until the new release shows (1 = the very next one).
            for (let attempt = 1; attempt <= 50; attempt++) {
              const body = await (await fetch(web.url + OVERVIEW)).json() as { release_id: string };
              if (body.release_id === release.id) {
                requests_until_new.push(attempt);
                break;
              }
            }
          }
        })();
        const result = await load(web.url + OVERVIEW, { duration_s });
        swapping = false;
        await swaps;
        for (const file of incoming) fs.rmSync(file, { force: true });
        failed += result.failed;
        return result.requests_per_s;
      },
      async () => (await load(web.url + OVERVIEW, { duration_s })).requests_per_s);
    return [
      figure("3a", `${OVERVIEW} req/s with a swap every 200 ms vs none (${failed} failed requests)`,
        sample(times.ours, "req/s"), sample(times.reference, "req/s"), "≥ 0.9, 0 failed", (ratio) => ratio >= 0.9 && failed === 0),
      figure("3b", `requests until a swapped-in release shows (${requests_until_new.length} swaps)`,
        sample(requests_until_new, "requests"), sample([1], "requests"), "1 (the next request)",
        () => requests_until_new.every((n) => n === 1)),
    ];
  } finally {
    await web.stop();
  }
}

/** The workspace's real serving file, and one built from a revised release, as files to swap between. */
async function two_releases(context: BenchContext) {
  const { workspace } = context;
  const first = path.join(workspace.dir, "release_a.duckdb");
  fs.copyFileSync(workspace.config.serving_duckdb_path, first);
  const revised_zip = path.join(workspace.dir, "revised.zip");
  await write_revised_release(revised_zip, { country_code: "BR", market_year: 2023, attribute: "Production", value: 70000 });
  const revised_env = { ...workspace.env, PSD_SOURCE_URL: `file://${revised_zip}`, SERVING_DUCKDB_PATH: path.join(workspace.dir, "release_b.duckdb") };
  const result = await run_cli(["pipeline", "run", "all"], revised_env);
  if (result.code !== 0) throw new Error(`the revised release failed: ${result.stderr}`);
  const id_of = async (file: string) => {
    const reader = new ServingReader<Catalog>({ path: file, query_concurrency_max: 1, query_queue_max: 1, query_timeout_ms: 10_000,
      swap_check: false, load_meta: load_catalog, describe_meta: (catalog) => catalog.release_id });
    try {
      return await reader.with_snapshot(async (snapshot) => snapshot.meta.release_id);
    } finally {
      await reader.close(5_000);
    }
  };
  const second = load_config(revised_env).serving_duckdb_path;
  return [{ file: first, id: await id_of(first) }, { file: second, id: await id_of(second) }] as const;
}
