import fs from "node:fs";
import path from "node:path";

/** fsync a directory so that a rename or unlink in it survives a crash. */
export function fsync_dir(dir: string): void {
  const fd = fs.openSync(dir, "r");
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

export function fsync_file(file: string): void {
  const fd = fs.openSync(file, "r+");
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/** rename() then fsync the target's directory: readers see the old file or the new one. */
export function rename_durably(from: string, to: string): void {
  fs.renameSync(from, to);
  fsync_dir(path.dirname(to));
}

/** Writes a small file whole or not at all. */
export function write_file_atomic(file: string, content: string): void {
  const temp = `${file}.tmp-${process.pid}`;
  fs.writeFileSync(temp, content);
  fsync_file(temp);
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
