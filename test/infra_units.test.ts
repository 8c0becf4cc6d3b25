import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { load_config } from "../config/load.js";
import { config_schema } from "../config/schema.js";
import { repo_root } from "../lib/paths.js";
import { list_files } from "./support/sandbox.js";

// The systemd units, the env template and the backup command, checked offline: systemd is not
// PID 1 here, so everything systemd-analyze can judge without a running manager is judged.

const unit_dir = path.join(repo_root, "infra/systemd");
const template_path = path.join(repo_root, "infra/materia.env.example");
const units = ["materia-web.socket", "materia-supervisor.service", "materia-backup.service", "materia-backup.timer", "materia-alert@.service",
  "materia-web-follow.service"];
/** Exposure score (0 safe … 10 exposed) each service must stay below: systemd calls < 2.0 "OK". */
const security_exposure_max = 2.0;
/** Settings only the units read (not config/schema.ts): keep this list short and explicit. */
const infra_only_settings = ["BACKUP_RCLONE_REMOTE"];

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function run(bin: string, args: string[], env: NodeJS.ProcessEnv = process.env): Promise<Run> {
  return new Promise((resolve) => {
    execFile(bin, args, { env, timeout: 60_000, maxBuffer: 16 * 1024 * 1024 }, (error, stdout, stderr) => {
      resolve({ code: error ? (typeof error.code === "number" ? error.code : 1) : 0, stdout, stderr });
    });
  });
}

/** `Section.Key` → values in file order (a key may repeat, as ExecStart= and Environment= do). */
function unit_settings(unit: string): Map<string, string[]> {
  const settings = new Map<string, string[]>();
  let section = "";
  for (const line of fs.readFileSync(path.join(unit_dir, unit), "utf8").split("\n")) {
    const header = /^\[(\w+)\]$/.exec(line);
    if (header) section = header[1]!;
    const setting = /^(\w+)=(.*)$/.exec(line);
    if (setting) {
      const key = `${section}.${setting[1]}`;
      settings.set(key, [...(settings.get(key) ?? []), setting[2]!]);
    }
  }
  return settings;
}

function unit_setting(unit: string, key: string): string {
  const values = unit_settings(unit).get(key);
  assert.ok(values?.length === 1, `${unit}: expected exactly one ${key}=, got ${JSON.stringify(values)}`);
  return values[0]!;
}

/** The template's settings in file order; every NAME= line must follow its `# explanation` line. */
function template_settings(): Map<string, string> {
  const settings = new Map<string, string>();
  const lines = fs.readFileSync(template_path, "utf8").split("\n");
  lines.forEach((line, index) => {
    const setting = /^([A-Z][A-Z0-9_]*)=(.*)$/.exec(line);
    if (!setting) {
      assert.ok(line === "" || line.startsWith("# "), `materia.env.example line ${index + 1} is neither a setting nor a comment: ${line}`);
      return;
    }
    assert.ok(lines[index - 1]?.startsWith("# "), `${setting[1]} has no "# explanation" line above it`);
    assert.ok(!settings.has(setting[1]!), `${setting[1]} is listed twice`);
    settings.set(setting[1]!, setting[2]!);
  });
  return settings;
}

async function timespan_s(span: string): Promise<number> {
  const result = await run("systemd-analyze", ["timespan", span]);
  assert.equal(result.code, 0, result.stderr);
  return Number(/μs: (\d+)/.exec(result.stdout)![1]) / 1e6;
}

async function verify(unit_path: string): Promise<Run> {
  // verify resolves a unit's dependencies from the host's unit dirs, our own from the same dir.
  return run("systemd-analyze", ["verify", unit_path]);
}

