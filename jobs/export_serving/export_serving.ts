import fs from "node:fs";
import path from "node:path";
import { DuckDBInstance, type DuckDBConnection } from "@duckdb/node-api";
import type { Config } from "../../config/schema.js";
import { fsync_path, rename_durably } from "../../lib/durable_fs.js";
import { abort_reason } from "../../lib/deadline.js";
import { log } from "../../lib/log.js";
import { schema_mismatches, serving_columns_sql, type ColumnRow } from "../../lib/serving_schema.js";
import type { JobContext, JobResult } from "../job.js";
import { publish_gate_refusals, type RowCounts } from "./publish_gate.js";

export class ExportError extends Error {}

/** The table every serving file must hold: without it, the file is not ours to publish. */
export const RELEASE_TABLE = "release";
/** Written by the export itself: when, and from which release. */
export const EXPORT_INFO_TABLE = "export_info";

export function temporary_serving_path(serving_path: string): string {
  return path.join(path.dirname(serving_path), `${path.basename(serving_path, ".duckdb")}_new.duckdb`);
}

const sql_string = (text: string) => `'${text.replaceAll("'", "''")}'`;
const sql_identifier = (name: string) => `"${name.replaceAll('"', '""')}"`;

/**
 * Copies every `serving.*` object of the lakehouse into `main` of a fresh file (CTAS: SQLMesh's
 * views name the lakehouse catalog and would break elsewhere), checks it against the published
 * file, then renames it over SERVING_DUCKDB_PATH. Readers see the old file or the new one.
 * Publishes nothing when the published file already holds the lakehouse's release and model
 * versions (a cycle that found nothing new), unless forced.
 */
export async function run_export_serving(config: Config, context: JobContext): Promise<JobResult> {
  if (context.stop.aborted) throw new ExportError(abort_reason(context.stop));
  const serving_path = config.serving_duckdb_path;
  const temporary_path = temporary_serving_path(serving_path);
  // A crash may have left a half-built temporary file (and its WAL): never reuse it.
  remove_with_wal(temporary_path);
  if (!fs.existsSync(config.duckdb_path)) throw new ExportError(`no lakehouse at ${config.duckdb_path}: run transform first`);
  const lakehouse_alias = path.basename(config.duckdb_path, ".duckdb");
  const published_alias = "published";
  if ([path.basename(temporary_path, ".duckdb"), published_alias].includes(lakehouse_alias)) {
    throw new ExportError(`DUCKDB_PATH's file name (${lakehouse_alias}) clashes with the export's own catalogs`);
  }
  fs.mkdirSync(path.dirname(serving_path), { recursive: true });

  let counts: RowCounts | undefined;
  let source: ServingSource | undefined;
  try {
    const instance = await DuckDBInstance.create(temporary_path);
    const connection = await instance.connect();
    // The run's deadline (EXPORT_TIMEOUT_S) or a cancel interrupts the query under way.
    const interrupt = () => connection.interrupt();
    context.stop.addEventListener("abort", interrupt, { once: true });
    try {
      await connection.run(`ATTACH ${sql_string(config.duckdb_path)} AS ${sql_identifier(lakehouse_alias)} (READ_ONLY)`);
      source = await lakehouse_source(connection, lakehouse_alias);
      const published_exists = fs.existsSync(serving_path);
      // Re-publishing the same thing would change only the inode, which makes every web process
      // reopen the file and throw away its cache of rendered pages.
      const unchanged = published_exists && !context.force &&
        same_source(source, await published_source(connection, serving_path, published_alias));
      if (!unchanged) {
        counts = await copy_serving_tables(connection, lakehouse_alias, source);
        // Not even --force publishes a file the web would refuse: its pages would all answer 503.
        const mismatches = schema_mismatches((await connection.runAndReadAll(serving_columns_sql)).getRowObjectsJS() as unknown as ColumnRow[]);
        if (mismatches.length > 0) {
          throw new ExportError(`release ${source.release_id} does not fit the schema the web reads: ${mismatches.join("; ")} (keeping the current serving file)`);
        }
        const published = published_exists ? await published_counts(connection, serving_path, published_alias) : undefined;
        const refusals = publish_gate_refusals(counts, published);
        if (refusals.length > 0 && !context.force) {
          throw new ExportError(`publish gate refused release ${source.release_id}: ${refusals.join("; ")} (keeping the current serving file; --force overrides)`);
        }
        if (refusals.length > 0) log.warn("export_serving: publishing despite the gate (--force)", { refusals });
        await connection.run("CHECKPOINT");
      }
    } catch (error) {
      if (context.stop.aborted) throw new ExportError(abort_reason(context.stop));
      throw error;
    } finally {
      context.stop.removeEventListener("abort", interrupt);
      connection.closeSync();
      instance.closeSync();
    }
    if (counts === undefined) {
      log.info("export_serving: nothing new", { release_id: source.release_id, path: serving_path });
      return { summary: `nothing new: ${serving_path} already holds release ${source.release_id} from these model versions (--force re-exports)` };
    }
    if (fs.existsSync(`${temporary_path}.wal`)) throw new ExportError(`${temporary_path}.wal left after CHECKPOINT and close`);
    fsync_path(temporary_path);
    // DuckDB finds a WAL by path: a stale one would be replayed into the new file.
    fs.rmSync(`${serving_path}.wal`, { force: true });
    rename_durably(temporary_path, serving_path);
  } finally {
    remove_with_wal(temporary_path);
  }
  log.info("export_serving: published", { release_id: source.release_id, path: serving_path, rows: counts });
  return { summary: `published release ${source.release_id}: ${Object.entries(counts).map(([t, n]) => `${t} ${n}`).join(", ")}` };
}

