import crypto from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { performance } from "node:perf_hooks";
import { setTimeout as sleep } from "node:timers/promises";
import { read_daemon_status } from "../daemon/run_history.js";
import { DaemonProcess, kill_tagged, processes_tagged, wait_until } from "../test/support/daemon_process.js";
import { serve_release, start_http_server } from "../test/support/http_server.js";
import { LoadClient, type LoadRequest } from "../test/support/load_client.js";
import { write_revised_release } from "../test/support/psd_zip.js";
import { make_sandbox, shipped_zip_path } from "../test/support/sandbox.js";
import { command_line, process_tree, read_process, type ProcessReading } from "./proc.js";
import { linear_trend, type Trend } from "./trend.js";

// The soak: the daemon as it runs for months, compressed. A short pipeline interval; upstream
// alternating between two real releases (each switch is a real extract, SQLMesh transform and
// publication); a steady trickle of readers on several pages; kill -9 of the web process and of
// the worker; a stretch of upstream answering 500. Every process of the daemon is sampled (RSS,
// PSS, fds, threads) and so is the data directory; the result is each process's slope per hour
// with its 95 % interval, the requests that failed outside the injected kills, the disk growth
// per cycle and per release, and what the daemon logged per hour.

export interface SoakOptions {
  minutes: number;
  interval_s: number;
}

type Role = "launcher" | "worker" | "web";
const roles: readonly Role[] = ["launcher", "worker", "web"];

/** When each fault is injected, as a share of the measured run; a release switch every sixth. */
const web_kill_at = 0.12;
const worker_kill_at = 0.22;
const broken_upstream = { from: 0.32, to: 0.42 };
const release_switches = 6;
/** Samples of a process younger than this share of the run are left out of its slope: it warms up. */
const warm_up_share = 0.2;
/** After a kill, failures count as the kill's until a request started after it succeeds, and this long after. */
const kill_settle_ms = 1_000;

const pages = ["/", "/api/overview", "/country/BR", "/api/country/BR?from=2015&to=2023", "/rankings", "/changes"];
/** Each page's reader pauses this long between requests: ~12 requests/s in all, a busy dashboard for one small box. */
const reader_pause_ms = 500;

export interface ProcessTrend {
  role: Role;
  pid: number;
  /** Minutes of samples the slopes are fitted to (the process's own warm-up left out). */
  fitted_minutes: number;
  rss_mb_per_h: Trend;
  pss_mb_per_h: Trend;
  fds_per_h: Trend;
  threads_per_h: Trend;
  rss_mb: { first: number; last: number; max: number };
  fds: { min: number; max: number };
  threads: { min: number; max: number };
  /** The worker only: its RSS slope per pipeline cycle. */
  rss_mb_per_cycle?: number;
}

export interface SoakResult {
  minutes: number;
  interval_s: number;
  cycles: number;
  /** Publications of a release other than the one served before: the switches that took. */
  releases_published: number;
  /** When each was published, seconds into the run (within the polling delay). */
  published_at_s: number[];
  requests: number;
  failed_outside_kills: number;
  failed_outside_kills_by_outcome: Record<string, number>;
  /** When each of them failed (the first 20), to set beside the daemon's log. */
  failed_outside_kills_at_s: { at_s: number; url: string; outcome: string }[];
  kills: { what: Role; pid: number; at_s: number; failed_requests: number; settled_after_s: number }[];
  failed_extracts_while_upstream_broken: number;
  processes: ProcessTrend[];
  disk: { start_mb: number; end_mb: number; mb_per_cycle: number; mb_per_release: number; by_part_mb: Record<string, number> };
  log: { lines_per_h: number; lines_per_cycle: number; bytes_per_h: number; by_level_per_h: Record<string, number> };
  /** PIDs of the daemon's processes still alive after it was stopped: must be none. */
  leftover_processes: number[];
  stop_exit_code: number | null;
}

interface Sample {
  at_s: number;
  readings: Map<number, { role: Role; reading: ProcessReading }>;
  disk_bytes: Record<string, number>;
  log_lines: number;
}

const MB = 1024 * 1024;

