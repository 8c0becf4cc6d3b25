import { execFileSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { file_digest, type ServingManifest } from "../lib/serving_manifest.js";
import { wait_until } from "../test/support/daemon_process.js";
import { run_cli } from "../test/support/sandbox.js";
import { start_web, type WebProcess } from "../test/support/web_process.js";
import { figure, sample, seconds_of, type Figure } from "./stats.js";
import type { BenchContext } from "./workspace.js";

const POLL_INTERVAL_S = 2;

/** When `web` serves the file exported at `exported_at` (a forced export keeps the release id). */
async function serves_export(web: WebProcess, exported_at: string): Promise<boolean> {
  const response = await fetch(`${web.url}/healthz`, { signal: AbortSignal.timeout(10_000) }).catch(() => undefined);
  const body = (await response?.json().catch(() => undefined)) as { serving?: { exported_at?: string } } | undefined;
  return body?.serving?.exported_at === exported_at;
}

function rclone_copyto(from: string, to: string): void {
  execFileSync("rclone", ["-q", "copyto", from, to], { timeout: 120_000 });
}

/**
 * 12a: a new serving file published (`materia pipeline run publish`, as the daemon's publish job)
 * until the last of three followers (one in quick mode) (`materia web --follow`, FOLLOW_POLL_INTERVAL_S=2) serves it,
 * against the floor the issue names: the poll interval plus one bare `rclone copyto` download.
 * 12b: the publish alone against bare `rclone copyto` of the file and a manifest.
 */
export async function bench_follow(context: BenchContext): Promise<Figure[]> {
  const runs = context.quick ? 1 : 5;
  // Quick mode (in npm test, which bounds the whole bench) keeps the figure measured, not its scale.
  const follower_count = context.quick ? 1 : 3;
  const workspace = context.workspace;
  const remote = fs.mkdtempSync(path.join(workspace.dir, "publish-remote-"));
  const env = { ...workspace.env, SERVING_PUBLISH_REMOTE: remote };
  const publish = async () => {
    const result = await run_cli(["pipeline", "run", "publish"], env);
    if (result.code !== 0) throw new Error(`publish failed: ${result.stderr}`);
  };
  const manifest = () => JSON.parse(fs.readFileSync(path.join(remote, "serving", "current.json"), "utf8")) as ServingManifest;
  await publish();
  const followers: WebProcess[] = [];
  try {
    // Started at once; every one that started is stopped below, even when another failed to.
    const started = await Promise.allSettled(Array.from({ length: follower_count }, (_, n) => {
      const dir = fs.mkdtempSync(path.join(workspace.dir, `follower-${n}-`));
      return start_web({ ...workspace.env, SERVING_DUCKDB_PATH: path.join(dir, "serving.duckdb"),
        MATERIA_STATE_DIR: path.join(dir, "state"), FOLLOW_POLL_INTERVAL_S: String(POLL_INTERVAL_S), LOG_LEVEL: "info" },
      { cli_args: ["web", "--follow", remote] });
    }));
    for (const outcome of started) if (outcome.status === "fulfilled") followers.push(outcome.value);
    const failure = started.find((outcome) => outcome.status === "rejected");
    if (failure) throw failure.reason;
    const all_serve = (exported_at: string) => wait_until("every follower to serve the published file", 120_000,
      async () => (await Promise.all(followers.map((web) => serves_export(web, exported_at)))).every(Boolean));
    await all_serve(manifest().exported_at);

    const latency_s: number[] = [];
    const floor_s: number[] = [];
    const publish_s: number[] = [];
    const bare_upload_s: number[] = [];
    for (let run = 0; run < runs; run++) {
      // A new file: a forced export of the same release (new exported_at, new sha256).
      const exported = await run_cli(["pipeline", "run", "export_serving", "--force"], workspace.env);
      if (exported.code !== 0) throw new Error(`export_serving failed: ${exported.stderr}`);
      const started_ms = Date.now();
      publish_s.push(await seconds_of(publish));
      await all_serve(manifest().exported_at);
      latency_s.push((Date.now() - started_ms) / 1000);

      const { sha256 } = await file_digest(workspace.config.serving_duckdb_path);
      const download = path.join(workspace.dir, "bench-download.duckdb");
      floor_s.push(POLL_INTERVAL_S + await seconds_of(async () => rclone_copyto(path.join(remote, "serving", `${sha256}.duckdb`), download)));
      fs.rmSync(download, { force: true });
      const bare_remote = fs.mkdtempSync(path.join(workspace.dir, "bare-remote-"));
      bare_upload_s.push(await seconds_of(async () => {
        rclone_copyto(workspace.config.serving_duckdb_path, path.join(bare_remote, `${sha256}.duckdb`));
        rclone_copyto(path.join(remote, "serving", "current.json"), path.join(bare_remote, "current.json"));
      }));
      fs.rmSync(bare_remote, { recursive: true, force: true });
    }
    const size_mb = (fs.statSync(workspace.config.serving_duckdb_path).size / 1e6).toFixed(2);
    const latency = sample(latency_s, "s");
    return [
      figure("12a", `publish → last of ${follower_count} follower${follower_count > 1 ? "s" : ""} serving it (FOLLOW_POLL_INTERVAL_S=${POLL_INTERVAL_S}, ${size_mb} MB file) ` +
        "vs poll interval + one bare rclone download", latency, sample(floor_s, "s"),
        `≤ poll interval + 5 s (${POLL_INTERVAL_S + 5} s)`, () => latency.max <= POLL_INTERVAL_S + 5),
      figure("12b", `materia pipeline run publish (hash, export_info, upload, manifest, prune) vs bare rclone copyto of file + manifest`,
        sample(publish_s, "s"), sample(bare_upload_s, "s"), "informational"),
    ];
  } finally {
    await Promise.all(followers.map((web) => web.stop()));
  }
}