describe("systemd units", () => {
  test("systemd-analyze verify accepts every unit without a single warning", async () => {
    for (const unit of units) {
      const result = await verify(path.join(unit_dir, unit));
      // verify exits 0 on warnings: only an empty stderr means the unit is clean. It also checks
      // that each Exec*= binary exists: /usr/bin/node, /usr/bin/rclone, /bin/kill.
      assert.deepEqual({ unit, code: result.code, stderr: result.stderr }, { unit, code: 0, stderr: "" });
    }
  });

  test("a unit with a misspelt setting fails the verify check although verify exits 0", async (t) => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "materia-units-"));
    t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
    const broken = path.join(dir, "materia-supervisor.service");
    const text = fs.readFileSync(path.join(unit_dir, "materia-supervisor.service"), "utf8");
    fs.writeFileSync(broken, text.replace("KillMode=mixed", "KillMod=mixed"));
    const result = await verify(broken);
    assert.equal(result.code, 0);
    assert.match(result.stderr, /Unknown key 'KillMod' in section \[Service\]/);
  });

  test(`each service's exposure score stays below ${security_exposure_max}`, async () => {
    for (const unit of units.filter((u) => u.endsWith(".service"))) {
      const result = await run("systemd-analyze",
        ["security", "--offline=true", `--threshold=${security_exposure_max * 10}`, path.join(unit_dir, unit)]);
      const overall = /Overall exposure level for \S+: ([\d.]+)/.exec(result.stdout);
      assert.ok(overall, `${unit}: no overall exposure level in ${result.stdout.slice(-500)} ${result.stderr}`);
      assert.ok(Number(overall[1]) < security_exposure_max, `${unit}: exposure ${overall[1]}`);
      assert.equal(result.code, 0, `${unit}: ${result.stderr}`);
    }
  });

  test("the supervisor is a notify service that reloads with HUP, restarts always, and hardens the box", () => {
    const s = unit_settings("materia-supervisor.service");
    const expected: Record<string, string> = {
      "Service.Type": "notify",
      "Service.NotifyAccess": "all",
      "Service.ExecReload": "/bin/kill -HUP $MAINPID",
      "Service.ExecStart": "/usr/bin/node /opt/materia/dist/cli/materia.js daemon",
      "Service.Restart": "always",
      "Service.RestartPreventExitStatus": "2",
      "Service.KillMode": "mixed",
      "Service.EnvironmentFile": "/etc/materia/materia.env",
      "Service.User": "materia",
      "Service.ProtectSystem": "strict",
      "Service.ReadWritePaths": "/data/materia /opt/materia",
      "Service.ProtectHome": "true",
      "Service.PrivateTmp": "true",
      "Service.NoNewPrivileges": "true",
    };
    for (const [key, value] of Object.entries(expected)) assert.deepEqual(s.get(key), [value], key);
    for (const key of ["Service.RestartSec", "Service.WatchdogSec"]) assert.ok(s.has(key), `${key} is missing`);
  });

  test("materia-web.socket passes one stream socket on the template's WEB_HOST:WEB_PORT to the supervisor", () => {
    const settings = template_settings();
    assert.deepEqual(unit_settings("materia-web.socket").get("Socket.ListenStream"), [`${settings.get("WEB_HOST")}:${settings.get("WEB_PORT")}`]);
    assert.equal(unit_setting("materia-web.socket", "Socket.Service"), "materia-supervisor.service");
    assert.equal(unit_settings("materia-web.socket").has("Socket.Accept"), false, "one socket for the service (Accept=no), not one per connection");
    assert.equal(unit_setting("materia-web.socket", "Install.WantedBy"), "sockets.target");
  });

  test("TimeoutStopSec leaves the daemon its whole STOP_TIMEOUT_S before systemd kills", async () => {
    const stop_timeout_s = Number(template_settings().get("STOP_TIMEOUT_S"));
    const timeout_stop_s = await timespan_s(unit_setting("materia-supervisor.service", "Service.TimeoutStopSec"));
    assert.ok(timeout_stop_s > stop_timeout_s, `TimeoutStopSec ${timeout_stop_s} s <= STOP_TIMEOUT_S ${stop_timeout_s} s`);
  });

  test("TimeoutStartSec lets a reload's git commands and reinstall finish before systemd gives up on it", async () => {
    const settings = template_settings();
    // The self-update: rev-parse ×3, fetch, switch, diff, each bounded by GIT_TIMEOUT_S; then one install.
    const reload_s_max = 6 * Number(settings.get("GIT_TIMEOUT_S")) + Number(settings.get("INSTALL_TIMEOUT_S"));
    assert.ok(reload_s_max > 0, "GIT_TIMEOUT_S or INSTALL_TIMEOUT_S is missing from the template");
    const timeout_start_s = await timespan_s(unit_setting("materia-supervisor.service", "Service.TimeoutStartSec"));
    assert.ok(timeout_start_s > reload_s_max, `TimeoutStartSec ${timeout_start_s} s <= a reload's bound ${reload_s_max} s`);
  });

  test("the backup timer fires every 6 hours, catches up after downtime, and spreads its start", async () => {
    const spec = unit_setting("materia-backup.timer", "Timer.OnCalendar");
    const result = await run("systemd-analyze", ["calendar", "--iterations=4", spec], { ...process.env, TZ: "UTC" });
    assert.equal(result.code, 0, result.stderr);
    const elapses_ms = [...result.stdout.matchAll(/(\d{4}-\d\d-\d\d) (\d\d:\d\d:\d\d) UTC/g)]
      .map((m) => Date.parse(`${m[1]}T${m[2]}Z`));
    assert.equal(elapses_ms.length, 4, result.stdout);
    for (let i = 1; i < elapses_ms.length; i++) assert.equal(elapses_ms[i]! - elapses_ms[i - 1]!, 6 * 3600_000);
    assert.equal(unit_setting("materia-backup.timer", "Timer.Persistent"), "true");
    assert.ok(await timespan_s(unit_setting("materia-backup.timer", "Timer.RandomizedDelaySec")) > 0);
  });
});

