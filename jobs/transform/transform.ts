import fs from "node:fs";
import path from "node:path";
import type { Config } from "../../config/schema.js";
import { child_env } from "../../lib/child_env.js";
import { log } from "../../lib/log.js";
import { repo_root } from "../../lib/paths.js";
import { run_subprocess } from "../../lib/subprocess.js";
import type { JobContext, JobResult } from "../job.js";
import { list_landed_releases, newest_release } from "../landing.js";

export const sqlmesh_project_dir = path.join(repo_root, "jobs", "transform");

export class TransformError extends Error {}

/** The environment that SQLMesh's config.yaml reads (see its header), analytics off. */
export function sqlmesh_env(config: Config, release_file: string): NodeJS.ProcessEnv {
  return child_env({
    SQLMESH__DISABLE_ANONYMIZED_ANALYTICS: "1",
    MATERIA_DUCKDB_PATH: config.duckdb_path,
    MATERIA_PSD_RELEASE_FILE: release_file,
    MATERIA_SQLMESH_CACHE_DIR: path.join(config.materia_state_dir, "sqlmesh-cache"),
  });
}

/**
 * Builds the lakehouse from the newest landed release with `sqlmesh plan prod --auto-apply`:
 * model changes (after a self-update) and a new release (a new value of the release
 * variable) are applied in one plan; with neither it is a quick no-op. Unit tests and audits
 * run as part of the plan: a failing one stops it before prod changes.
 */
export async function run_transform(config: Config, context: JobContext): Promise<JobResult> {
  const release = newest_release(list_landed_releases(config.landing_dir));
  if (!release) throw new TransformError(`no landed PSD release under ${config.landing_dir}/psd: run extract first`);
  const log_dir = path.join(config.materia_state_dir, "sqlmesh-logs");

  const deadline_ms = Date.now() + config.transform_timeout_s * 1000;
  const sqlmesh = (command: string[]) => run_sqlmesh(config, context, { release_file: release.path, deadline_ms, log_dir }, command);
  try {
    const plan = await sqlmesh(["plan", "prod", "--auto-apply", "--no-prompts"]);
    // Each release is a new version of the models; the janitor drops versions no environment has
    // used for snapshot_ttl (SQLMesh's default, a week), so the lakehouse does not grow forever.
    await sqlmesh(["janitor"]);
    return { summary: `lakehouse built from release ${release.etag_stem}`, output_tail: plan.output_tail };
  } finally {
    prune_log_files(log_dir, config.sqlmesh_log_files_max);
  }
}

interface SqlmeshRun {
  release_file: string;
  /** The whole transform's deadline: every invocation shares TRANSFORM_TIMEOUT_S. */
  deadline_ms: number;
  log_dir: string;
}

async function run_sqlmesh(config: Config, context: JobContext, run: SqlmeshRun, command: string[]) {
  const args = ["--paths", sqlmesh_project_dir, "--log-file-dir", run.log_dir, ...command];
  const result = await run_subprocess(config.sqlmesh_bin, args, {
    cwd: sqlmesh_project_dir,
    env: sqlmesh_env(config, run.release_file),
    timeout_ms: Math.max(1, run.deadline_ms - Date.now()),
    kill_grace_ms: config.subprocess_kill_grace_ms,
    output_tail_bytes_max: config.subprocess_output_tail_bytes_max,
    cancel: context.cancel,
    on_start: context.on_subprocess_start,
    on_line: (line) => {
      if (line.trim()) log.info(`sqlmesh: ${line}`);
    },
  });
  if (result.timed_out) {
    throw new TransformError(`sqlmesh timed out after TRANSFORM_TIMEOUT_S=${config.transform_timeout_s} s; its process group was killed`);
  }
  if (context.cancel?.aborted) throw new TransformError("sqlmesh cancelled; its process group was killed");
  if (result.exit_code !== 0) {
    const how = result.exit_code === null ? `killed by ${result.signal}` : `exit ${result.exit_code}`;
    throw new TransformError(`sqlmesh ${command[0]} failed (${how}): ${failure_line(result.output_tail)}`);
  }
  return result;
}

/** SQLMesh writes one log file per invocation: keep the newest `files_max`. */
function prune_log_files(log_dir: string, files_max: number): void {
  if (!fs.existsSync(log_dir)) return;
  const files = fs.readdirSync(log_dir).map((name) => path.join(log_dir, name))
    .sort((a, b) => fs.statSync(b).mtimeMs - fs.statSync(a).mtimeMs);
  for (const stale of files.slice(files_max)) fs.rmSync(stale, { force: true });
}

/**
 * SQLMesh's output is for people, not machines: take its "Error:" line, and when models failed,
 * the first failed model and what failed in it (an audit, a query error).
 */
export function failure_line(output: string): string {
  const lines = output.split("\n").map((line) => line.trim()).filter(Boolean);
  const error = lines.findLast((line) => line.startsWith("Error:")) ?? lines.at(-1) ?? "no output";
  const failed_at = lines.findIndex((line) => line.includes("Failed models"));
  if (failed_at === -1) return error;
  const after_failed = lines.slice(failed_at + 1);
  const model = /^\* `(.+)`$/.exec(after_failed[0] ?? "")?.[1]?.replaceAll('"', "");
  const detail = after_failed.find((line) => /audit error|error|exception/i.test(line) && !line.startsWith("Error:"));
  return [error.replace(/\.$/, ""), model, detail].filter(Boolean).join(": ");
}
