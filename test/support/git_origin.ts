import { execFile } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { promisify } from "node:util";
import { repo_root } from "../../lib/paths.js";

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
