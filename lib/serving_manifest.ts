import crypto from "node:crypto";
import fs from "node:fs";
import { setImmediate as yield_to_loop } from "node:timers/promises";
import { z } from "zod";
import { remote_join } from "./rclone.js";

// The contract between the publishing daemon (jobs/publish) and the web nodes that follow it
// (web/follow.ts), on an rclone remote:
//   serving/<sha256>.duckdb   every published serving file, named by its content, never changed
//   serving/current.json      the manifest: which of them is current; written last, so it never
//                             names a file that is not there yet

export const manifest_format = 1;

export const serving_manifest_schema = z.object({
  format: z.literal(manifest_format),
  release_id: z.string().min(1),
  sha256: z.string().regex(/^[0-9a-f]{64}$/, "must be 64 lowercase hex digits"),
  size_bytes: z.number().int().positive(),
  /** When export_serving built the file (its export_info.exported_at). */
  exported_at: z.iso.datetime(),
  /**
   * When the publishing daemon last confirmed that this is its current file (each cycle's publish
   * step rewrites the manifest): a follower's dead-man's switch, as a cycle is the daemon's.
   */
  confirmed_at: z.iso.datetime(),
});

export type ServingManifest = z.infer<typeof serving_manifest_schema>;

/** A manifest is a few hundred bytes; anything much larger is not one. */
export const manifest_bytes_max = 64 * 1024;

export const manifest_path = (remote: string) => remote_join(remote, "serving/current.json");
export const serving_dir_path = (remote: string) => remote_join(remote, "serving");
export const serving_file_name = (sha256: string) => `${sha256}.duckdb`;
export const serving_file_path = (remote: string, sha256: string) => remote_join(serving_dir_path(remote), serving_file_name(sha256));

/** The manifest in `text`, or an error naming what is wrong with it. */
export function parse_manifest(text: string): ServingManifest {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new Error("the manifest is not JSON");
  }
  const parsed = serving_manifest_schema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new Error(`the manifest's ${issue.path.join(".") || "content"} ${issue.message}`);
  }
  return parsed.data;
}

/** Read per step: small enough that a step never holds the event loop for long (~3 ms). */
const hash_chunk_bytes = 1024 * 1024;

/**
 * sha256 and size of a file. Synchronous reads in chunks with a turn of the event loop between
 * them: an async read would queue on libuv's threadpool behind the web's DuckDB queries.
 */
export async function file_digest(file: string): Promise<{ sha256: string; size_bytes: number }> {
  const hash = crypto.createHash("sha256");
  const buffer = Buffer.allocUnsafe(hash_chunk_bytes);
  const fd = fs.openSync(file, "r");
  let size_bytes = 0;
  try {
    for (;;) {
      const read = fs.readSync(fd, buffer, 0, buffer.length, size_bytes);
      if (read === 0) break;
      hash.update(buffer.subarray(0, read));
      size_bytes += read;
      await yield_to_loop();
    }
  } finally {
    fs.closeSync(fd);
  }
  return { sha256: hash.digest("hex"), size_bytes };
}
