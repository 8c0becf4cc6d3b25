import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import crypto from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { repo_root } from "../lib/paths.js";

// infra/bootstrap.sh in --root mode: every file it would write lands in a temp dir, and what it
// would do to the host (useradd, chown, npm, systemctl) is printed instead. The origin it
// clones is a temp git repo holding this checkout's infra/ on branch main.

const bootstrap_path = path.join(repo_root, "infra/bootstrap.sh");
const template_path = path.join(repo_root, "infra/materia.env.example");
const units = ["materia-web.socket", "materia-supervisor.service", "materia-backup.service", "materia-backup.timer", "materia-alert@.service"];

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function run(bin: string, args: string[], cwd?: string): Promise<Run> {
  return new Promise((resolve) => {
    execFile(bin, args, { cwd, timeout: 60_000 }, (error, stdout, stderr) => {
      resolve({ code: error ? (typeof error.code === "number" ? error.code : 1) : 0, stdout, stderr });
    });
  });
}

async function git(cwd: string, ...args: string[]): Promise<string> {
  const result = await run("git", ["-c", "user.name=materia test", "-c", "user.email=test@materia.invalid", ...args], cwd);
  assert.equal(result.code, 0, `git ${args.join(" ")}: ${result.stderr}`);
  return result.stdout.trim();
}

function bootstrap(...args: string[]): Promise<Run> {
  return run("sh", [bootstrap_path, ...args]);
}

/** Every entry below `dir` with its type, mode and content hash: what "the same tree" means. */
function snapshot(dir: string): Record<string, string> {
  const entries: Record<string, string> = {};
  for (const relative of (fs.readdirSync(dir, { recursive: true }) as string[]).sort()) {
    const full = path.join(dir, relative);
    const stat = fs.lstatSync(full);
    const mode = (stat.mode & 0o7777).toString(8);
    if (stat.isSymbolicLink()) entries[relative] = `link -> ${fs.readlinkSync(full)}`;
    else if (stat.isDirectory()) entries[relative] = `dir ${mode}`;
    else entries[relative] = `file ${mode} ${crypto.createHash("sha256").update(fs.readFileSync(full)).digest("hex")}`;
  }
  return entries;
}

function mode_of(file: string): string {
  return (fs.statSync(file).mode & 0o777).toString(8);
}

