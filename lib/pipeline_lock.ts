import fs from "node:fs";
import path from "node:path";

export class PipelineBusyError extends Error {
  constructor(holder_pid: number) {
    super(`pipeline already running (pid ${holder_pid})`);
  }
}

/** True while a process with this PID exists (EPERM: it exists, owned by another user). */
export function pid_alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

/**
 * A PID file created with O_EXCL: the kernel makes "create if absent" atomic, so two
 * pipeline runs never overlap. A file left by a dead process is taken over. Returns the
 * release function.
 */
export function acquire_pipeline_lock(state_dir: string): () => void {
  fs.mkdirSync(state_dir, { recursive: true });
  const lock_path = path.join(state_dir, "pipeline.lock");
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      fs.writeFileSync(lock_path, `${process.pid}\n`, { flag: "wx" });
      return () => {
        if (read_holder(lock_path) === process.pid) fs.rmSync(lock_path, { force: true });
      };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
    }
    const holder = read_holder(lock_path);
    if (holder === undefined && just_created(lock_path)) throw new PipelineBusyError(-1); // its writer is between open and write
    if (holder !== undefined && holder !== process.pid && pid_alive(holder)) throw new PipelineBusyError(holder);
    // Stale (its process is gone) or our own leftover: remove it and try once more.
    fs.rmSync(lock_path, { force: true });
  }
  throw new PipelineBusyError(read_holder(lock_path) ?? -1);
}

function read_holder(lock_path: string): number | undefined {
  try {
    const pid = Number.parseInt(fs.readFileSync(lock_path, "utf8"), 10);
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

function just_created(lock_path: string): boolean {
  const writer_window_ms = 5_000;
  try {
    return Date.now() - fs.statSync(lock_path).mtimeMs < writer_window_ms;
  } catch {
    return false;
  }
}
