import fs from "node:fs";
import path from "node:path";
import type { Config } from "../../config/schema.js";
import { child_env } from "../../lib/child_env.js";
import { log } from "../../lib/log.js";
import { repo_root } from "../../lib/paths.js";
import { abort_reason } from "../../lib/deadline.js";
import { run_subprocess } from "../../lib/subprocess.js";
import { running_commit } from "../../lib/version.js";
import { read_current_release } from "../current_release.js";
import type { JobContext, JobResult } from "../job.js";
import { read_built_release, type BuiltRelease } from "./built_release.js";
import { changed_inputs, current_transform_inputs, forget_transform_record, read_transform_record, write_transform_record } from "./transform_inputs.js";

export const sqlmesh_project_dir = path.join(repo_root, "jobs", "transform");

export class TransformError extends Error {}

/** The pair of releases the serving models are built for. */
export interface ComparedReleases {
  current: string;
  /** The release `current` replaces; "" when there is none (the first build). */
  previous: string;
}

/** The environment that SQLMesh's config.yaml reads (see its header), analytics off. */
export function sqlmesh_env(config: Config, releases: ComparedReleases): NodeJS.ProcessEnv {
  return child_env({
    SQLMESH__DISABLE_ANONYMIZED_ANALYTICS: "1",
    MATERIA_DUCKDB_PATH: config.duckdb_path,
    MATERIA_LANDING_DIR: config.landing_dir,
    MATERIA_CURRENT_RELEASE: releases.current,
    MATERIA_PREVIOUS_RELEASE: releases.previous,
    MATERIA_SQLMESH_CACHE_DIR: path.join(config.materia_state_dir, "sqlmesh-cache"),
  });
}

/**
 * The release `current` replaces: the one the lakehouse is built for now, or, when that is
 * `current` already (a rerun), the one it replaced then, so that a rerun compares the same pair.
 */
export function release_replaced(current: string, built: BuiltRelease | undefined): string {
  if (!built) return "";
  return built.release_id === current ? built.previous_release_id ?? "" : built.release_id;
}

/**
 * Builds the lakehouse for the current release (the one upstream serves, see
 * jobs/current_release.ts) against the one it replaces, with one `sqlmesh plan prod --auto-apply`:
 * staging.psd_coffee reads the releases landed since its last run, and model changes (after a
 * self-update) and a new pair of releases (new values of their variables) are applied together;
 * when none of its inputs changed since the last successful transform (transform_inputs.ts),
 * SQLMesh is not started at all and the run says "up to date". Unit tests and audits run as part
 * of the plan: a failing one stops it before prod changes.
 */
export async function run_transform(config: Config, context: JobContext): Promise<JobResult> {
  const pointer = read_current_release(config.materia_state_dir);
  if (!pointer) throw new TransformError(`no current release (${config.materia_state_dir}/current_release.json): run extract first`);
  if (!fs.existsSync(path.join(config.landing_dir, pointer.file))) {
    throw new TransformError(`the current release ${pointer.release_id} is not in LANDING_DIR: ${pointer.file} is missing (restore it, or run extract)`);
  }
  const state_dir = config.materia_state_dir;
  const last = read_transform_record(state_dir);
  const changed = changed_inputs(last, current_transform_inputs(config, sqlmesh_project_dir, pointer));
  if (changed.length === 0 && last && !context.force) {
    return { summary: `up to date: release ${pointer.release_id}, the landed files, the SQLMesh project and the lakehouse ` +
      `are as the transform of ${last.transformed_at} (commit ${last.commit}) left them (--force runs it anyway)` };
  }
  const releases = { current: pointer.release_id, previous: release_replaced(pointer.release_id, await read_built_release(config.duckdb_path)) };
  const log_dir = path.join(state_dir, "sqlmesh-logs");

  const sqlmesh = (command: string[]) => run_sqlmesh(config, context, { releases, log_dir }, command);
  forget_transform_record(state_dir);
  try {
    // --run --ignore-cron with an exact --execution-time: staging.psd_coffee reads what landed up
    // to this moment (a plan alone stops at the last whole day, and SQLMesh's own "now" is cut to
    // the minute, which would miss a release landed later in that minute).
    const plan = await sqlmesh(["plan", "prod", "--auto-apply", "--no-prompts", "--run", "--ignore-cron",
      "--execution-time", new Date().toISOString()]);
    // Each pair of releases is a new version of the serving models; the janitor drops versions no
    // environment has used for snapshot_ttl (SQLMesh's default, a week), so the lakehouse does not
    // grow with them. staging.psd_coffee keeps one version, which grows by one release per release.
    await sqlmesh(["janitor"]);
    write_transform_record(state_dir, {
      // Read again: the plan changed the lakehouse, and the landing dir or the pointer may have changed meanwhile (then the next cycle runs again).
      inputs: current_transform_inputs(config, sqlmesh_project_dir, pointer), transformed_at: new Date().toISOString(), commit: running_commit(),
    });
    const against = releases.previous ? ` against ${releases.previous}` : "";
    const why = last ? `changed since the last transform: ${changed.join(", ")}` : "no earlier transform recorded";
    return { summary: `lakehouse built for release ${releases.current}${against} (${why})`, output_tail: plan.output_tail };
  } finally {
    prune_log_files(log_dir, config.sqlmesh_log_files_max);
  }
}

interface SqlmeshRun {
  releases: ComparedReleases;
  log_dir: string;
}

async function run_sqlmesh(config: Config, context: JobContext, run: SqlmeshRun, command: string[]) {
  const args = ["--paths", sqlmesh_project_dir, "--log-file-dir", run.log_dir, ...command];
  const result = await run_subprocess(config.sqlmesh_bin, args, {
    cwd: sqlmesh_project_dir,
    env: sqlmesh_env(config, run.releases),
    kill_grace_ms: config.subprocess_kill_grace_ms,
    output_tail_bytes_max: config.subprocess_output_tail_bytes_max,
    line_bytes_max: config.log_line_bytes_max,
    // The run's deadline (TRANSFORM_TIMEOUT_S, shared by every invocation) is this subprocess's bound.
    cancel: context.stop,
    on_start: context.on_subprocess_start,
    on_line: (line) => {
      if (line.trim()) log.info(`sqlmesh: ${line}`);
    },
  });
  if (context.stop.aborted) throw new TransformError(`sqlmesh ${abort_reason(context.stop)}; its process group was killed`);
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
