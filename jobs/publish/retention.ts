import type { RemoteEntry } from "../../lib/rclone.js";

const serving_file_pattern = /^[0-9a-f]{64}\.duckdb$/;

/**
 * The published serving files to delete: all but the current one and the `keep - 1` newest others
 * (by modification time, which rclone carries over from the local file: its export time). A
 * follower that read the previous manifest may still be downloading the previous file, which is
 * why SERVING_PUBLISH_KEEP is at least 2. Names that are not ours are never touched.
 */
export function files_to_prune(entries: readonly RemoteEntry[], current_file_name: string, keep: number): string[] {
  if (!Number.isInteger(keep) || keep < 2) throw new Error(`keep must be a whole number of at least 2, not ${keep}`);
  return entries
    .filter((entry) => !entry.IsDir && serving_file_pattern.test(entry.Name) && entry.Name !== current_file_name)
    .sort((a, b) => Date.parse(b.ModTime) - Date.parse(a.ModTime) || a.Name.localeCompare(b.Name))
    .slice(keep - 1)
    .map((entry) => entry.Name);
}