function remove_with_wal(file: string): void {
  fs.rmSync(file, { force: true });
  fs.rmSync(`${file}.wal`, { force: true });
}

/**
 * What a serving file is built from: the lakehouse's serving objects, its release, and the
 * version of every serving model. SQLMesh publishes each model as a view over a physical table
 * whose name carries the model's fingerprint (its SQL and the release variable), so the views'
 * SQL is the model versions. undefined when an object is not such a view: its version is unknown.
 */
interface ServingSource {
  tables: string[];
  release_id: string;
  model_versions: string | undefined;
}

async function lakehouse_source(connection: DuckDBConnection, alias: string): Promise<ServingSource> {
  const listing = await connection.runAndReadAll(
    "SELECT table_name FROM information_schema.tables WHERE table_catalog = $catalog AND table_schema = 'serving' ORDER BY table_name",
    { catalog: alias });
  const tables = listing.getRowObjectsJS().map((row) => String(row.table_name));
  if (!tables.includes(RELEASE_TABLE)) {
    throw new ExportError(`the lakehouse has no serving.${RELEASE_TABLE} (found: ${tables.join(", ") || "none"}): run transform first`);
  }
  const release = await connection.runAndReadAll(`SELECT release_id FROM ${sql_identifier(alias)}.serving.${RELEASE_TABLE}`);
  const release_rows = release.getRowObjectsJS();
  if (release_rows.length !== 1) throw new ExportError(`serving.${RELEASE_TABLE} has ${release_rows.length} rows, not 1`);
  const views = await connection.runAndReadAll(
    "SELECT view_name, sql FROM duckdb_views() WHERE database_name = $catalog AND schema_name = 'serving' ORDER BY view_name",
    { catalog: alias });
  const view_sql = views.getRowObjectsJS().map((row) => [String(row.view_name), String(row.sql)]);
  const model_versions = view_sql.length === tables.length ? JSON.stringify(Object.fromEntries(view_sql)) : undefined;
  return { tables, release_id: String(release_rows[0]!.release_id), model_versions };
}

/** The release and model versions the published file was exported from (none for files from before they were recorded). */
async function published_source(connection: DuckDBConnection, serving_path: string, alias: string) {
  await connection.run(`ATTACH ${sql_string(serving_path)} AS ${alias} (READ_ONLY)`);
  try {
    const columns = await connection.runAndReadAll(
      "SELECT column_name FROM information_schema.columns WHERE table_catalog = $catalog AND table_schema = 'main' AND table_name = $info",
      { catalog: alias, info: EXPORT_INFO_TABLE });
    if (!columns.getRowObjectsJS().some((row) => row.column_name === "model_versions")) return undefined;
    const info = await connection.runAndReadAll(`SELECT release_id, model_versions FROM ${alias}.main.${EXPORT_INFO_TABLE}`);
    const [row] = info.getRowObjectsJS();
    return row && { release_id: String(row.release_id), model_versions: row.model_versions === null ? undefined : String(row.model_versions) };
  } finally {
    await connection.run(`DETACH ${alias}`);
  }
}

function same_source(lakehouse: ServingSource, published: Pick<ServingSource, "release_id" | "model_versions"> | undefined): boolean {
  return lakehouse.model_versions !== undefined && published !== undefined &&
    published.release_id === lakehouse.release_id && published.model_versions === lakehouse.model_versions;
}

async function copy_serving_tables(connection: DuckDBConnection, alias: string, source: ServingSource): Promise<RowCounts> {
  const counts: RowCounts = {};
  for (const table of source.tables) {
    await connection.run(`CREATE TABLE main.${sql_identifier(table)} AS SELECT * FROM ${sql_identifier(alias)}.serving.${sql_identifier(table)}`);
    counts[table] = await count_rows(connection, `main.${sql_identifier(table)}`);
  }
  await connection.run(`CREATE TABLE main.${EXPORT_INFO_TABLE} AS SELECT now() AS exported_at, $release_id AS release_id,
    CAST($model_versions AS VARCHAR) AS model_versions`, { release_id: source.release_id, model_versions: source.model_versions ?? null });
  await connection.run(`DETACH ${sql_identifier(alias)}`);
  return counts;
}

async function published_counts(connection: DuckDBConnection, serving_path: string, alias: string): Promise<RowCounts> {
  await connection.run(`ATTACH ${sql_string(serving_path)} AS ${alias} (READ_ONLY)`);
  try {
    const listing = await connection.runAndReadAll(
      "SELECT table_name FROM information_schema.tables WHERE table_catalog = $catalog AND table_schema = 'main' AND table_name <> $info",
      { catalog: alias, info: EXPORT_INFO_TABLE });
    const counts: RowCounts = {};
    for (const row of listing.getRowObjectsJS()) {
      const table = String(row.table_name);
      counts[table] = await count_rows(connection, `${alias}.main.${sql_identifier(table)}`);
    }
    return counts;
  } finally {
    await connection.run(`DETACH ${alias}`);
  }
}

async function count_rows(connection: DuckDBConnection, table: string): Promise<number> {
  const result = await connection.runAndReadAll(`SELECT count(*) AS n FROM ${table}`);
  return Number(result.getRowObjectsJS()[0]!.n);
}
