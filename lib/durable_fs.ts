import fs from "node:fs";
import path from "node:path";

/**
 * Flushes a file's data, or a directory's entries (so that a rename or unlink in it survives a
 * crash), to disk. Opening read-only is enough for fsync on Linux, for files and directories alike.
 */
export function fsync_path(file_or_dir: string): void {
  const fd = fs.openSync(file_or_dir, "r");
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/** rename() then fsync the target's directory: readers see the old file or the new one. */
export function rename_durably(from: string, to: string): void {
  fs.renameSync(from, to);
  fsync_path(path.dirname(to));
}

/** Writes a small file whole or not at all. */
export function write_file_atomic(file: string, content: string): void {
  const temp = `${file}.tmp-${process.pid}`;
  fs.writeFileSync(temp, content);
  fsync_path(temp);
  rename_durably(temp, file);
}

export function read_json<T>(file: string): T | undefined {
  try {
    return JSON.parse(fs.readFileSync(file, "utf8")) as T;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw error;
  }
}