export async function soak(options: SoakOptions): Promise<SoakResult> {
  const duration_s = options.minutes * 60;
  const sample_every_s = Math.min(30, Math.max(1, duration_s / 240));
  const releases_dir = fs.mkdtempSync(path.join(os.tmpdir(), "materia-soak-"));
  const revised = path.join(releases_dir, "revised.zip");
  await write_revised_release(revised, { country_code: "BR", market_year: 2023, attribute: "Production", value: 70_123 });
  const upstream = { release: 0, broken: false };
  const release_files = [shipped_zip_path, revised];
  const last_modified = new Date().toUTCString();
  const server = await start_http_server((request, response) => {
    if (upstream.broken) return void response.writeHead(500).end("upstream broken (soak)");
    serve_release(release_files[upstream.release]!, `"soak-release-${upstream.release}"`, last_modified)(request, response);
  });
  const sandbox = make_sandbox({
    WEB_PORT: "0", PIPELINE_INTERVAL_S: String(options.interval_s), PIPELINE_BACKOFF_S: String(options.interval_s),
    STOP_TIMEOUT_S: "30", LOG_LEVEL: "info", PSD_SOURCE_URL: server.url,
  });
  const tag = crypto.randomUUID();
  const daemon = new DaemonProcess(sandbox.env, tag);
  const loads: LoadClient[] = [];
  try {
    await daemon.wait_for_line(/cycle ok/, 600_000);
    const web_url = await wait_until("the web's address", 60_000, () => read_daemon_status(sandbox.config.materia_state_dir)?.web_url ?? undefined);
    const started_ms = performance.now();
    const log_lines_before = daemon.lines.length;
    const elapsed_s = () => (performance.now() - started_ms) / 1000;
    for (const page of pages) {
      loads.push(new LoadClient(web_url + page, { clients: 1, request_timeout_ms: 30_000, pause_after_failure_ms: 200, pause_after_success_ms: reader_pause_ms }));
    }
    const samples: Sample[] = [];
    const kills: { what: Role; pid: number; at_ms: number }[] = [];
    const extracts_failed = () => daemon.lines.slice(log_lines_before).filter(is_failed_extract).length;
    const pending: { at: number; act: () => unknown; ready?: () => boolean }[] = [
      { at: web_kill_at, act: () => kill(kills, "web", daemon.pid) },
      { at: worker_kill_at, act: () => kill(kills, "worker", daemon.pid) },
      { at: broken_upstream.from, act: () => (upstream.broken = true) },
      // Not mended before a cycle has met it (a long transform may span the whole stretch in a short soak).
      { at: broken_upstream.to, act: () => (upstream.broken = false), ready: () => extracts_failed() > 0 },
      ...Array.from({ length: release_switches - 1 }, (_, index) => ({ at: (index + 1) / release_switches, act: () => (upstream.release = 1 - upstream.release) })),
    ];
    pending.sort((a, b) => a.at - b.at);
    let next_sample_s = 0;
    let lines_seen = log_lines_before;
    const published_at_s: number[] = [];
    while (elapsed_s() < duration_s) {
      for (; lines_seen < daemon.lines.length; lines_seen++) if (is_publication(daemon.lines[lines_seen]!)) published_at_s.push(elapsed_s());
      while (pending.length > 0 && elapsed_s() >= pending[0]!.at * duration_s && (pending[0]!.ready?.() ?? true)) pending.shift()!.act();
      if (elapsed_s() >= next_sample_s) {
        samples.push(take_sample(elapsed_s(), daemon.pid, sandbox.dir, daemon.lines.length - log_lines_before));
        next_sample_s += sample_every_s;
      }
      await sleep(250);
    }
    await Promise.all(loads.map((load) => load.stop()));
    const requests = loads.flatMap((load) => load.requests.map((request) => ({ ...request, url: load.url.slice(web_url.length) })));
    const log_lines = daemon.lines.slice(log_lines_before);
    const published = published_at_s.length;
    const stopped = await daemon.terminate(60_000);
    await sleep(500);
    const leftover = processes_tagged(tag);
    return {
      minutes: options.minutes, interval_s: options.interval_s,
      cycles: count_cycles(log_lines),
      releases_published: published,
      published_at_s,
      requests: requests.length,
      ...failures_outside(requests, kills),
      failed_extracts_while_upstream_broken: log_lines.filter(is_failed_extract).length,
      processes: process_trends(samples, duration_s, count_cycles(log_lines) / duration_s),
      disk: disk_growth(samples, log_lines, published),
      log: log_volume(log_lines, duration_s, count_cycles(log_lines)),
      leftover_processes: leftover,
      stop_exit_code: stopped.code,
    };
  } finally {
    await Promise.all(loads.map((load) => load.stop()));
    await daemon.kill();
    kill_tagged(tag);
    await server.close();
    sandbox.cleanup();
    fs.rmSync(releases_dir, { recursive: true, force: true });
  }
}

