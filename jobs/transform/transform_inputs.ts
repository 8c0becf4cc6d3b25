import crypto from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { z } from "zod";
import type { Config } from "../../config/schema.js";
import { read_json, write_file_atomic } from "../../lib/durable_fs.js";
import type { CurrentRelease } from "../current_release.js";
import { list_landed_releases } from "../landing.js";

// What a transform's result depends on. When none of it changed since the last successful
// transform, SQLMesh would plan, find nothing to do and run its janitor (10–30 s of CPU on a
// small box, every idle cycle): the transform skips that and says "up to date". The record is
// removed before SQLMesh starts and written after it succeeded, so a transform that failed or
// was killed half-way is never taken for an up-to-date one.

const transform_inputs_schema = z.object({
  /** The current release (extract's pointer): the release the serving models are built for. */
  current_release: z.string(),
  /** Every landed release file (path, size, mtime): staging.psd_coffee reads what landed. */
  landed_sha256: z.string(),
  /** Every file of the SQLMesh project (models, macros, audits, tests, config, the pinned requirements). */
  project_sha256: z.string(),
  /** The paths and binary SQLMesh is run with. */
  settings_sha256: z.string(),
  /** The lakehouse file as the transform left it (device, inode, size, mtime): a rebuilt or restored one differs. */
  lakehouse: z.string(),
});

export type TransformInputs = z.infer<typeof transform_inputs_schema>;

const transform_record_schema = z.object({
  inputs: transform_inputs_schema,
  /** When that transform ended, and the commit that ran it: for the reader of "up to date". */
  transformed_at: z.string(),
  commit: z.string(),
});

export type TransformRecord = z.infer<typeof transform_record_schema>;

/** The names a reader sees for each input, in the order they are reported. */
const input_names: Record<keyof TransformInputs, string> = {
  current_release: "the current release",
  landed_sha256: "the landed files",
  project_sha256: "the SQLMesh project",
  settings_sha256: "the transform's settings",
  lakehouse: "the lakehouse file",
};

/** Which inputs differ from the last successful transform's (all of them when there was none). */
export function changed_inputs(last: TransformRecord | undefined, now: TransformInputs): string[] {
  const keys = Object.keys(input_names) as (keyof TransformInputs)[];
  return keys.filter((key) => last?.inputs[key] !== now[key]).map((key) => input_names[key]);
}

export const transform_record_path = (state_dir: string) => path.join(state_dir, "last_transform.json");

/** The last successful transform's record; a missing, damaged or older-shaped file counts as none (the transform then runs). */
export function read_transform_record(state_dir: string): TransformRecord | undefined {
  try {
    const parsed = transform_record_schema.safeParse(read_json<unknown>(transform_record_path(state_dir)));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}

export function write_transform_record(state_dir: string, record: TransformRecord): void {
  write_file_atomic(transform_record_path(state_dir), JSON.stringify(record, null, 2) + "\n");
}

export function forget_transform_record(state_dir: string): void {
  fs.rmSync(transform_record_path(state_dir), { force: true });
}

/** Reads the inputs as they are now: a few stats, a listing of the landing dir and ~150 KB of project files hashed. */
export function current_transform_inputs(config: Config, project_dir: string, release: CurrentRelease): TransformInputs {
  const landed = list_landed_releases(config.landing_dir).map((file) => {
    const stat = fs.statSync(file.path);
    return `${path.relative(config.landing_dir, file.path)} ${stat.size} ${stat.mtimeMs}`;
  });
  return {
    current_release: `${release.release_id} ${release.etag} ${release.file}`,
    landed_sha256: sha256_of(landed.sort()),
    project_sha256: sha256_of(project_files(project_dir).map((file) =>
      `${path.relative(project_dir, file)} ${crypto.createHash("sha256").update(fs.readFileSync(file)).digest("hex")}`)),
    settings_sha256: sha256_of([config.duckdb_path, config.landing_dir, config.sqlmesh_bin]),
    lakehouse: file_identity(config.duckdb_path),
  };
}

function sha256_of(lines: string[]): string {
  return crypto.createHash("sha256").update(lines.join("\n")).digest("hex");
}

function file_identity(file: string): string {
  try {
    const stat = fs.statSync(file);
    return `${stat.dev}:${stat.ino} ${stat.size} ${stat.mtimeMs}`;
  } catch {
    return "absent";
  }
}

/** Every file below `dir`, sorted; caches that tools write beside the sources are left out. */
function project_files(dir: string): string[] {
  const skipped = new Set(["__pycache__", ".cache", "logs"]);
  const files: string[] = [];
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    if (skipped.has(entry.name)) continue;
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) files.push(...project_files(full));
    else if (entry.isFile()) files.push(full);
  }
  return files.sort();
}