describe("the env template", () => {
  test("lists exactly the settings of config/schema.ts, plus the infra-only ones", () => {
    const schema_names = Object.keys(config_schema(repo_root).shape).sort();
    const template_names = [...template_settings().keys()];
    const missing = schema_names.filter((name) => !template_names.includes(name));
    const unknown = template_names.filter((name) => !schema_names.includes(name) && !infra_only_settings.includes(name));
    assert.deepEqual({ missing_from_template: missing, not_in_schema: unknown }, { missing_from_template: [], not_in_schema: [] });
  });

  test("each infra-only setting is read by a unit and not by the Node code", () => {
    const schema_names = Object.keys(config_schema(repo_root).shape);
    const unit_text = units.map((unit) => fs.readFileSync(path.join(unit_dir, unit), "utf8")).join("\n");
    for (const name of infra_only_settings) {
      assert.ok(!schema_names.includes(name), `${name} is in config/schema.ts now: drop it from infra_only_settings`);
      assert.ok(unit_text.includes(`\${${name}}`), `no unit reads ${name}: drop it from the template`);
    }
  });

  test("its production values pass the config schema", () => {
    const config = load_config({ MATERIA_ENV_FILE: template_path });
    assert.equal(config.serving_duckdb_path, "/data/materia/serving.duckdb");
    assert.equal(config.psd_source_url, "https://apps.fas.usda.gov/psdonline/downloads/psd_coffee_csv.zip");
  });
});

describe("the backup service's command against a local rclone remote", () => {
  let dir: string;
  let landing_dir: string;
  let remote_dir: string;
  let env: NodeJS.ProcessEnv;

  /** ExecStart= of materia-backup.service with ${NAME} expanded as systemd does (one word each). */
  function backup_command(): string[] {
    const exec_start = unit_setting("materia-backup.service", "Service.ExecStart");
    assert.doesNotMatch(exec_start, /["'\\]/, "the test splits ExecStart on spaces: no quoting in it");
    return exec_start.split(/\s+/).map((word) => word.replace(/^\$\{(\w+)\}$/, (_, name: string) => {
      assert.ok(env[name] !== undefined, `ExecStart reads \${${name}}, which the test does not set`);
      return env[name]!;
    }));
  }

  async function run_backup(): Promise<Run> {
    const [bin, ...args] = backup_command();
    return run(bin!, args, env);
  }

  function write_landed(relative: string, content: string): void {
    fs.mkdirSync(path.dirname(path.join(landing_dir, relative)), { recursive: true });
    fs.writeFileSync(path.join(landing_dir, relative), content);
  }

  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "materia-backup-"));
    landing_dir = path.join(dir, "landing");
    remote_dir = path.join(dir, "remote");
    fs.writeFileSync(path.join(dir, "rclone.conf"), "[backup]\ntype = local\n");
    // The unit's Environment= names /etc/materia/rclone.conf; the test brings its own.
    env = {
      PATH: process.env.PATH,
      HOME: dir,
      RCLONE_CONFIG: path.join(dir, "rclone.conf"),
      LANDING_DIR: landing_dir,
      BACKUP_RCLONE_REMOTE: `backup:${remote_dir}`,
    };
    write_landed("psd/2024/10/psd-2024-10-10T12_00_00.csv.gzip", "release of October");
    write_landed("psd/2024/11/psd-2024-11-12T12_00_00.csv.gzip", "release of November");
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  test("the first run copies the whole landing dir", async () => {
    const result = await run_backup();
    assert.equal(result.code, 0, result.stderr);
    assert.deepEqual(list_files(remote_dir), list_files(landing_dir));
    for (const file of list_files(landing_dir)) {
      assert.equal(fs.readFileSync(path.join(remote_dir, file), "utf8"), fs.readFileSync(path.join(landing_dir, file), "utf8"));
    }
    assert.equal(result.stderr.match(/Copied \(new\)/g)?.length, 2, result.stderr);
  });

  test("a second run copies nothing and deletes nothing on the remote", async () => {
    fs.writeFileSync(path.join(remote_dir, "only-on-the-remote.csv.gzip"), "kept");
    const mtimes_before = list_files(remote_dir).map((file) => fs.statSync(path.join(remote_dir, file)).mtimeMs);
    const result = await run_backup();
    assert.equal(result.code, 0, result.stderr);
    assert.doesNotMatch(result.stderr, /Copied/);
    assert.deepEqual(list_files(remote_dir).map((file) => fs.statSync(path.join(remote_dir, file)).mtimeMs), mtimes_before);
    assert.ok(list_files(remote_dir).includes("only-on-the-remote.csv.gzip"));
  });

  test("a remote file that differs is never overwritten, the run fails naming it, new files still go", async () => {
    const changed = "psd/2024/10/psd-2024-10-10T12_00_00.csv.gzip";
    fs.writeFileSync(path.join(remote_dir, changed), "changed on the remote");
    write_landed("psd/2024/12/psd-2024-12-10T12_00_00.csv.gzip", "release of December");
    const result = await run_backup();
    assert.notEqual(result.code, 0);
    assert.match(result.stderr, /psd-2024-10-10T12_00_00\.csv\.gzip: Source and destination exist but do not match: immutable file modified/);
    assert.equal(fs.readFileSync(path.join(remote_dir, changed), "utf8"), "changed on the remote");
    assert.equal(fs.readFileSync(path.join(remote_dir, "psd/2024/12/psd-2024-12-10T12_00_00.csv.gzip"), "utf8"), "release of December");
  });
});
