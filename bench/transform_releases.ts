import fs from "node:fs";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { write_current_release } from "../jobs/current_release.js";
import { with_job_deadline } from "../jobs/job.js";
import { run_transform } from "../jobs/transform/transform.js";
import { make_sandbox, run_cli, type Sandbox } from "../test/support/sandbox.js";
import { process_tree, resident_bytes } from "./proc.js";
import { figure, sample, seconds_of, side_by_side, type Figure } from "./stats.js";
import type { BenchContext } from "./workspace.js";

const MB = 1024 * 1024;
const DAY_MS = 24 * 3600 * 1000;
/** How often the SQLMesh process tree's memory is read while it runs. */
const memory_poll_ms = 100;

/**
 * 8. The transform of one new release with many releases landed (120: ten years of monthly
 * releases of the full file) against the same with one landed before: staging.psd_coffee reads
 * only what landed since its last run, so time and memory stay flat as releases accumulate.
 */
export async function bench_transform_releases(context: BenchContext): Promise<Figure[]> {
  const many = context.quick ? 3 : 120;
  const runs = context.quick ? 1 : 3;
  // Sandboxes of their own: this bench lands releases. Quick mode (in `npm test`) saves a build
  // by landing its one more release in the shared workspace, which the other benches have used.
  const one_landed = context.quick ? undefined : await landed_and_built(1);
  const one_sandbox = one_landed?.sandbox ?? context.workspace;
  const many_landed = await landed_and_built(many);
  try {
    const memory = { ours: [] as number[], reference: [] as number[] };
    const times = await side_by_side(runs,
      () => transform_one_more(many_landed.sandbox, memory.ours),
      () => transform_one_more(one_sandbox, memory.reference));
    return [
      figure("8a", `transform of a new release with ${many} releases landed vs with 1`,
        sample(times.ours, "s"), sample(times.reference, "s"), "≤ 1.2× (flat as releases accumulate)", (ratio) => ratio <= 1.2),
      figure("8b", `peak RSS of SQLMesh in that transform, ${many} releases landed vs 1`,
        sample(memory.ours, "MB"), sample(memory.reference, "MB"), "≤ 1.2×", (ratio) => ratio <= 1.2),
      ...(one_landed ? [
        figure("8c", `first build of a lakehouse from ${many} landed releases vs from 1 (once, then incremental)`,
          sample([many_landed.build_s], "s"), sample([one_landed.build_s], "s"), "informational"),
        figure("8d", `peak RSS of SQLMesh in that first build, ${many} releases vs 1`,
          sample([many_landed.build_peak_mb], "MB"), sample([one_landed.build_peak_mb], "MB"), "informational"),
      ] : []),
    ];
  } finally {
    one_landed?.sandbox.cleanup();
    many_landed.sandbox.cleanup();
  }
}

/**
 * A sandbox with `count` copies of the shipped release landed, a day apart (the newest now), the
 * newest current, and the lakehouse built once.
 */
async function landed_and_built(count: number) {
  const sandbox = make_sandbox({ LOG_LEVEL: "warn" });
  const extracted = await run_cli(["pipeline", "run", "extract"], sandbox.env);
  if (extracted.code !== 0) throw new Error(`extract failed in the transform bench: ${extracted.stderr}`);
  const [shipped] = fs.readdirSync(path.join(sandbox.config.landing_dir, "psd"), { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile()).map((entry) => path.join(entry.parentPath, entry.name));
  const now_ms = Date.now();
  for (let index = 1; index < count; index++) {
    const landed_at = new Date(now_ms - (count - index) * DAY_MS);
    land_copy(sandbox, shipped!, `bench-release-${index}`, landed_at);
  }
  // The shipped release, landed by extract just now, is the newest and current.
  const build = await measured_transform(sandbox);
  return { sandbox, build_s: build.seconds, build_peak_mb: build.peak_mb };
}

/** Lands a copy of `source` as release `release_id` with mtime `landed_at`, and makes it current. */
function land_copy(sandbox: Sandbox, source: string, release_id: string, landed_at: Date): void {
  const file = path.join("psd", String(landed_at.getUTCFullYear()), String(landed_at.getUTCMonth() + 1).padStart(2, "0"),
    `${release_id}.csv.gzip`);
  const target = path.join(sandbox.config.landing_dir, file);
  fs.mkdirSync(path.dirname(target), { recursive: true });
  fs.copyFileSync(source, target);
  fs.utimesSync(target, landed_at, landed_at);
  write_current_release(sandbox.config.materia_state_dir, { etag: `"${release_id}"`, release_id, file, since: landed_at.toISOString() });
}

let releases_landed = 0;

/** Lands one more release now, transforms it, and records the SQLMesh processes' peak RSS. Returns seconds. */
async function transform_one_more(sandbox: Sandbox, peaks_mb: number[]): Promise<number> {
  const source = path.join(sandbox.config.landing_dir, "psd");
  const [any_landed] = fs.readdirSync(source, { recursive: true, withFileTypes: true }).filter((entry) => entry.isFile());
  land_copy(sandbox, path.join(any_landed!.parentPath, any_landed!.name), `bench-new-${++releases_landed}`, new Date());
  const { seconds, peak_mb } = await measured_transform(sandbox);
  peaks_mb.push(peak_mb);
  return seconds;
}

/** run_transform, timed, with the peak RSS of its SQLMesh process tree (read every memory_poll_ms). */
async function measured_transform(sandbox: Sandbox): Promise<{ seconds: number; peak_mb: number }> {
  let leader: number | undefined;
  let peak_bytes = 0;
  let running = true;
  const poll = (async () => {
    while (running) {
      if (leader !== undefined) peak_bytes = Math.max(peak_bytes, resident_bytes(process_tree(leader), "Rss"));
      await sleep(memory_poll_ms);
    }
  })();
  try {
    const seconds = await seconds_of(() => with_job_deadline(sandbox.config, "transform", undefined,
      (stop) => run_transform(sandbox.config, { stop, on_subprocess_start: (pgid) => (leader = pgid) })));
    return { seconds, peak_mb: peak_bytes / MB };
  } finally {
    running = false;
    await poll;
  }
}
