import { execFile } from "node:child_process";
import crypto from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import type { TestContext } from "node:test";
import { promisify } from "node:util";
import { repo_root } from "../../lib/paths.js";
import { DaemonProcess, kill_tagged } from "./daemon_process.js";
import { make_sandbox, type Sandbox } from "./sandbox.js";

const run = promisify(execFile);

export const git = async (cwd: string, ...args: string[]) =>
  (await run("git", ["-c", "user.name=materia test", "-c", "user.email=test@materia.invalid", ...args],
    { cwd, timeout: 60_000 })).stdout.trim();

/** A bare `origin` the daemon updates from, and the `work` clone where a test makes new commits. */
export interface GitOrigin {
  work: string;
  origin: string;
  /** Commits what `change` did in `work` and pushes it to origin; the new commit, short as the daemon logs it. */
  push_commit(message: string, change: (work: string) => void): Promise<string>;
}

/**
 * The project as it is in this checkout (tracked and new files, nothing ignored), committed into
 * a fresh repository `dir/work`, and a bare `dir/origin.git` cloned from it.
 */
export async function make_origin(dir: string): Promise<GitOrigin> {
  const work = path.join(dir, "work");
  const origin = path.join(dir, "origin.git");
  const listed = await run("git", ["ls-files", "-z", "--cached", "--others", "--exclude-standard"],
    { cwd: repo_root, maxBuffer: 16 * 1024 * 1024 });
  for (const file of listed.stdout.split("\0").filter(Boolean)) {
    const from = path.join(repo_root, file);
    if (!fs.existsSync(from) || !fs.statSync(from).isFile()) continue; // deleted, not yet committed
    fs.mkdirSync(path.dirname(path.join(work, file)), { recursive: true });
    fs.copyFileSync(from, path.join(work, file));
  }
  await git(work, "init", "-q", "-b", "main");
  await git(work, "add", "-A");
  await git(work, "commit", "-q", "-m", "base");
  await git(dir, "clone", "-q", "--bare", work, origin);
  return {
    work,
    origin,
    async push_commit(message, change) {
      change(work);
      await git(work, "add", "-A");
      await git(work, "commit", "-q", "-m", message);
      await git(work, "push", "-q", origin, "main");
      return git(work, "rev-parse", "--short=12", "HEAD");
    },
  };
}

/**
 * A clone of `origin` in `checkout` that shares this checkout's node_modules and Python venv
 * (symlinks: read them only) and is built: what a production box holds.
 */
export async function clone_linked_checkout(origin: string, checkout: string): Promise<void> {
  await git(path.dirname(checkout), "clone", "-q", origin, checkout);
  fs.symlinkSync(path.join(repo_root, "node_modules"), path.join(checkout, "node_modules"));
  fs.symlinkSync(path.join(repo_root, ".venv"), path.join(checkout, ".venv"));
  await run("npx", ["--no-install", "tsc", "-p", "tsconfig.json"], { cwd: checkout, timeout: 300_000 });
}

/** A sandbox whose daemon runs from a built checkout of a fresh git origin, as a production box does. */
export interface DeployedCheckout {
  sandbox: Sandbox;
  origin: GitOrigin;
  /** The built clone the daemon runs from. */
  checkout: string;
  /** In the environment of every process of the daemon (processes_tagged, kill_tagged). */
  tag: string;
  /** Starts the daemon from the checkout, in `env` (the sandbox's by default); it is killed after the test. */
  start_daemon(env?: NodeJS.ProcessEnv): DaemonProcess;
}

/**
 * A private dir named after `name`, a sandbox in it with MATERIA_GIT_REF=origin/main (`settings`
 * win), an origin made from this checkout and a built clone of it; all removed after `t`, every
 * daemon started killed first.
 */
export async function deployed_checkout(t: TestContext, name: string, settings: Record<string, string>): Promise<DeployedCheckout> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `materia-${name}-`));
  const sandbox = make_sandbox({ WEB_PORT: "0", MATERIA_GIT_REF: "origin/main", ...settings });
  const tag = crypto.randomUUID();
  const daemons: DaemonProcess[] = [];
  t.after(async () => {
    for (const daemon of daemons) await daemon.kill();
    kill_tagged(tag);
    sandbox.cleanup();
    fs.rmSync(dir, { recursive: true, force: true });
  });
  const origin = await make_origin(dir);
  const checkout = path.join(dir, "checkout");
  await clone_linked_checkout(origin.origin, checkout);
  return {
    sandbox, origin, checkout, tag,
    start_daemon(env = sandbox.env) {
      const daemon = new DaemonProcess(env, tag, path.join(checkout, "dist/cli/materia.js"));
      daemons.push(daemon);
      return daemon;
    },
  };
}
