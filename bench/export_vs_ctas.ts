import fs from "node:fs";
import path from "node:path";
import { run_export_serving } from "../jobs/export_serving/export_serving.js";
import { with_job_deadline } from "../jobs/job.js";
import { figure, sample, seconds_of, side_by_side, type Figure } from "./stats.js";
import { config_with, run_sql, type BenchContext } from "./workspace.js";

const SERVING_TABLES = ["country_balance", "rankings", "release", "revisions", "series_breaks", "world_balance", "world_revisions"];

/**
 * 4. export_serving against the limit: a bare CREATE TABLE AS SELECT of the same tables into a
 * fresh file, at the real size and scaled up, to show the overhead (gate, checkpoint, fsync,
 * rename) and that time grows linearly with rows.
 */
export async function bench_export_vs_ctas(context: BenchContext): Promise<Figure[]> {
  const { workspace } = context;
  const scale = context.quick ? 10 : 100;
  const runs = context.quick ? 2 : 5;
  const scaled_lakehouse = path.join(workspace.dir, `lakehouse_x${scale}.duckdb`);
  await write_scaled_lakehouse(workspace.config.duckdb_path, scaled_lakehouse, scale);

  const figures: Figure[] = [];
  const seconds_per_copy: number[] = [];
  for (const [label, lakehouse, factor] of [["real size", workspace.config.duckdb_path, 1], [`${scale}× rows`, scaled_lakehouse, scale]] as const) {
    const serving = path.join(workspace.dir, "bench_serving.duckdb");
    const bare = path.join(workspace.dir, "bench_bare.duckdb");
    const config = config_with(workspace, { DUCKDB_PATH: lakehouse, SERVING_DUCKDB_PATH: serving });
    const alias = path.basename(lakehouse, ".duckdb");
    const times = await side_by_side(runs,
      () => {
        fs.rmSync(serving, { force: true });
        return seconds_of(() => with_job_deadline(config, "export_serving", undefined, (stop) => run_export_serving(config, { stop })));
      },
      () => {
        fs.rmSync(bare, { force: true });
        return seconds_of(() => run_sql(bare, [
          `ATTACH '${lakehouse}' AS "${alias}" (READ_ONLY)`,
          ...SERVING_TABLES.map((t) => `CREATE TABLE main.${t} AS SELECT * FROM "${alias}".serving.${t}`),
        ]));
      });
    const ours = sample(times.ours, "s");
    figures.push(figure(`4${label === "real size" ? "a" : "b"}`, `export_serving vs bare CTAS, ${label}`,
      ours, sample(times.reference, "s"), "≤ 1.2×", (ratio) => ratio <= 1.2));
    seconds_per_copy.push(ours.median / factor);
  }
  // Linear growth: time per copy of the data at scale ÷ at the real size (1 = linear, < 1 = fixed costs amortized).
  const [real, scaled] = seconds_per_copy as [number, number];
  figures.push(figure("4c", `export time per copy of the data, ${scale}× vs real size`, sample([scaled], "s"),
    sample([real], "s"), "≤ 1 (linear or better)", (ratio) => ratio <= 1.05));
  return figures;
}

async function write_scaled_lakehouse(source: string, target: string, scale: number): Promise<void> {
  fs.rmSync(target, { force: true });
  const copies = `range(${scale}) AS copies(i)`;
  // The same shape as SQLMesh's serving layer (the same column types: export_serving checks them),
  // with every country repeated `scale` times under a new code.
  await run_sql(target, [
    // SQLMesh's views name their catalog: attach under the lakehouse's own stem.
    `ATTACH '${source}' AS lakehouse (READ_ONLY)`,
    "CREATE SCHEMA serving",
    `CREATE TABLE serving.country_balance AS SELECT t.* REPLACE (t.country_code || '-' || i AS country_code) FROM lakehouse.serving.country_balance AS t, ${copies}`,
    `CREATE TABLE serving.rankings AS SELECT t.* REPLACE (t.country_code || '-' || i AS country_code) FROM lakehouse.serving.rankings AS t, ${copies}`,
    `CREATE TABLE serving.world_balance AS SELECT t.* REPLACE ((t.market_year + 1000 * i)::INTEGER AS market_year) FROM lakehouse.serving.world_balance AS t, ${copies}`,
    `CREATE TABLE serving.revisions AS SELECT t.* REPLACE (t.country_code || '-' || i AS country_code) FROM lakehouse.serving.revisions AS t, ${copies}`,
    `CREATE TABLE serving.series_breaks AS SELECT t.* REPLACE (t.country_code || '-' || i AS country_code) FROM lakehouse.serving.series_breaks AS t, ${copies}`,
    `CREATE TABLE serving.world_revisions AS SELECT t.* REPLACE ((t.market_year + 1000 * i)::INTEGER AS market_year) FROM lakehouse.serving.world_revisions AS t, ${copies}`,
    "CREATE TABLE serving.release AS SELECT * FROM lakehouse.serving.release",
  ]);
}