describe("bootstrap.sh --root", () => {
  let dir: string;
  let origin: string;

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "materia-bootstrap-"));
    origin = path.join(dir, "origin");
    fs.mkdirSync(origin);
    fs.cpSync(path.join(repo_root, "infra"), path.join(origin, "infra"), { recursive: true });
    await git(origin, "init", "--quiet", "--initial-branch=main");
    await git(origin, "add", "infra");
    await git(origin, "commit", "--quiet", "-m", "infra");
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  /** An install root `name` whose /etc/materia/materia.env the operator already wrote. */
  const root_with_env = (name: string, text: string, mode?: number) => {
    const root = path.join(dir, name);
    const env_file = path.join(root, "etc/materia/materia.env");
    fs.mkdirSync(path.dirname(env_file), { recursive: true });
    fs.writeFileSync(env_file, text, { mode });
    return { root, env_file };
  };

  test("a fresh install writes the checkout, the env file from the template, the units and the data dir", async () => {
    const root = path.join(dir, "fresh");
    const result = await bootstrap("--root", root, "--repo", origin);
    assert.equal(result.code, 0, result.stderr);

    assert.equal(await git(path.join(root, "opt/materia"), "rev-parse", "HEAD"), await git(origin, "rev-parse", "HEAD"));
    const env_file = path.join(root, "etc/materia/materia.env");
    assert.deepEqual(fs.readFileSync(env_file), fs.readFileSync(template_path));
    assert.equal(mode_of(env_file), "640");
    assert.equal(mode_of(path.join(root, "etc/materia")), "750");
    assert.equal(mode_of(path.join(root, "data/materia")), "750");
    for (const unit of units) {
      assert.deepEqual(fs.readFileSync(path.join(root, "etc/systemd/system", unit)),
        fs.readFileSync(path.join(repo_root, "infra/systemd", unit)), unit);
    }
    // What it would have done to the host, recorded instead of done.
    assert.match(result.stdout, /would run: useradd --system .* materia$/m);
    assert.match(result.stdout, /would run: chown root:materia \/etc\/materia\/materia\.env$/m);
    assert.match(result.stdout, /would run: systemctl daemon-reload$/m);
    assert.match(result.stdout, /would run: systemctl enable --now materia-web\.socket materia-supervisor\.service materia-backup\.timer$/m);
  });

  test("a second run changes nothing in the tree", async () => {
    const root = path.join(dir, "twice");
    assert.equal((await bootstrap("--root", root, "--repo", origin)).code, 0);
    const first = snapshot(root);
    const second_run = await bootstrap("--root", root, "--repo", origin);
    assert.equal(second_run.code, 0, second_run.stderr);
    assert.deepEqual(snapshot(root), first);
    assert.match(second_run.stdout, /kept \/etc\/materia\/materia\.env as it is/);
    assert.doesNotMatch(second_run.stdout, /daemon-reload|installed|cloning|switching/);
  });

  test("an operator's env file is left byte-identical, mode included", async () => {
    const operator_text = "# tuned by hand\nADMIN_PASSWORD=s3cret-by-hand\nMATERIA_GIT_REF=\"origin/main\"\nWEB_PORT=5001\n";
    const { root, env_file } = root_with_env("operator", operator_text, 0o600);
    const result = await bootstrap("--root", root, "--repo", origin);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(fs.readFileSync(env_file, "utf8"), operator_text);
    assert.equal(mode_of(env_file), "600");
  });

  test("materia-web.socket listens on WEB_HOST:WEB_PORT of the env file; a new port stops the daemon and the socket, then starts both", async () => {
    const { root, env_file } = root_with_env("socket", "WEB_HOST=::1\nWEB_PORT=5001\n");
    const socket_unit = path.join(root, "etc/systemd/system/materia-web.socket");
    const first = await bootstrap("--root", root, "--repo", origin);
    assert.equal(first.code, 0, first.stderr);
    const listen_streams = () => fs.readFileSync(socket_unit, "utf8").split("\n").filter((line) => line.startsWith("ListenStream="));
    assert.deepEqual(listen_streams(), ["ListenStream=[::1]:5001"]);

    fs.writeFileSync(env_file, "WEB_HOST=::1\nWEB_PORT=5001\nWEB_PORT=\"5002\"\n");
    const moved = await bootstrap("--root", root, "--repo", origin);
    assert.equal(moved.code, 0, moved.stderr);
    assert.deepEqual(listen_streams(), ["ListenStream=[::1]:5002"], "the last assignment wins, quotes removed");
    const systemctl = moved.stdout.split("\n").filter((line) => /would run: systemctl /.test(line));
    assert.deepEqual(systemctl.map((line) => line.replace(/^.*would run: /, "")), [
      "systemctl daemon-reload",
      "systemctl stop materia-supervisor.service materia-web.socket",
      "systemctl try-restart materia-supervisor.service",
      "systemctl enable --now materia-web.socket materia-supervisor.service materia-backup.timer",
    ]);

    const unchanged = await bootstrap("--root", root, "--repo", origin);
    assert.doesNotMatch(unchanged.stdout, /systemctl stop/, "the same address: the socket is left alone");
  });

  test("with WEB_PORT=0 (any free port) no socket unit is installed: the daemon binds the port itself", async () => {
    const { root } = root_with_env("any-port", "WEB_PORT=0\n");
    const result = await bootstrap("--root", root, "--repo", origin);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(fs.existsSync(path.join(root, "etc/systemd/system/materia-web.socket")), false);
    assert.match(result.stdout, /^bootstrap: WEB_PORT=0 \(any free port\): no materia-web\.socket; the daemon binds the port itself$/m);
    assert.match(result.stdout, /would run: systemctl enable --now materia-supervisor\.service materia-backup\.timer$/m);
  });

  test("a new commit on MATERIA_GIT_REF is switched to on the next run, and the changed unit installed", async () => {
    const root = path.join(dir, "upgrade");
    assert.equal((await bootstrap("--root", root, "--repo", origin)).code, 0);
    const unit_path = path.join(origin, "infra/systemd/materia-backup.timer");
    fs.appendFileSync(unit_path, "# changed upstream\n");
    await git(origin, "commit", "--quiet", "-am", "timer: a comment");
    const result = await bootstrap("--root", root, "--repo", origin);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(await git(path.join(root, "opt/materia"), "rev-parse", "HEAD"), await git(origin, "rev-parse", "HEAD"));
    assert.deepEqual(fs.readFileSync(path.join(root, "etc/systemd/system/materia-backup.timer")), fs.readFileSync(unit_path));
    assert.match(result.stdout, /would run: systemctl daemon-reload$/m);
    assert.match(result.stdout, /would run: systemctl try-restart materia-supervisor\.service$/m);
  });

  test("a MATERIA_GIT_REF that names no commit is refused with one line naming it", async () => {
    const { root } = root_with_env("bad-ref", "MATERIA_GIT_REF=origin/no-such-branch\n");
    const result = await bootstrap("--root", root, "--repo", origin);
    assert.equal(result.code, 1);
    assert.equal(result.stderr, "bootstrap: MATERIA_GIT_REF=origin/no-such-branch (in /etc/materia/materia.env) is not a commit in /opt/materia after git fetch\n");
  });

  test("an unknown argument is refused before anything is written", async () => {
    const root = path.join(dir, "unknown-argument");
    const result = await bootstrap("--rot", root);
    assert.equal(result.code, 2);
    assert.match(result.stderr, /^bootstrap: unknown argument --rot/);
    assert.equal(fs.existsSync(root), false);
  });
});
