import path from "node:path";
import { z } from "zod";
import { read_json, write_file_atomic } from "../lib/durable_fs.js";

// The current release is the one upstream serves now, not the newest landed file: when USDA
// withdraws a release and serves an older one again, the older one is current again. Extract
// writes this pointer after every answer from upstream (a new release, one landed before, or
// 304); transform builds the release it names. One small JSON file in MATERIA_STATE_DIR, replaced
// whole (temp file, fsync, rename, fsync of the directory), so a crash leaves the old pointer or
// the new one.

const current_release_schema = z.object({
  /** The ETag upstream sent, as it sent it: extract's If-None-Match. */
  etag: z.string().min(1),
  /** The landed file's stem (the ETag made safe for a file name): the release id everywhere else. */
  release_id: z.string().min(1),
  /** The landed file, relative to LANDING_DIR (psd/{year}/{month}/{release_id}.csv.gzip). */
  file: z.string().min(1),
  /** When extract saw upstream switch to this release. */
  since: z.string().min(1),
});

export type CurrentRelease = z.infer<typeof current_release_schema>;

export function current_release_path(state_dir: string): string {
  return path.join(state_dir, "current_release.json");
}

/** The pointer, or undefined before the first extract; a damaged file is a one-line error naming it. */
export function read_current_release(state_dir: string): CurrentRelease | undefined {
  const file = current_release_path(state_dir);
  let raw: unknown;
  try {
    raw = read_json<unknown>(file);
  } catch (error) {
    throw new Error(`${file} is not readable JSON (${(error as Error).message}): run extract to rewrite it`);
  }
  if (raw === undefined) return undefined;
  const parsed = current_release_schema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new Error(`${file} is not a current-release pointer (${issue.path.join(".") || "the file"}: ${issue.message}): run extract to rewrite it`);
  }
  return parsed.data;
}

export function write_current_release(state_dir: string, release: CurrentRelease): void {
  write_file_atomic(current_release_path(state_dir), JSON.stringify(release, null, 2) + "\n");
}

/** The pointer after upstream served `served`: unchanged (undefined) when it names that release already. */
export function next_current_release(pointer: CurrentRelease | undefined, served: Omit<CurrentRelease, "since">,
  now: Date): CurrentRelease | undefined {
  if (pointer && pointer.etag === served.etag && pointer.release_id === served.release_id && pointer.file === served.file) {
    return undefined;
  }
  return { ...served, since: now.toISOString() };
}
