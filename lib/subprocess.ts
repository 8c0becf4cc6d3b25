import { spawn } from "node:child_process";
import fs from "node:fs";
import type { Readable } from "node:stream";
import { setTimeout as sleep } from "node:timers/promises";
import { proc_stat_fields } from "./proc_stat.js";

export interface SubprocessOptions {
  /** The bound of the run; may be left out only when `cancel` is a deadline (a job run's). */
  timeout_ms?: number;
  /** After SIGTERM to the group, how long before SIGKILL. */
  kill_grace_ms: number;
  /** The tail of stdout+stderr kept for the result; older output is dropped. */
  output_tail_bytes_max: number;
  /** A longer line is cut to this many bytes (and marked) before it is kept or passed on. */
  line_bytes_max: number;
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  on_line?: (line: string) => void;
  /** Called once the process runs, with its process group id (equal to its pid). */
  on_start?: (pgid: number) => void;
  /** Aborting kills the group as a timeout does; `timed_out` stays false. */
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

/**
 * True while any process of the group exists, zombies included (they are reaped soon), but for
 * zombies that are this process's own children: a subprocess started by a job thread that was
 * terminated stays one until this process exits, since the thread's event loop, which would have
 * reaped it, is gone; it runs nothing and takes no signal.
 */
export function process_group_alive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ESRCH") return false;
    throw error;
  }
  return fs.readdirSync("/proc").some((entry) => {
    const fields = /^\d+$/.test(entry) ? proc_stat_fields(Number(entry)) : undefined;
    // proc(5): field 3 is the state, 4 the parent, 5 the process group.
    return fields !== undefined && fields[5] === String(pgid) && !(fields[3] === "Z" && fields[4] === String(process.pid));
  });
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
  if (options.timeout_ms === undefined && !options.cancel) throw new Error(`run_subprocess ${bin}: no bound (timeout_ms or cancel)`);
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

  const tail = new OutputTail(options.output_tail_bytes_max);
  const take_line = (line: string) => {
    tail.add(line);
    options.on_line?.(line);
  };
  const stdout_chunks: Buffer[] = [];
  let stdout_bytes = 0;
  let stdout_overflowed = false;
  const line_streams = options.stdout_bytes_max === undefined ? [child.stdout!, child.stderr!] : [child.stderr!];
  const streams_closed = line_streams.map((stream) => read_lines(stream, options.line_bytes_max, take_line));
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
  const timer = options.timeout_ms === undefined ? undefined : setTimeout(() => {
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
  return { exit_code: code, signal, timed_out, output_tail: tail.text(), stdout: Buffer.concat(stdout_chunks).toString("utf8"), stdout_overflowed };
}

/** The last `bytes_max` bytes of `text` in UTF-8 (a character cut at the start is dropped). */
export function tail_bytes(text: string, bytes_max: number): string {
  const bytes = Buffer.from(text);
  return bytes.length <= bytes_max ? text : bytes.subarray(bytes.length - bytes_max).toString("utf8").replace(/^\uFFFD+/, "");
}

/** The first `bytes_max` bytes of `text` in UTF-8 (a character cut at the end is dropped). */
export function head_bytes(text: string, bytes_max: number): string {
  const bytes = Buffer.from(text);
  return bytes.length <= bytes_max ? text : bytes.subarray(0, bytes_max).toString("utf8").replace(/\uFFFD+$/, "");
}

/** The newest `bytes_max` bytes of a subprocess's output, whole lines where they fit. */
class OutputTail {
  private lines: Buffer[] = [];
  private bytes = 0;

  constructor(private readonly bytes_max: number) {}

  add(line: string): void {
    const bytes = Buffer.from(`${line}\n`);
    this.lines.push(bytes);
    this.bytes += bytes.length;
    while (this.bytes > this.bytes_max && this.lines.length > 0) {
      const oldest = this.lines[0]!;
      const excess = this.bytes - this.bytes_max;
      // Only the oldest line's end still fits: keep that end (the start of a cut UTF-8 character is dropped).
      if (oldest.length > excess) this.lines[0] = oldest.subarray(excess);
      else this.lines.shift();
      this.bytes -= Math.min(oldest.length, excess);
    }
  }

  text(): string {
    return Buffer.concat(this.lines).toString("utf8").replace(/^\uFFFD+/, "");
  }
}

/**
 * Calls `on_line` for each line of `stream`, ended as readline ends lines (\n, \r\n, or a lone \r,
 * which progress bars use), a line longer than `line_bytes_max` cut to that many bytes and marked:
 * readline would hold a line of any length in memory. Resolves when the stream has closed.
 */
function read_lines(stream: Readable, line_bytes_max: number, on_line: (line: string) => void): Promise<void> {
  let parts: Buffer[] = [];
  let kept_bytes = 0;
  let cut = false;
  const end_line = () => {
    const line = Buffer.concat(parts).toString("utf8");
    on_line(cut ? `${line} … (line cut at ${line_bytes_max} bytes)` : line);
    parts = [];
    kept_bytes = 0;
    cut = false;
  };
  const keep = (bytes: Buffer) => {
    const room = line_bytes_max - kept_bytes;
    if (bytes.length > room) cut = true;
    const kept = bytes.subarray(0, Math.max(0, room));
    if (kept.length > 0) parts.push(kept);
    kept_bytes += kept.length;
  };
  const cr = 13;
  const lf = 10;
  let after_cr = false;
  stream.on("data", (chunk: Buffer) => {
    let start = 0;
    for (let at = 0; at < chunk.length; at++) {
      const byte = chunk[at];
      if (byte !== cr && byte !== lf) continue;
      // The \n of a \r\n (perhaps in the next chunk) ends no second line.
      if (!(byte === lf && after_cr && at === start)) {
        keep(chunk.subarray(start, at));
        end_line();
      }
      after_cr = byte === cr;
      start = at + 1;
    }
    if (start < chunk.length) {
      keep(chunk.subarray(start));
      after_cr = false;
    }
  });
  return new Promise<void>((resolve) => stream.once("close", () => {
    if (kept_bytes > 0 || cut) end_line();
    resolve();
  }));
}
