import { execFileSync } from "node:child_process";
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
//   commits), already cloned as bootstrap would clone it, with the Python venv of this checkout
//   linked in (installing it needs PyPI; this checkout's was built from the same requirements).
//   That venv may run on a Python the service user cannot read (pyenv's under /root): inside, it
//   runs on Debian's /usr/bin/python3 instead, as a venv made on the box would;
// - npm installs offline from a copy of this machine's npm cache (npm_config_offline in the env);
// - the origin is a local bare repository at /srv/materia/origin.git (a safe.directory of the
//   service user: it belongs to the test).

export const supervisor_unit = "materia-supervisor.service";
const checkout_inside = "/opt/materia";
const origin_inside = "/srv/materia/origin.git";
const npm_cache_inside = "/run/materia-test/npm-cache";
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
    const venv = path.join(repo_root, ".venv");
    fs.symlinkSync(venv, path.join(checkout, ".venv"));
    const npm_cache = execFileSync("npm", ["config", "get", "cache"], { encoding: "utf8" }).trim();

    ns = await boot_systemd({
      binds: [
        { from: checkout, to: checkout_inside },
        { from: origin.origin, to: origin_inside, read_only: true },
        { from: venv, to: venv, read_only: true },
        { from: npm_cache, to: npm_cache_inside, read_only: true },
      ],
    });
    const inside = ns;
    await run_venv_on_system_python(inside, venv);
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
      await inside.write_file(env_file_inside, env_file_text({ npm_config_offline: "true", ...overrides }), "0640", "root:materia");
    };
    await write_settings(settings);
    await inside.check(["sh", `${checkout_inside}/infra/bootstrap.sh`], { timeout_ms: 600_000, env: { npm_config_offline: "true" } });

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

/** Overlays the venv's interpreter link and pyvenv.cfg (inside only) so that it runs on /usr/bin/python3. */
async function run_venv_on_system_python(ns: SystemdNamespace, venv: string): Promise<void> {
  const version = /^version\s*=\s*(\d+\.\d+)/m.exec(fs.readFileSync(path.join(venv, "pyvenv.cfg"), "utf8"))?.[1];
  const system_version = (await ns.check(["/usr/bin/python3", "-c", "import sys; print('%d.%d' % sys.version_info[:2])"])).trim();
  if (version !== system_version) throw new Error(`${venv} is for Python ${version}, /usr/bin/python3 is ${system_version}`);
  const layer = "/run/materia-test/venv-layer";
  await ns.check(["sh", "-c", `mkdir -p ${layer}/upper/bin ${layer}/work && ln -sf /usr/bin/python3 ${layer}/upper/bin/python3 && ` +
    `printf 'home = /usr/bin\ninclude-system-site-packages = false\nversion = ${version}\n' > ${layer}/upper/pyvenv.cfg && ` +
    `mount -t overlay materia-test-venv -o lowerdir="$1",upperdir=${layer}/upper,workdir=${layer}/work "$1"`, "sh", venv]);
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