/** The daemon's processes by role: the launcher is the daemon's PID; the others are told by their entry point. */
function daemon_processes(launcher_pid: number): Map<number, Role> {
  const found = new Map<number, Role>([[launcher_pid, "launcher"]]);
  for (const pid of process_tree(launcher_pid)) {
    const command = command_line(pid) ?? "";
    if (command.includes("daemon/supervisor_main.js")) found.set(pid, "worker");
    else if (command.includes("web/main.js")) found.set(pid, "web");
  }
  return found;
}

function kill(kills: { what: Role; pid: number; at_ms: number }[], what: Role, launcher_pid: number): void {
  const pid = [...daemon_processes(launcher_pid)].find(([, role]) => role === what)?.[0];
  if (pid === undefined) throw new Error(`soak: no ${what} process to kill`);
  process.kill(pid, "SIGKILL");
  kills.push({ what, pid, at_ms: performance.now() });
}

function take_sample(at_s: number, launcher_pid: number, data_dir: string, log_lines: number): Sample {
  const readings = new Map<number, { role: Role; reading: ProcessReading }>();
  for (const [pid, role] of daemon_processes(launcher_pid)) {
    const reading = read_process(pid);
    if (reading) readings.set(pid, { role, reading });
  }
  const disk_bytes: Record<string, number> = {};
  for (const entry of fs.readdirSync(data_dir)) disk_bytes[entry] = bytes_below(path.join(data_dir, entry));
  return { at_s, readings, disk_bytes, log_lines };
}

/** Bytes of every file at or below `target` (a file that goes while we look counts as gone). */
function bytes_below(target: string): number {
  let stat: fs.Stats;
  try {
    stat = fs.lstatSync(target);
  } catch {
    return 0;
  }
  if (!stat.isDirectory()) return stat.size;
  let entries: string[] = [];
  try {
    entries = fs.readdirSync(target);
  } catch {
    return 0;
  }
  return entries.reduce((sum, entry) => sum + bytes_below(path.join(target, entry)), 0);
}

/** The failed requests that no kill explains: a kill's window runs until a request started after it succeeded, plus a settle margin. */
export function failures_outside(requests: (LoadRequest & { url: string })[], kills: { what: Role; pid: number; at_ms: number }[]) {
  const windows = kills.map((kill) => {
    const recovered = requests.filter((r) => r.outcome === "ok" && r.started_ms > kill.at_ms)
      .reduce((first, r) => Math.min(first, r.started_ms + r.latency_ms), Infinity);
    return { ...kill, until_ms: recovered + kill_settle_ms };
  });
  const inside = (request: LoadRequest, window: (typeof windows)[number]) =>
    request.started_ms + request.latency_ms >= window.at_ms && request.started_ms < window.until_ms;
  const failed = requests.filter((r) => r.outcome !== "ok");
  const outside = failed.filter((r) => !windows.some((window) => inside(r, window)));
  const by_outcome: Record<string, number> = {};
  for (const r of outside) by_outcome[r.outcome] = (by_outcome[r.outcome] ?? 0) + 1;
  const first_ms = Math.min(...requests.map((r) => r.started_ms));
  return {
    failed_outside_kills: outside.length,
    failed_outside_kills_by_outcome: by_outcome,
    failed_outside_kills_at_s: outside.slice(0, 20).map((r) => ({ at_s: (r.started_ms - first_ms) / 1000, url: r.url, outcome: r.outcome })),
    kills: windows.map((window) => ({
      what: window.what, pid: window.pid, at_s: (window.at_ms - first_ms) / 1000,
      failed_requests: failed.filter((r) => inside(r, window)).length,
      settled_after_s: (window.until_ms - window.at_ms) / 1000,
    })),
  };
}

