import { DuckDBInstance } from "@duckdb/node-api";
import { load_config } from "../config/load.js";
import type { Config } from "../config/schema.js";
import { make_sandbox, run_cli, type Sandbox } from "../test/support/sandbox.js";

export interface BenchContext {
  quick: boolean;
  /** A workspace with the real pipeline run once: landing, lakehouse and serving file on the shipped data. */
  workspace: Sandbox;
}

export async function prepare_workspace(): Promise<Sandbox> {
  const workspace = make_sandbox({ LOG_LEVEL: "warn" });
  const result = await run_cli(["pipeline", "run", "all"], workspace.env);
  if (result.code !== 0) throw new Error(`the pipeline failed in the bench workspace: ${result.stderr}`);
  return workspace;
}

/** The workspace's config with some settings changed. */
export function config_with(workspace: Sandbox, settings: Record<string, string>): Config {
  return load_config({ ...workspace.env, ...settings });
}

/** Runs SQL statements on a DuckDB file, then closes it. */
export async function run_sql(file: string, statements: string[]): Promise<void> {
  const instance = await DuckDBInstance.create(file);
  const connection = await instance.connect();
  try {
    for (const statement of statements) await connection.run(statement);
  } finally {
    connection.closeSync();
    instance.closeSync();
  }
}
