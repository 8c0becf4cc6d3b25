import { execFileSync } from "node:child_process";
import crypto from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import type { DaemonStatus } from "../../lib/contract.js";
import { repo_root } from "../../lib/paths.js";
import { wait_until } from "./daemon_process.js";
import { git, make_origin, type GitOrigin } from "./git_origin.js";
import { boot_systemd, type SystemdNamespace } from "./systemd_namespace.js";

// materia installed into a booted systemd namespace the way an operator installs it
// (OPERATIONS.md, Install): the operator's /etc/materia/materia.env first, then
// infra/bootstrap.sh, which installs the real units from infra/systemd/ and starts them.
// Paths are production's (/opt/materia, /data/materia, /etc/materia, the materia user): they
// exist inside the namespace only. What the test must provide itself:
// - /opt/materia is a host directory bound in (a clone of a test origin, so that tests can push
//   commits), already cloned as bootstrap would clone it;
// - npm installs offline from a copy of this machine's npm cache (npm_config_offline in the env),
//   and pip from a wheelhouse of the pinned requirements built on the host once per requirements
//   file (PIP_NO_INDEX, PIP_FIND_LINKS in the env): bootstrap's npm ci makes the venv in
//   /opt/materia/.venv on Debian's python3 as the service user, as on a new box;
// - the origin is a local bare repository at /srv/materia/origin.git (a safe.directory of the
//   service user: it belongs to the test).

export const supervisor_unit = "materia-supervisor.service";
const checkout_inside = "/opt/materia";
const origin_inside = "/srv/materia/origin.git";
const npm_cache_inside = "/run/materia-test/npm-cache";
const wheelhouse_inside = "/run/materia-test/wheels";
const env_file_inside = "/etc/materia/materia.env";
const state_dir_inside = "/data/materia/state";
const template_path = path.join(repo_root, "infra/materia.env.example");

export interface MateriaUnderSystemd {
  ns: SystemdNamespace;
  origin: GitOrigin;
  /** The host directory bound at /opt/materia. */
  checkout: string;
  /** The daemon's status file (daemon.json), read inside. */
  daemon_status(): Promise<DaemonStatus | undefined>;
  /** Where the daemon's web child listens, once it does. */
  wait_for_web_url(timeout_ms: number): Promise<string>;
  /** Rewrites /etc/materia/materia.env: the template's production values, then `settings` over them. */
  write_settings(settings: Record<string, string>): Promise<void>;
  cleanup(): Promise<void>;
}

/**
 * Boots a namespace and installs materia into it with infra/bootstrap.sh, with `settings` over
 * the template's production values (PSD_SOURCE_URL, WEB_PORT… as the test needs them).
 * Resolves once bootstrap.sh has started the daemon (READY=1).
 */
export async function install_materia(settings: Record<string, string>): Promise<MateriaUnderSystemd> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "materia-install-"));
  let ns: SystemdNamespace | undefined;
  const cleanup = async () => {
    await ns?.kill();
    fs.rmSync(dir, { recursive: true, force: true });
  };
  try {
    const origin = await make_origin(dir);
    const checkout = path.join(dir, "checkout");
    await git(dir, "clone", "-q", origin.origin, checkout);
    await git(checkout, "remote", "set-url", "origin", origin_inside);
    const npm_cache = execFileSync("npm", ["config", "get", "cache"], { encoding: "utf8" }).trim();

    ns = await boot_systemd({
      binds: [
        { from: checkout, to: checkout_inside },
        { from: origin.origin, to: origin_inside, read_only: true },
        { from: npm_cache, to: npm_cache_inside, read_only: true },
        { from: wheelhouse(), to: wheelhouse_inside, read_only: true },
      ],
    });
    const inside = ns;
    // The user as bootstrap.sh creates it, first: the checkout must be the service user's before
    // bootstrap runs git in it (git refuses a repository owned by someone else).
    await inside.check(["useradd", "--system", "--user-group", "--home-dir", "/var/lib/materia", "--no-create-home",
      "--shell", "/usr/sbin/nologin", "materia"]);
    // The origin belongs to the test (root): git serves a local repository of another user only
    // when it is a safe.directory. A production origin is remote, and never needs this.
    await inside.write_file("/var/lib/materia/.gitconfig", `[safe]\n\tdirectory = ${origin_inside}\n`);
    await inside.check(["sh", "-c", `cp -a ${npm_cache_inside} /var/lib/materia/.npm && ` +
      `chown -R materia:materia /var/lib/materia ${checkout_inside}`]);
    const write_settings = async (overrides: Record<string, string>) => {
      await inside.write_file(env_file_inside, env_file_text({ ...offline_installs, ...overrides }), "0640", "root:materia");
    };
    await write_settings(settings);
    await inside.check(["sh", `${checkout_inside}/infra/bootstrap.sh`], { timeout_ms: 600_000, env: offline_installs });

    const daemon_status = async () => {
      const result = await inside.run(["cat", `${state_dir_inside}/daemon.json`]);
      return result.code === 0 ? JSON.parse(result.stdout) as DaemonStatus : undefined;
    };
    return {
      ns: inside, origin, checkout, daemon_status, write_settings, cleanup,
      wait_for_web_url: (timeout_ms) => wait_until("the daemon's web URL", timeout_ms, async () => (await daemon_status())?.web_url ?? undefined),
    };
  } catch (error) {
    await cleanup();
    throw error;
  }
}

/** npm and pip install from what the host provides, never from the registries. */
const offline_installs = { npm_config_offline: "true", PIP_NO_INDEX: "1", PIP_FIND_LINKS: wheelhouse_inside };

/**
 * Wheels of every pinned requirement, built once per requirements file with this checkout's venv
 * (from pip's cache, or PyPI on a new machine) and kept beside node_modules' cache.
 */
function wheelhouse(): string {
  const requirements = path.join(repo_root, "jobs/transform/requirements.txt");
  const digest = crypto.createHash("sha256").update(fs.readFileSync(requirements)).digest("hex").slice(0, 16);
  const dir = path.join(repo_root, "node_modules/.cache/materia-test-wheels", digest);
  if (fs.existsSync(path.join(dir, "complete"))) return dir;
  execFileSync(path.join(repo_root, ".venv/bin/python"), ["-m", "pip", "wheel", "--quiet", "--disable-pip-version-check",
    "-r", requirements, "-w", dir], { stdio: ["ignore", "ignore", "inherit"], timeout: 600_000 });
  fs.writeFileSync(path.join(dir, "complete"), "");
  return dir;
}

/** The template with `settings` over its values; settings it does not list are added at the end. */
function env_file_text(settings: Record<string, string>): string {
  const left = new Map(Object.entries(settings));
  const lines = fs.readFileSync(template_path, "utf8").split("\n").map((line) => {
    const name = /^([A-Z][A-Z0-9_]*)=/.exec(line)?.[1];
    if (name === undefined || !left.has(name)) return line;
    const value = left.get(name)!;
    left.delete(name);
    return `${name}=${value}`;
  });
  return [...lines, "# test settings", ...[...left].map(([name, value]) => `${name}=${value}`), ""].join("\n");
}
