import fs from "node:fs";
import path from "node:path";
import util from "node:util";
import { repo_root } from "../lib/paths.js";
import { config_schema, type Config } from "./schema.js";

export class ConfigError extends Error {}

const secret_settings: ReadonlySet<string> = new Set(["ADMIN_PASSWORD"]);

/**
 * Validates settings from `env` (the process environment by default), after loading the
 * optional env file named by MATERIA_ENV_FILE. Throws ConfigError with one line naming the
 * first bad variable.
 */
export function load_config(env: NodeJS.ProcessEnv = process.env): Config {
  const env_file = env.MATERIA_ENV_FILE;
  if (env_file) {
    if (!fs.existsSync(env_file)) throw new ConfigError(`config: MATERIA_ENV_FILE: no such file ${env_file}`);
    // The environment wins over the file, as with systemd's EnvironmentFile= plus Environment=.
    env = { ...util.parseEnv(fs.readFileSync(env_file, "utf8")), ...env };
  }
  const schema = config_schema(repo_root);
  const known = Object.keys(schema.shape);
  const raw = Object.fromEntries(known.filter((k) => env[k] !== undefined && env[k] !== "").map((k) => [k, env[k]]));
  const parsed = schema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const name = String(issue.path[0]);
    const value = raw[name];
    // A secret is never echoed (the message goes to the journal).
    const got = value === undefined ? "its default" : secret_settings.has(name) ? `${String(value).length} characters` : JSON.stringify(value);
    throw new ConfigError(`config: ${name} ${issue.message} (got ${got})`);
  }
  const config = Object.fromEntries(Object.entries(parsed.data).map(([k, v]) => [k.toLowerCase(), v])) as Config;
  // Three missed cycles and a backoff: one failure, or a late cycle, is not yet "stale".
  config.stale_after_s ??= 3 * config.pipeline_interval_s + config.pipeline_backoff_s;
  for (const key of ["landing_dir", "duckdb_path", "serving_duckdb_path", "materia_state_dir", "sqlmesh_bin"] as const) {
    config[key] = path.resolve(config[key]);
  }
  return config;
}
