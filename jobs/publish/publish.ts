import fs from "node:fs";
import path from "node:path";
import { DuckDBInstance } from "@duckdb/node-api";
import type { Config } from "../../config/schema.js";
import { start_deadline } from "../../lib/deadline.js";
import { write_file_atomic } from "../../lib/durable_fs.js";
import { log } from "../../lib/log.js";
import { rclone, remote_files, remote_join, remote_stat, type RcloneCall } from "../../lib/rclone.js";
import {
  file_digest, manifest_bytes_max, manifest_format, manifest_path, parse_manifest, serving_dir_path, serving_file_name,
  serving_file_path, type ServingManifest,
} from "../../lib/serving_manifest.js";
import type { JobContext, JobResult } from "../job.js";
import { files_to_prune } from "./retention.js";

export class PublishError extends Error {}

/**
 * Publishes the serving file in use to SERVING_PUBLISH_REMOTE for the web nodes that follow it:
 * the file under its content's name first, then the manifest that names it, then the pruning of
 * files past SERVING_PUBLISH_KEEP. It runs after export_serving has swapped the file in locally,
 * so it can neither delay nor undo that; a failure fails the cycle (the daemon retries after
 * PIPELINE_BACKOFF_S). Each cycle rewrites the manifest even when the file is already there:
 * its `confirmed_at` is the followers' proof that the pipeline still runs.
 */
export async function run_publish(config: Config, context: JobContext): Promise<JobResult> {
  const remote = config.serving_publish_remote;
  if (remote === "") return { summary: "off (SERVING_PUBLISH_REMOTE is empty)" };
  const deadline = start_deadline(config.serving_publish_timeout_s * 1000, context.cancel);
  const deadline_ms = Date.now() + config.serving_publish_timeout_s * 1000;
  // Each rclone call gets what is left of the job's one bound.
  const call = (): RcloneCall => ({
    timeout_ms: Math.max(1, deadline_ms - Date.now()), kill_grace_ms: config.subprocess_kill_grace_ms,
    output_tail_bytes_max: config.subprocess_output_tail_bytes_max, cancel: deadline.signal, on_start: context.on_subprocess_start,
  });
  // A second name for the inode being published: a swap during the upload cannot change what
  // is hashed, described and uploaded.
  const pinned = path.join(path.dirname(config.serving_duckdb_path), `${path.basename(config.serving_duckdb_path, ".duckdb")}_publish.duckdb`);
  fs.rmSync(pinned, { force: true });
  try {
    try {
      fs.linkSync(config.serving_duckdb_path, pinned);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") throw new PublishError(`no serving file at ${config.serving_duckdb_path}: run export_serving first`);
      throw error;
    }
    const { sha256, size_bytes } = await file_digest(pinned);
    const { release_id, exported_at } = await export_info(pinned);
    const published = await remote_manifest(remote, call());
    const remote_file = serving_file_path(remote, sha256);
    // Content-addressed: a file of that name and size on the remote is this file.
    const present = published?.sha256 === sha256 && (await remote_stat(remote_file, call()))?.Size === size_bytes;
    if (!present) await rclone(["copyto", pinned, remote_file], call());
    const manifest: ServingManifest = { format: manifest_format, release_id, sha256, size_bytes, exported_at, confirmed_at: new Date().toISOString() };
    await write_manifest(config, remote, manifest, call);
    const pruned = await prune(config, remote, serving_file_name(sha256), call);
    const what = present ? "already on the remote; manifest confirmed" : `uploaded ${size_bytes} bytes`;
    log.info(`publish: release ${release_id} (sha256 ${sha256.slice(0, 12)}…): ${what}`, { remote, pruned });
    return { summary: `release ${release_id} ${what}${pruned.length > 0 ? `; pruned ${pruned.length} old file(s)` : ""}` };
  } catch (error) {
    if (deadline.timed_out()) throw new PublishError(`timed out after SERVING_PUBLISH_TIMEOUT_S=${config.serving_publish_timeout_s} s`);
    if (context.cancel?.aborted) throw new PublishError("cancelled");
    throw error;
  } finally {
    deadline.clear();
    fs.rmSync(pinned, { force: true });
  }
}

/** The release and export time the serving file records about itself. */
async function export_info(file: string): Promise<{ release_id: string; exported_at: string }> {
  const instance = await DuckDBInstance.create(file, { access_mode: "READ_ONLY" });
  const connection = await instance.connect();
  try {
    const rows = (await connection.runAndReadAll("SELECT release_id, epoch_ms(exported_at) AS exported_ms FROM main.export_info")).getRowObjectsJS();
    if (rows.length !== 1) throw new PublishError(`the serving file's export_info has ${rows.length} rows, not 1`);
    return { release_id: String(rows[0]!.release_id), exported_at: new Date(Number(rows[0]!.exported_ms)).toISOString() };
  } finally {
    connection.closeSync();
    instance.closeSync();
  }
}

/** The manifest on the remote; undefined when there is none or it cannot be read (it is rewritten anyway). */
async function remote_manifest(remote: string, call: RcloneCall): Promise<ServingManifest | undefined> {
  if (!(await remote_stat(manifest_path(remote), call))) return undefined;
  try {
    return parse_manifest(await rclone(["cat", manifest_path(remote)], call, manifest_bytes_max));
  } catch (error) {
    log.warn(`publish: replacing the remote's manifest: ${(error as Error).message}`);
    return undefined;
  }
}

/**
 * Uploaded under a temporary name, then moved over current.json: a rename on a directory remote,
 * a server-side copy on object storage; a follower reads the old manifest or the new one.
 */
async function write_manifest(config: Config, remote: string, manifest: ServingManifest, call: () => RcloneCall): Promise<void> {
  fs.mkdirSync(config.materia_state_dir, { recursive: true });
  const local = path.join(config.materia_state_dir, "serving_manifest.json");
  write_file_atomic(local, `${JSON.stringify(manifest, null, 2)}\n`);
  const temporary = remote_join(serving_dir_path(remote), `current.json.tmp-${process.pid}-${Date.now()}`);
  await rclone(["copyto", local, temporary], call());
  await rclone(["moveto", temporary, manifest_path(remote)], call());
}

/** Deletes the files past SERVING_PUBLISH_KEEP; a failure is logged, not fatal: the next cycle prunes again. */
async function prune(config: Config, remote: string, current_name: string, call: () => RcloneCall): Promise<string[]> {
  const pruned: string[] = [];
  try {
    const doomed = files_to_prune(await remote_files(serving_dir_path(remote), call()), current_name, config.serving_publish_keep);
    for (const name of doomed) {
      await rclone(["deletefile", remote_join(serving_dir_path(remote), name)], call());
      pruned.push(name);
    }
  } catch (error) {
    log.warn(`publish: pruning old serving files failed (the next cycle tries again): ${(error as Error).message}`);
  }
  return pruned;
}