const is_publication = (line: string) => /export_serving: ok in .*: published release /.test(line);

const is_failed_extract = (line: string) => /extract: failed after .* answered HTTP 500\b/.test(line);

/** Cycles that ended, well ("cycle ok") or not ("backoff after …"). */
function count_cycles(log_lines: string[]): number {
  return log_lines.filter((line) => /\bcycle ok\b|\bbackoff after\b/.test(line)).length;
}

/** Each role's process alive at the end, fitted from its own start plus the warm-up. */
function process_trends(samples: Sample[], duration_s: number, cycles_per_s: number): ProcessTrend[] {
  const last = samples.at(-1);
  if (!last) throw new Error("soak: no samples taken");
  const trends: ProcessTrend[] = [];
  for (const role of roles) {
    const pid = [...last.readings].find(([, r]) => r.role === role)?.[0];
    if (pid === undefined) continue;
    const seen = samples.filter((s) => s.readings.has(pid));
    const from_s = seen[0]!.at_s + warm_up_share * duration_s;
    const fitted = seen.filter((s) => s.at_s >= from_s);
    if (fitted.length < 3) continue;
    const hours = fitted.map((s) => s.at_s / 3600);
    const series = (pick: (r: ProcessReading) => number) => fitted.map((s) => pick(s.readings.get(pid)!.reading));
    const rss = series((r) => r.rss_bytes / MB);
    const fds = series((r) => r.fds);
    const threads = series((r) => r.threads);
    const rss_mb_per_h = linear_trend(hours, rss);
    trends.push({
      role, pid,
      fitted_minutes: (fitted.at(-1)!.at_s - fitted[0]!.at_s) / 60,
      rss_mb_per_h,
      pss_mb_per_h: linear_trend(hours, series((r) => r.pss_bytes / MB)),
      fds_per_h: linear_trend(hours, fds),
      threads_per_h: linear_trend(hours, threads),
      rss_mb: { first: rss[0]!, last: rss.at(-1)!, max: Math.max(...rss) },
      fds: { min: Math.min(...fds), max: Math.max(...fds) },
      threads: { min: Math.min(...threads), max: Math.max(...threads) },
      ...(role === "worker" && cycles_per_s > 0 ? { rss_mb_per_cycle: rss_mb_per_h.slope / (cycles_per_s * 3600) } : {}),
    });
  }
  return trends;
}

/** Disk growth over the measured run (both releases landed before it: the first is, the second lands at the first switch): per cycle and per publication. */
function disk_growth(samples: Sample[], log_lines: string[], published: number) {
  const total = (s: Sample) => Object.values(s.disk_bytes).reduce((sum, v) => sum + v, 0) / MB;
  const first = samples[0]!;
  const last = samples.at(-1)!;
  const cycles = count_cycles(log_lines);
  const grown_mb = total(last) - total(first);
  const by_part_mb: Record<string, number> = {};
  for (const [part, bytes] of Object.entries(last.disk_bytes)) by_part_mb[part] = (bytes - (first.disk_bytes[part] ?? 0)) / MB;
  return {
    start_mb: total(first), end_mb: total(last),
    mb_per_cycle: cycles > 0 ? grown_mb / cycles : Number.NaN,
    mb_per_release: published > 0 ? grown_mb / published : Number.NaN,
    by_part_mb,
  };
}

function log_volume(log_lines: string[], duration_s: number, cycles: number) {
  const per_h = (count: number) => (count * 3600) / duration_s;
  const by_level: Record<string, number> = {};
  for (const line of log_lines) {
    const level = /^<\d>(\w+):/.exec(line)?.[1] ?? "other";
    by_level[level] = (by_level[level] ?? 0) + 1;
  }
  return {
    lines_per_h: per_h(log_lines.length),
    lines_per_cycle: cycles > 0 ? log_lines.length / cycles : Number.NaN,
    bytes_per_h: per_h(log_lines.reduce((sum, line) => sum + Buffer.byteLength(line) + 1, 0)),
    by_level_per_h: Object.fromEntries(Object.entries(by_level).map(([level, count]) => [level, per_h(count)])),
  };
}

