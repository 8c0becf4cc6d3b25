import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { DuckDBInstance } from "@duckdb/node-api";
import { load_config } from "../config/load.js";
import { configure_log } from "../lib/log.js";
import { repo_root } from "../lib/paths.js";
import { bench_daemon } from "./daemon_bench.js";
import { format_soak, soak } from "./soak.js";
import { bench_export_vs_ctas } from "./export_vs_ctas.js";
import { bench_extract_vs_curl } from "./extract_vs_curl.js";
import { bench_follow } from "./follow_bench.js";
import { bench_handover } from "./handover.js";
import { bench_web_limit } from "./web_limit.js";
import { bench_transform_releases } from "./transform_releases.js";
import { bench_web_reader } from "./web_reader.js";
import { format_table, type Figure } from "./stats.js";
import { prepare_workspace, type BenchContext } from "./workspace.js";

const benches: Record<string, (context: BenchContext) => Promise<Figure[]>> = {
  export: bench_export_vs_ctas,
  extract: bench_extract_vs_curl,
  web: bench_web_reader,
  pages: bench_web_limit,
  daemon: bench_daemon,
  transform: bench_transform_releases,
  handover: bench_handover,
  follow: bench_follow,
};

const { values } = parseArgs({
  options: {
    quick: { type: "boolean", default: false },
    only: { type: "string", multiple: true },
    // The soak runs alone: `--soak MINUTES` (with --quick: a 3 s pipeline interval instead of 15 s).
    soak: { type: "string" },
  },
});
if (values.soak !== undefined) {
  const minutes = Number(values.soak);
  if (!(minutes >= 1 && minutes <= 24 * 60)) {
    console.error(`bench: --soak takes the run's length in minutes, 1 to 1440 (got "${values.soak}")`);
    process.exit(2);
  }
  await run_soak(minutes, values.quick);
  process.exit(0);
}
const selected = values.only ?? Object.keys(benches);
for (const name of selected) {
  if (!(name in benches)) throw new Error(`unknown bench ${name}: expected one of ${Object.keys(benches).join(", ")}`);
}

async function versions() {
  const instance = await DuckDBInstance.create(":memory:");
  const connection = await instance.connect();
  const duckdb = String((await connection.runAndReadAll("SELECT version() AS v")).getRowObjectsJS()[0]!.v);
  connection.closeSync();
  instance.closeSync();
  const sqlmesh = execFileSync(load_config().sqlmesh_bin, ["--version"], { encoding: "utf8", timeout: 60_000 }).trim();
  return { node: process.version, duckdb, sqlmesh };
}

configure_log({ level: "warn", line_bytes_max: 16 * 1024 });
const workspace = await prepare_workspace();
try {
  const context: BenchContext = { quick: values.quick, workspace };
  const figures: Figure[] = [];
  for (const name of selected) {
    console.error(`bench: ${name}…`);
    figures.push(...(await benches[name]!(context)));
  }
  console.log(format_table(figures));
  const results = {
    measured_at: new Date().toISOString(),
    quick: values.quick,
    machine: { cpus: os.cpus().length, cpu_model: os.cpus()[0]?.model, memory_bytes: os.totalmem(), kernel: os.release() },
    versions: await versions(),
    figures,
  };
  const results_dir = path.join(repo_root, "bench", "results");
  fs.mkdirSync(results_dir, { recursive: true });
  // A quick run (the one `npm test` makes) never overwrites the numbers of a full one.
  const results_file = path.join(results_dir, values.quick ? "latest-quick.json" : "latest.json");
  fs.writeFileSync(results_file, JSON.stringify(results, null, 2) + "\n");
  console.error(`bench: results in ${results_file}`);
} finally {
  workspace.cleanup();
}

async function run_soak(minutes: number, quick: boolean): Promise<void> {
  configure_log({ level: "warn", line_bytes_max: 16 * 1024 });
  const interval_s = quick ? 3 : 15;
  console.error(`bench: soak of ${minutes} min at PIPELINE_INTERVAL_S=${interval_s}…`);
  const result = await soak({ minutes, interval_s });
  console.log(format_soak(result));
  const results_dir = path.join(repo_root, "bench", "results");
  fs.mkdirSync(results_dir, { recursive: true });
  const results_file = path.join(results_dir, quick ? "soak-quick.json" : "soak-latest.json");
  const machine = { cpus: os.cpus().length, cpu_model: os.cpus()[0]?.model, memory_bytes: os.totalmem(), kernel: os.release() };
  fs.writeFileSync(results_file, JSON.stringify({ measured_at: new Date().toISOString(), machine, node: process.version, ...result }, null, 2) + "\n");
  console.error(`bench: soak results in ${results_file}`);
}
