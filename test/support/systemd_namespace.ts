import { execFile, spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { proc_stat_fields } from "../../lib/proc_stat.js";
import { repo_root } from "../../lib/paths.js";
import { wait_until } from "./daemon_process.js";

// A real systemd (PID 1 of a private PID + mount namespace) for tests of the real units. How it
// boots without touching the host (THE TRAP: a /tmp-wiping systemd-tmpfiles) is in
// systemd_boot.sh. Use:
//
//   const ns = await boot_systemd();          // skip first where systemd_namespace_refused() says why
//   t.after(() => ns.kill());                 // always: SIGKILL of its PID 1 ends every process in it
//   await ns.run(["useradd", …]);             // any command inside, as root
//   await ns.systemctl("start", "x.service");

const boot_script = path.join(repo_root, "test/support/systemd_boot.sh");
const target = "materia-test.target";
const path_inside = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

export interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  /** Written to the command's stdin. */
  input?: string;
  timeout_ms?: number;
  /** Added to the command's (otherwise minimal) environment. */
  env?: Record<string, string>;
}

export interface BootOptions {
  /** Host paths bound into the namespace (`to` inside): the only host paths it can write, unless read_only. */
  binds?: { from: string; to: string; read_only?: boolean }[];
  /** Bound on everything the namespace writes outside those binds (a tmpfs), in bytes. */
  layers_size_bytes_max?: number;
  boot_timeout_ms?: number;
}

/** Why this kernel refuses the namespace (then tests skip, saying so), or undefined when it allows it. */
export async function systemd_namespace_refused(): Promise<string | undefined> {
  const probe = await run_on_host("unshare", ["--pid", "--fork", "--mount", "--uts", "--ipc", "--mount-proc", "true"], 30_000);
  if (probe.code === 0) return undefined;
  return `the kernel refuses a private PID + mount namespace (unshare: ${probe.stderr.trim() || `exit ${probe.code}`})`;
}

export class SystemdNamespace {
  private killed = false;
  private pid_1: number | undefined;

  private constructor(
    /** A host directory of the test's own: the boot log, the overlay's mount point. */
    readonly dir: string,
    private readonly unshare: ChildProcess,
    private readonly unshare_exited: Promise<unknown>,
    private readonly cgroup_dirs: string[],
  ) {}

  /** PID 1 of the namespace, as the host sees it: nsenter's target. */
  get pid(): number {
    if (this.pid_1 === undefined) throw new Error("the namespace has no PID 1 yet");
    return this.pid_1;
  }

