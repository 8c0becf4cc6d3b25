import fs from "node:fs";
import path from "node:path";
import { DuckDBInstance } from "@duckdb/node-api";

/** Opens a DuckDB file READ_ONLY, as the web does, and runs parameterized queries on it. */
export async function open_read_only(file: string) {
  const instance = await DuckDBInstance.create(file, { access_mode: "READ_ONLY" });
  const connection = await instance.connect();
  return {
    async rows(sql: string, values: Record<string, string | number> = {}): Promise<Record<string, unknown>[]> {
      return (await connection.runAndReadAll(sql, values)).getRowObjectsJS() as Record<string, unknown>[];
    },
    close(): void {
      connection.closeSync();
      instance.closeSync();
    },
  };
}

/** Runs `statements` on a DuckDB file read-write, then checkpoints it, so no WAL is left beside it. */
export async function alter_duckdb_file(file: string, statements: string[]): Promise<void> {
  const instance = await DuckDBInstance.create(file);
  const connection = await instance.connect();
  try {
    for (const statement of statements) await connection.run(statement);
    await connection.run("CHECKPOINT");
  } finally {
    connection.closeSync();
    instance.closeSync();
  }
}

/** A copy of the serving file `source` at `target`, changed by `statements` (a broken release, made by hand). */
export async function altered_copy(source: string, target: string, statements: string[]): Promise<string> {
  fs.copyFileSync(source, target);
  await alter_duckdb_file(target, statements);
  return target;
}

/** As export_serving does: a complete file under another name, then rename() over the served path. */
export function swap_in(served_path: string, source: string): void {
  const temporary = path.join(path.dirname(served_path), "serving_new.duckdb");
  fs.copyFileSync(source, temporary);
  fs.renameSync(temporary, served_path);
}
