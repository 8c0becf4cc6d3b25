import fs from "node:fs";
import { DuckDBInstance } from "@duckdb/node-api";

/** The pair of releases the lakehouse's prod environment is built for (its serving.release). */
export interface BuiltRelease {
  release_id: string;
  /** null when it replaced none, or when the lakehouse predates release comparisons. */
  previous_release_id: string | null;
}

/**
 * Reads serving.release from the lakehouse, READ_ONLY: the transform calls this before it starts
 * SQLMesh, the lakehouse's only writer. Undefined before the first build.
 */
export async function read_built_release(lakehouse_path: string): Promise<BuiltRelease | undefined> {
  if (!fs.existsSync(lakehouse_path)) return undefined;
  const instance = await DuckDBInstance.create(lakehouse_path, { access_mode: "READ_ONLY" });
  const connection = await instance.connect();
  try {
    const columns = (await connection.runAndReadAll(`SELECT column_name FROM information_schema.columns
      WHERE table_catalog = current_database() AND table_schema = 'serving' AND table_name = 'release'`))
      .getRowObjectsJS().map((row) => String(row.column_name));
    if (!columns.includes("release_id")) return undefined;
    const previous = columns.includes("previous_release_id") ? "previous_release_id" : "NULL";
    const rows = (await connection.runAndReadAll(`SELECT release_id, ${previous} AS previous_release_id FROM serving.release`))
      .getRowObjectsJS();
    // serving.release's audit keeps it to one row: anything else is a broken lakehouse, not a state to build on.
    if (rows.length !== 1) throw new Error(`${lakehouse_path}: serving.release has ${rows.length} rows, not 1`);
    const [row] = rows;
    return { release_id: String(row!.release_id), previous_release_id: row!.previous_release_id === null ? null : String(row!.previous_release_id) };
  } finally {
    connection.closeSync();
    instance.closeSync();
  }
}