  static async boot(options: BootOptions = {}): Promise<SystemdNamespace> {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "materia-systemd-"));
    fs.mkdirSync(path.join(dir, "root"));
    fs.mkdirSync(path.join(dir, "layers"));
    const cgroup_name = path.basename(dir);
    const binds = (options.binds ?? []).map(({ from, to, read_only }) => {
      if (from.includes("=") || !path.isAbsolute(from) || !path.isAbsolute(to)) throw new Error(`bad bind ${from} -> ${to}`);
      return `${read_only ? "ro" : "rw"}=${from}=${to}`;
    });
    const log_fd = fs.openSync(path.join(dir, "boot.log"), "a");
    // setpriv --pdeathsig: if the test process dies, unshare dies, and --kill-child takes PID 1 with it.
    const unshare = spawn("setpriv", ["--pdeathsig", "KILL", "unshare", "--pid", "--fork", "--kill-child=SIGKILL",
      "--mount", "--uts", "--ipc", "--mount-proc",
      "sh", boot_script, dir, fs.readlinkSync("/proc/self/ns/mnt"), cgroup_name, target,
      String(options.layers_size_bytes_max ?? 4 * 1024 ** 3), ...binds], { stdio: ["ignore", log_fd, log_fd] });
    fs.closeSync(log_fd);
    const ns = new SystemdNamespace(dir, unshare, once(unshare, "exit"),
      tracking_hierarchies().map((hierarchy) => path.join(hierarchy, cgroup_name)));
    const boot_log = () => fs.readFileSync(path.join(dir, "boot.log"), "utf8").slice(-4000);
    const still_booting = () => {
      if (unshare.exitCode !== null || unshare.signalCode !== null) throw new Error(`the namespace's systemd exited:\n${boot_log()}`);
    };
    try {
      ns.pid_1 = await wait_until("PID 1 of the namespace", 10_000, () => {
        still_booting();
        return child_of(unshare.pid!);
      });
      await wait_until("systemd to finish booting", options.boot_timeout_ms ?? 60_000, async () => {
        still_booting();
        const state = (await ns.systemctl("is-system-running")).stdout.trim();
        return ["running", "degraded"].includes(state);
      });
      return ns;
    } catch (error) {
      await ns.kill();
      throw error;
    }
  }

  /** Runs `argv` inside, as root, with a minimal environment; never throws for a failed command. */
  run(argv: string[], options: RunOptions = {}): Promise<Run> {
    const env = { PATH: path_inside, LANG: "C.UTF-8", SYSTEMD_PAGER: "", SYSTEMD_COLORS: "0", ...options.env };
    return run_on_host("nsenter", ["-t", String(this.pid), "-m", "-p", "-u", "-i", "--", ...argv],
      options.timeout_ms ?? 120_000, env, options.input);
  }

  /** Like run, but a failure throws, naming the command and its output. */
  async check(argv: string[], options: RunOptions = {}): Promise<string> {
    const result = await this.run(argv, options);
    if (result.code !== 0) throw new Error(`${argv.join(" ")} exited ${result.code}:\n${result.stdout}${result.stderr}`);
    return result.stdout;
  }

  systemctl(...args: string[]): Promise<Run> {
    return this.run(["systemctl", "--no-pager", ...args]);
  }

  journalctl(...args: string[]): Promise<Run> {
    return this.run(["journalctl", "--no-pager", ...args]);
  }

  /**
   * Now, as journalctl's --since understands it (microseconds): pass it to journal_since() to read
   * only what comes later. Not a cursor: systemd 252's journalctl skips entries after
   * --after-cursor when -p is given too.
   */
  async journal_mark(): Promise<string> {
    return `@${(await this.check(["date", "+%s.%6N"])).trim()}`;
  }

  /** Journal entries since `mark`, filtered by `args` (e.g. "-u", unit, "-p", "err"), as `-o cat` lines. */
  async journal_since(mark: string, ...args: string[]): Promise<string[]> {
    const output = await this.check(["journalctl", "--no-pager", "--quiet", "-o", "cat", `--since=${mark}`, ...args]);
    return output.split("\n").filter((line) => line !== "");
  }

  /** `systemctl show` of the given properties, e.g. { ActiveState: "active", NRestarts: "0" }. */
  async show(unit: string, properties: string[]): Promise<Record<string, string>> {
    const output = await this.check(["systemctl", "show", unit, ...properties.map((p) => `--property=${p}`)]);
    return Object.fromEntries(output.trim().split("\n").filter(Boolean).map((line) => {
      const at = line.indexOf("=");
      return [line.slice(0, at), line.slice(at + 1)];
    }));
  }

  /**
   * Samples `systemctl show` of `properties` every `interval_ms` until stop(), which returns every
   * sample: what a unit went through during an action (a reload that must never show "failed").
   */
  watch_unit(unit: string, properties: string[], interval_ms = 250): { stop(): Promise<Record<string, string>[]> } {
    const samples: Record<string, string>[] = [];
    let watching = true;
    const loop = (async () => {
      while (watching) {
        samples.push(await this.show(unit, properties));
        await sleep(interval_ms);
      }
    })();
    return {
      stop: async () => {
        watching = false;
        await loop;
        return samples;
      },
    };
  }

  write_file(file: string, content: string, mode = "0644", owner = "root:root"): Promise<string> {
    return this.check(["sh", "-c", 'mkdir -p "$(dirname "$1")" && cat > "$1" && chmod "$2" "$1" && chown "$3" "$1"',
      "write_file", file, mode, owner], { input: content });
  }

  read_file(file: string): Promise<string> {
    return this.check(["cat", file]);
  }

  /**
   * Ends the namespace: SIGKILL of its PID 1 (which ignores SIGTERM) ends every process in it,
   * and its mounts go with it. Then removes its cgroups and the test directory. Idempotent.
   */
  async kill(): Promise<void> {
    if (this.killed) return;
    this.killed = true;
    try {
      process.kill(this.pid_1 ?? this.unshare.pid!, "SIGKILL");
    } catch {
      // Already gone.
    }
    if (this.unshare.exitCode === null && this.unshare.signalCode === null) {
      await Promise.race([this.unshare_exited, sleep(10_000, undefined, { ref: false })]);
    }
    await remove_cgroups(this.cgroup_dirs);
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

export const boot_systemd = (options?: BootOptions) => SystemdNamespace.boot(options);

function run_on_host(bin: string, args: string[], timeout_ms: number, env?: NodeJS.ProcessEnv, input?: string): Promise<Run> {
  return new Promise((resolve) => {
    const child = execFile(bin, args, { env, timeout: timeout_ms, killSignal: "SIGKILL", maxBuffer: 64 * 1024 * 1024 },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === "number" ? error.code : 1) : 0;
        const timed_out = error && error.killed ? `\n(killed after ${timeout_ms} ms)` : "";
        resolve({ code, stdout, stderr: stderr + timed_out });
      });
    // A command that exits without reading its stdin closes the pipe: that EPIPE is not an error.
    child.stdin!.on("error", () => undefined).end(input ?? "");
  });
}

/** The one child of `parent` (unshare's forked PID 1), once it exists. */
function child_of(parent: number): number | undefined {
  for (const entry of fs.readdirSync("/proc")) {
    if (/^\d+$/.test(entry) && proc_stat_fields(Number(entry))?.[4] === String(parent)) return Number(entry);
  }
  return undefined;
}

/** Where the namespace's systemd tracks its units on the host: as systemd_boot.sh picks them. */
function tracking_hierarchies(): string[] {
  return fs.readFileSync("/proc/self/mountinfo", "utf8").split("\n").flatMap((line) => {
    const [before, after] = line.split(" - ");
    const mount_point = before?.split(" ")[4];
    const [fs_type, , options] = after?.split(" ") ?? [];
    if (!mount_point || !/^\/sys\/fs\/cgroup(\/|$)/.test(mount_point)) return [];
    return fs_type === "cgroup2" || /(^|,)name=systemd(,|$)/.test(options ?? "") ? [mount_point] : [];
  });
}

/** rmdir every cgroup below each dir, deepest first; its processes may take a moment to be reaped. */
async function remove_cgroups(dirs: string[]): Promise<void> {
  const deadline_ms = Date.now() + 10_000;
  for (const dir of dirs) {
    while (fs.existsSync(dir)) {
      const nested = (fs.readdirSync(dir, { recursive: true }) as string[])
        .map((entry) => path.join(dir, entry))
        .filter((entry) => fs.statSync(entry, { throwIfNoEntry: false })?.isDirectory())
        .sort((a, b) => b.length - a.length);
      try {
        for (const cgroup of [...nested, dir]) fs.rmdirSync(cgroup);
      } catch (error) {
        if (Date.now() > deadline_ms) throw new Error(`cannot remove the namespace's cgroup ${dir}: ${(error as Error).message}`);
        await sleep(100);
      }
    }
  }
}
