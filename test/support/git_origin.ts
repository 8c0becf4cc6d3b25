import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { promisify } from "node:util";
import { repo_root } from "../../lib/paths.js";

const run = promisify(execFile);

export const git = async (cwd: string, ...args: string[]) =>
  (await run("git", ["-c", "user.name=materia test", "-c", "user.email=test@materia.invalid", ...args],
    { cwd, timeout: 60_000 })).stdout.trim();

/**
 * The project as it is in this checkout (tracked and new files, nothing ignored), committed
 * into a fresh repository `work`, a bare `origin` cloned from it, and a `checkout` of origin
 * that shares node_modules and the Python venv and is built: what a production box holds.
 */
export async function make_origin_and_checkout(dir: string) {
  const work = path.join(dir, "work");
  const origin = path.join(dir, "origin.git");
  const checkout = path.join(dir, "checkout");
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
  await git(dir, "clone", "-q", origin, checkout);
  fs.symlinkSync(path.join(repo_root, "node_modules"), path.join(checkout, "node_modules"));
  fs.symlinkSync(path.join(repo_root, ".venv"), path.join(checkout, ".venv"));
  await run("npx", ["--no-install", "tsc", "-p", "tsconfig.json"], { cwd: checkout, timeout: 300_000 });
  return { work, origin, checkout };
}

/** A newer commit on the origin, as a deploy would push: `line` appended to `file` of `work`. Its short hash. */
export async function push_commit(work: string, origin: string, file: string, line: string): Promise<string> {
  fs.appendFileSync(path.join(work, file), `${line}\n`);
  await git(work, "commit", "-q", "-am", line);
  await git(work, "push", "-q", origin, "main");
  return git(work, "rev-parse", "--short=12", "HEAD");
}

/** The operator presses "Run now" on the admin page, as a browser would: Basic auth, the form's CSRF token. */
export async function press_run_now(web_url: string, admin_password: string): Promise<number> {
  const authorization = `Basic ${Buffer.from(`admin:${admin_password}`).toString("base64")}`;
  const page = await (await fetch(`${web_url}/admin`, { headers: { authorization } })).text();
  const csrf_token = /name="csrf_token" value="([^"]+)"/.exec(page)?.[1];
  assert.ok(csrf_token, "the admin page has the Run now form");
  const response = await fetch(`${web_url}/admin/run-now`, {
    method: "POST", redirect: "manual", headers: { authorization, "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({ csrf_token }).toString(),
  });
  return response.status;
}
