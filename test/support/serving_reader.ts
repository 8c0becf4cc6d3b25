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
