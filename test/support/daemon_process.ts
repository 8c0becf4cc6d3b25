import { spawn, type ChildProcess } from "node:child_process";
import crypto from "node:crypto";
import { once } from "node:events";
import fs from "node:fs";
import path from "node:path";
import readline from "node:readline";
import type { TestContext } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { read_daemon_status, read_run_history, type RunRecord } from "../../daemon/run_history.js";
import { cli_path, make_sandbox, type Sandbox } from "./sandbox.js";

/** Polls `check` until it returns a value other than undefined/false, or throws naming `what`. */
export async function wait_until<T>(what: string, timeout_ms: number, check: () => T | undefined | false | Promise<T | undefined | false>): Promise<T> {
  const deadline = Date.now() + timeout_ms;
  while (true) {
    const value = await check();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeout_ms} ms waiting for ${what}`);
    await sleep(100);
  }
}

/** A child process whose stdout lines are collected, so a test can wait for one. */
class LineProcess {
  readonly lines: string[] = [];
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;

  constructor(readonly child: ChildProcess) {
    for (const stream of [child.stdout, child.stderr]) {
      if (stream) readline.createInterface({ input: stream, crlfDelay: Infinity }).on("line", (line) => this.lines.push(line));
    }
    this.exited = once(child, "exit").then(([code, signal]) => ({ code, signal }));
  }

  get pid(): number {
    return this.child.pid!;
  }

  wait_for_line(pattern: RegExp, timeout_ms: number, from_index = 0): Promise<string> {
    return wait_until(`a line matching ${pattern}`, timeout_ms, () => this.lines.slice(from_index).find((line) => pattern.test(line)));
  }

  /** Kills it if it still runs: the last line of a test's cleanup. */
  async kill(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    this.child.kill("SIGKILL");
    await this.exited;
  }
}

/**
 * `materia daemon` as systemd or an operator would start it. `tag` goes into its environment
 * (and so into every process it starts), which is how a test finds anything left behind.
 */
export class DaemonProcess extends LineProcess {
  constructor(env: NodeJS.ProcessEnv, readonly tag: string, cli = cli_path) {
    super(spawn(process.execPath, [cli, "daemon"], { env: { ...env, MATERIA_TEST_TAG: tag }, stdio: ["ignore", "pipe", "pipe"] }));
  }

  /** SIGTERM; resolves with the exit and how long it took (a stuck daemon is killed after `timeout_ms`). */
  async terminate(timeout_ms: number): Promise<{ code: number | null; signal: NodeJS.Signals | null; elapsed_ms: number }> {
    const started_ms = Date.now();
    this.child.kill("SIGTERM");
    // Unref'd: the child's own handle keeps the test alive while it runs, this timer must not after.
    const exit = await Promise.race([this.exited, sleep(timeout_ms, undefined, { ref: false })]);
    if (!exit) {
      await this.kill();
      throw new Error(`daemon still running ${timeout_ms} ms after SIGTERM`);
    }
    return { ...exit, elapsed_ms: Date.now() - started_ms };
  }
}

/** PIDs of live processes (zombies aside) whose environment holds MATERIA_TEST_TAG=`tag`. */
export function processes_tagged(tag: string): number[] {
  const needle = Buffer.from(`MATERIA_TEST_TAG=${tag}\0`);
  const pids: number[] = [];
  for (const entry of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (/\) Z /.test(fs.readFileSync(`/proc/${entry}/stat`, "utf8"))) continue;
      if (fs.readFileSync(`/proc/${entry}/environ`).includes(needle)) pids.push(Number(entry));
    } catch {
      // It exited while we looked.
    }
  }
  return pids;
}

/** Cleanup for a failed test: nothing a daemon started may outlive it. */
export function kill_tagged(tag: string): void {
  for (const pid of processes_tagged(tag)) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      // Already gone.
    }
  }
}

/**
 * A fake systemd notify socket: a unix datagram listener (Node cannot bind one, so a tiny
 * python3 process does), collecting each message systemd-notify sends, BARRIER=1 aside.
 */
export class NotifySocket {
  readonly path: string;
  private readonly listener: LineProcess;

  private constructor(dir: string) {
    this.path = path.join(dir, "notify.sock");
    const script = [
      "import json, socket, sys",
      "s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)",
      "s.bind(sys.argv[1])",
      "print('bound', flush=True)",
      "while True:",
      "    print(json.dumps(s.recv(65536).decode()), flush=True)",
    ].join("\n");
    this.listener = new LineProcess(spawn("python3", ["-c", script, this.path], { stdio: ["ignore", "pipe", "inherit"] }));
  }

  static async open(dir: string): Promise<NotifySocket> {
    const socket = new NotifySocket(dir);
    await socket.listener.wait_for_line(/^bound$/, 10_000);
    return socket;
  }

  /** Every message so far, oldest first, as its `NAME=value` lines joined by newlines. */
  get messages(): string[] {
    return this.listener.lines.filter((line) => line !== "bound").map((line) => JSON.parse(line) as string)
      .filter((message) => message !== "BARRIER=1");
  }

  wait_for(what: string, pattern: RegExp, timeout_ms: number, from_index = 0): Promise<string> {
    return wait_until(`notify message ${what}`, timeout_ms, () => this.messages.slice(from_index).find((m) => pattern.test(m)));
  }

  close(): Promise<void> {
    return this.listener.kill();
  }
}

/** GET `url`; its status, or undefined when nothing answers. */
export async function http_status(url: string, timeout_ms = 5_000): Promise<number | undefined> {
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(timeout_ms) });
    await response.arrayBuffer();
    return response.status;
  } catch {
    return undefined;
  }
}

/** GET `url`/healthz: its status and the commit the answering web process runs, or undefined when nothing answers. */
export async function healthz(url: string): Promise<{ status: number; commit?: string } | undefined> {
  try {
    const response = await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(5_000) });
    const body = await response.json() as { commit?: string };
    return { status: response.status, commit: body.commit };
  } catch {
    return undefined;
  }
}

/** STOP_TIMEOUT_S of the daemons daemon_in_sandbox starts. */
export const sandbox_stop_timeout_s = 10;

/** A sandbox, a fake NOTIFY_SOCKET and a daemon on short intervals; all of it removed after the test. */
export async function daemon_in_sandbox(t: TestContext, settings: Record<string, string> = {}) {
  const sandbox: Sandbox = make_sandbox({
    WEB_PORT: "0",
    PIPELINE_INTERVAL_S: "1",
    PIPELINE_BACKOFF_S: "1",
    STOP_TIMEOUT_S: String(sandbox_stop_timeout_s),
    SUBPROCESS_KILL_GRACE_MS: "1000",
    WEB_SHUTDOWN_GRACE_MS: "2000",
    // Three 1 s intervals plus a 1 s backoff would make the data stale after 4 s: one slow cycle
    // on a loaded machine. A test of staleness sets its own.
    STALE_AFTER_S: "3600",
    ...settings,
  });
  const notify = await NotifySocket.open(sandbox.dir);
  const tag = crypto.randomUUID();
  const daemon = new DaemonProcess({ ...sandbox.env, NOTIFY_SOCKET: notify.path }, tag);
  t.after(async () => {
    await daemon.kill();
    kill_tagged(tag);
    await notify.close();
    sandbox.cleanup();
  });
  const state_dir = sandbox.config.materia_state_dir;
  return {
    sandbox, notify, daemon, tag,
    status: () => read_daemon_status(state_dir),
    runs: (job?: string, outcome?: RunRecord["outcome"]) => read_run_history(state_dir)
      .filter((run) => (!job || run.job === job) && (!outcome || run.outcome === outcome)),
  };
}
