import { spawn } from "node:child_process";
import readline from "node:readline";
import { setTimeout as sleep } from "node:timers/promises";

export interface SubprocessOptions {
  timeout_ms: number;
  /** After SIGTERM to the group, how long before SIGKILL. */
  kill_grace_ms: number;
  /** The tail of stdout+stderr kept for the result; older output is dropped. */
  output_tail_bytes_max: number;
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  on_line?: (line: string) => void;
  /** Called once the process runs, with its process group id (equal to its pid). */
  on_start?: (pgid: number) => void;
  /** Aborting kills the group as a timeout does. */
  cancel?: AbortSignal;
  /**
   * Set: stdout is the program's answer (JSON, a file's content), kept whole in `stdout` up to
   * this many bytes and kept out of the tail, which then holds stderr only; more kills the group.
   */
  stdout_bytes_max?: number;
}

export interface SubprocessResult {
  exit_code: number | null;
  signal: NodeJS.Signals | null;
  timed_out: boolean;
  output_tail: string;
  /** What stdout said, when `stdout_bytes_max` was set ("" otherwise). */
  stdout: string;
  /** stdout passed `stdout_bytes_max`, and the group was killed. */
  stdout_overflowed: boolean;
}

/** True while any process of the group exists (zombies included). */
export function process_group_alive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ESRCH") return false;
    throw error;
  }
}

function signal_group(pgid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pgid, signal);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ESRCH") throw error;
  }
}

async function wait_group_gone(pgid: number, timeout_ms: number): Promise<boolean> {
  const deadline = Date.now() + timeout_ms;
  while (process_group_alive(pgid)) {
    if (Date.now() >= deadline) return false;
    await sleep(20);
  }
  return true;
}

/**
 * TERM the whole group, KILL it after `kill_grace_ms`, and confirm that no process of it is
 * left. Throws if one survives KILL (a process in uninterruptible sleep): the caller must not
 * go on as if the group were gone.
 */
export async function kill_process_group(pgid: number, kill_grace_ms: number): Promise<void> {
  if (!process_group_alive(pgid)) return;
  signal_group(pgid, "SIGTERM");
  if (await wait_group_gone(pgid, kill_grace_ms)) return;
  signal_group(pgid, "SIGKILL");
  const kill_wait_ms = 2_000;
  if (await wait_group_gone(pgid, kill_wait_ms)) return;
  throw new Error(`process group ${pgid} survived SIGKILL for ${kill_wait_ms} ms`);
}

/**
 * Runs `bin` in a process group of its own, stdin closed, output forwarded line by line.
 * Resolves when the process has exited and no process of its group is left (leftovers
 * are killed). A spawn failure rejects; a non-zero exit or a timeout resolves and is
 * the caller's to judge.
 */
export async function run_subprocess(bin: string, args: string[], options: SubprocessOptions): Promise<SubprocessResult> {
  const child = spawn(bin, args, {
    cwd: options.cwd,
    env: options.env,
    detached: true,
    stdio: ["ignore", "pipe", "pipe"],
  });
  await new Promise<void>((resolve, reject) => {
    child.once("spawn", resolve);
    child.once("error", (error) => reject(new Error(`cannot start ${bin}: ${error.message}`)));
  });
  const pgid = child.pid!;
  options.on_start?.(pgid);

  let tail = "";
  const take_line = (line: string) => {
    tail += line + "\n";
    if (tail.length > options.output_tail_bytes_max) tail = tail.slice(tail.length - options.output_tail_bytes_max);
    options.on_line?.(line);
  };
  const stdout_chunks: Buffer[] = [];
  let stdout_bytes = 0;
  let stdout_overflowed = false;
  const line_streams = options.stdout_bytes_max === undefined ? [child.stdout!, child.stderr!] : [child.stderr!];
  const streams_closed = line_streams.map((stream) => {
    const lines = readline.createInterface({ input: stream, crlfDelay: Infinity });
    lines.on("line", take_line);
    return new Promise<void>((resolve) => lines.once("close", resolve));
  });
  if (options.stdout_bytes_max !== undefined) {
    const stdout_bytes_max = options.stdout_bytes_max;
    child.stdout!.on("data", (chunk: Buffer) => {
      stdout_bytes += chunk.length;
      if (stdout_bytes > stdout_bytes_max) {
        if (!stdout_overflowed) stop();
        stdout_overflowed = true;
      } else stdout_chunks.push(chunk);
    });
    streams_closed.push(new Promise<void>((resolve) => child.stdout!.once("close", resolve)));
  }

  let timed_out = false;
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once("exit", (code, signal) => resolve({ code, signal })));
  const stop = () => {
    kill_process_group(pgid, options.kill_grace_ms).catch((error) => take_line(`materia: ${error.message}`));
  };
  const timer = setTimeout(() => {
    timed_out = true;
    stop();
  }, options.timeout_ms);
  options.cancel?.addEventListener("abort", stop, { once: true });
  const { code, signal } = await exited;
  clearTimeout(timer);
  options.cancel?.removeEventListener("abort", stop);
  // The leader is gone, but a descendant may still hold the group (and our pipes) open.
  await kill_process_group(pgid, options.kill_grace_ms);
  await Promise.all(streams_closed);
  return { exit_code: code, signal, timed_out, output_tail: tail, stdout: Buffer.concat(stdout_chunks).toString("utf8"), stdout_overflowed };
}
