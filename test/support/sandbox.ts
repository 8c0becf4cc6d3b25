import { execFile } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { load_config } from "../../config/load.js";
import type { Config } from "../../config/schema.js";
import { repo_root } from "../../lib/paths.js";

export const shipped_zip_path = path.join(repo_root, "jobs/extract/seed/psd_coffee_csv.zip");
/** USDA's figures one row per country and year: the independent check of what the pipeline computes. */
export const wide_csv_path = path.join(repo_root, "test/fixtures/psd_coffee_wide_1960_2023.csv");
export const cli_path = path.join(repo_root, "dist/cli/materia.js");

export interface Sandbox {
  dir: string;
  /** The environment for materia processes: every path inside `dir`. */
  env: NodeJS.ProcessEnv;
  config: Config;
  cleanup(): void;
}

/** A private data dir with every path setting pointing into it; `overrides` win. */
export function make_sandbox(overrides: Record<string, string> = {}): Sandbox {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "materia-test-"));
  const settings: Record<string, string> = {
    LANDING_DIR: path.join(dir, "landing"),
    DUCKDB_PATH: path.join(dir, "lakehouse.duckdb"),
    SERVING_DUCKDB_PATH: path.join(dir, "serving.duckdb"),
    MATERIA_STATE_DIR: path.join(dir, "state"),
    ...overrides,
  };
  const env: NodeJS.ProcessEnv = { ...process.env, ...settings };
  delete env.MATERIA_ENV_FILE;
  return {
    dir,
    env,
    config: load_config(env),
    cleanup: () => fs.rmSync(dir, { recursive: true, force: true }),
  };
}

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `materia …` as a user would, as a separate process. */
export function run_cli(args: string[], env: NodeJS.ProcessEnv, timeout_ms = 300_000): Promise<CliResult> {
  return new Promise((resolve) => {
    execFile(process.execPath, [cli_path, ...args], { env, timeout: timeout_ms, maxBuffer: 64 * 1024 * 1024 },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === "number" ? error.code : 1) : 0;
        resolve({ code, stdout, stderr });
      });
  });
}

/** Lists every file below `dir` (relative paths, sorted): what a user would see with `find`. */
export function list_files(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  return (fs.readdirSync(dir, { recursive: true }) as string[])
    .filter((entry) => fs.statSync(path.join(dir, entry)).isFile())
    .sort();
}