const fixed = (value: number, digits = 2) => (Number.isFinite(value) ? value.toFixed(digits) : "n/a");
const trend_text = (trend: Trend, digits = 2) => `${fixed(trend.slope, digits)} ± ${fixed(trend.slope_ci95, digits)} (R² ${fixed(trend.r2)})`;

/** The soak's table, as bench/README.md shows it. */
export function format_soak(result: SoakResult): string {
  const lines = [
    `soak: ${result.minutes} min at PIPELINE_INTERVAL_S=${result.interval_s}: ${result.cycles} cycles, ${result.releases_published} releases published, ` +
      `${result.requests} requests, ${result.failed_outside_kills} failed outside the kills` +
      (result.failed_outside_kills > 0 ? `: ${result.failed_outside_kills_at_s.map((f) => `${f.url} ${f.outcome} at ${fixed(f.at_s, 1)} s`).join(", ")}` : ""),
    "",
    "process   pid      fitted   RSS MB/h (95% CI, R²)         PSS MB/h               RSS MB first→last (max)   fds/h (min–max)          threads/h (min–max)      RSS MB/cycle",
  ];
  for (const p of result.processes) {
    lines.push([
      p.role.padEnd(9), String(p.pid).padEnd(8), `${fixed(p.fitted_minutes, 0)} min`.padEnd(8),
      trend_text(p.rss_mb_per_h).padEnd(29), trend_text(p.pss_mb_per_h).padEnd(22),
      `${fixed(p.rss_mb.first, 1)}→${fixed(p.rss_mb.last, 1)} (${fixed(p.rss_mb.max, 1)})`.padEnd(25),
      `${fixed(p.fds_per_h.slope, 1)} (${p.fds.min}–${p.fds.max})`.padEnd(24),
      `${fixed(p.threads_per_h.slope, 1)} (${p.threads.min}–${p.threads.max})`.padEnd(24),
      p.rss_mb_per_cycle === undefined ? "" : fixed(p.rss_mb_per_cycle, 4),
    ].join(" ").trimEnd());
  }
  lines.push("");
  for (const kill of result.kills) {
    lines.push(`kill -9 ${kill.what} (pid ${kill.pid}) at ${fixed(kill.at_s, 0)} s: ${kill.failed_requests} failed requests, serving again after ${fixed(kill.settled_after_s, 1)} s`);
  }
  lines.push(`releases published at ${result.published_at_s.map((at) => `${fixed(at, 0)} s`).join(", ") || "no time"}`);
  lines.push(`upstream answering 500: ${result.failed_extracts_while_upstream_broken} extracts failed (the web kept serving the last release)`);
  const parts = Object.entries(result.disk.by_part_mb).map(([part, mb]) => `${part} ${mb >= 0 ? "+" : ""}${fixed(mb, 2)}`).join(", ");
  lines.push(`disk: ${fixed(result.disk.start_mb, 1)} → ${fixed(result.disk.end_mb, 1)} MB: ${fixed(result.disk.mb_per_cycle, 3)} MB per cycle, ` +
    `${fixed(result.disk.mb_per_release, 2)} MB per release published (${parts})`);
  const levels = Object.entries(result.log.by_level_per_h).map(([level, n]) => `${level} ${fixed(n, 0)}`).join(", ");
  lines.push(`log at LOG_LEVEL=info: ${fixed(result.log.lines_per_h, 0)} lines/h, ${fixed(result.log.bytes_per_h / 1024, 1)} KB/h (${levels}); ` +
    `${fixed(result.log.lines_per_cycle, 1)} lines per cycle`);
  lines.push(`stopped with exit code ${result.stop_exit_code}; processes left: ${result.leftover_processes.length === 0 ? "none" : result.leftover_processes.join(", ")}`);
  return lines.join("\n");
}
