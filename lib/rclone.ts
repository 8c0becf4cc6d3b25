import { run_subprocess } from "./subprocess.js";

// rclone as a subprocess: the one client of object storage (R2 in production, a directory or a
// local `rclone serve` in tests), as the landing backup uses it. Every call runs in a process
// group of its own, bounded by its caller's deadline (TERM, then KILL of the group).

export interface RcloneCall {
  /** What the call is bounded by: the caller's remaining time. */
  timeout_ms: number;
  kill_grace_ms: number;
  output_tail_bytes_max: number;
  cancel?: AbortSignal;
  on_start?: (pgid: number) => void;
}

export class RcloneError extends Error {
  constructor(message: string, readonly not_found: boolean) {
    super(message);
  }
}

/**
 * rclone's exit codes 3 (directory not found) and 4 (file not found): the object is missing,
 * as opposed to a remote that did not answer (1, 5 and others).
 */
const not_found_exit_codes: ReadonlySet<number> = new Set([3, 4]);

/**
 * `--retries 1`: our caller is the retry (the next cycle, the next poll), and rclone's default of
 * 3 whole-operation retries would spend the caller's bound on one unreachable remote. `-q` leaves
 * errors alone on stderr, so the error line is rclone's own reason.
 */
const common_flags = ["-q", "--retries", "1", "--low-level-retries", "2"];

/**
 * Runs `rclone <args>`; resolves with its stdout (bounded by `stdout_bytes_max`) on exit 0, throws
 * an RcloneError naming the operation and rclone's last error line otherwise.
 */
export async function rclone(args: string[], call: RcloneCall, stdout_bytes_max = 0): Promise<string> {
  const what = `rclone ${args[0]}`;
  if (call.cancel?.aborted) throw new RcloneError(`${what}: cancelled`, false);
  const result = await run_subprocess("rclone", [...common_flags, ...args], {
    timeout_ms: call.timeout_ms,
    kill_grace_ms: call.kill_grace_ms,
    output_tail_bytes_max: call.output_tail_bytes_max,
    cancel: call.cancel,
    on_start: call.on_start,
    stdout_bytes_max,
  });
  if (result.timed_out) throw new RcloneError(`${what} timed out after ${call.timeout_ms} ms`, false);
  if (call.cancel?.aborted) throw new RcloneError(`${what}: cancelled`, false);
  if (result.stdout_overflowed) throw new RcloneError(`${what}: answered more than ${stdout_bytes_max} bytes`, false);
  if (result.exit_code !== 0) {
    const last_line = result.output_tail.trim().split("\n").at(-1)?.replace(/^\d{4}\/\d\d\/\d\d \d\d:\d\d:\d\d /, "") ?? "";
    const code = result.exit_code ?? result.signal;
    throw new RcloneError(`${what} failed (exit ${code}): ${last_line || "no message"}`,
      result.exit_code !== null && not_found_exit_codes.has(result.exit_code));
  }
  return result.stdout;
}

/** `remote` + "/" + `name`, where `remote` is a directory, `name:` or `name:bucket/prefix`. */
export function remote_join(remote: string, name: string): string {
  return remote.endsWith(":") || remote.endsWith("/") ? `${remote}${name}` : `${remote}/${name}`;
}

/** One entry of `rclone lsjson`. */
export interface RemoteEntry {
  Name: string;
  Size: number;
  ModTime: string;
  IsDir: boolean;
}

/** Bound on a listing's JSON: the serving dir holds SERVING_PUBLISH_KEEP files and a manifest (~200 bytes each). */
const listing_bytes_max = 1024 * 1024;

/** The object at `remote_path` (size, modification time), or undefined when there is none. */
export async function remote_stat(remote_path: string, call: RcloneCall): Promise<RemoteEntry | undefined> {
  try {
    return JSON.parse(await rclone(["lsjson", "--stat", remote_path], call, listing_bytes_max)) as RemoteEntry;
  } catch (error) {
    if (error instanceof RcloneError && error.not_found) return undefined;
    throw error;
  }
}

/** The files directly in `remote_dir`; none when it does not exist. */
export async function remote_files(remote_dir: string, call: RcloneCall): Promise<RemoteEntry[]> {
  try {
    return JSON.parse(await rclone(["lsjson", "--files-only", remote_dir], call, listing_bytes_max)) as RemoteEntry[];
  } catch (error) {
    if (error instanceof RcloneError && error.not_found) return [];
    throw error;
  }
}
