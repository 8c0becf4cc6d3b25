import { spawn } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { serve_release, start_http_server } from "../test/support/http_server.js";
import { write_revised_release } from "../test/support/psd_zip.js";
import { DaemonProcess, wait_until } from "../test/support/daemon_process.js";
import { make_sandbox, run_cli, shipped_zip_path } from "../test/support/sandbox.js";
import { basic, form, form_session } from "../test/support/web_client.js";
import { cpu_seconds, process_tree, resident_bytes } from "./proc.js";
import { figure, sample, seconds_of, type Figure } from "./stats.js";
import { fill_page_cache } from "./web_limit.js";
import type { BenchContext } from "./workspace.js";

const MB = 1024 * 1024;
const ADMIN_PASSWORD = "bench-admin-password";

/** 6. Idle footprint of daemon + web (its page cache full), against the floor: as many bare idle Node processes. */
async function footprint(daemon: DaemonProcess, web_url: string, window_s: number): Promise<Figure[]> {
  const page_cache = await fill_page_cache(web_url, ADMIN_PASSWORD);
  const tree = process_tree(daemon.pid);
  const bare = Array.from({ length: tree.length }, () =>
    spawn(process.execPath, ["-e", "setInterval(() => {}, 1000)"], { stdio: "ignore" }));
  try {
    await sleep(1000);
    const bare_pids = bare.map((child) => child.pid!);
    const cpu_before = [cpu_seconds(tree), cpu_seconds(bare_pids)];
    const memory = { pss: [] as number[], bare_pss: [] as number[], rss: [] as number[], bare_rss: [] as number[] };
    for (let second = 0; second < window_s; second++) {
      memory.pss.push(resident_bytes(tree, "Pss") / MB);
      memory.bare_pss.push(resident_bytes(bare_pids, "Pss") / MB);
      memory.rss.push(resident_bytes(tree, "Rss") / MB);
      memory.bare_rss.push(resident_bytes(bare_pids, "Rss") / MB);
      await sleep(1000);
    }
    const cpu_pct = (index: number, pids: number[]) => (100 * (cpu_seconds(pids) - cpu_before[index]!)) / window_s;
    return [
      figure("6a", `idle memory (PSS: shared pages split) of daemon + web, ${tree.length} processes, page cache full ` +
        `(${(page_cache.size_bytes / MB).toFixed(1)} of ${(page_cache.size_bytes_max / MB).toFixed(0)} MB), vs as many bare idle node`,
        sample(memory.pss, "MB"), sample(memory.bare_pss, "MB"), "ours ≤ 150 MB", () => Math.max(...memory.pss) <= 150),
      figure("6a′", "the same as RSS (shared pages counted in every process)",
        sample(memory.rss, "MB"), sample(memory.bare_rss, "MB"), "informational"),
      figure("6b", `idle CPU of daemon + web over ${window_s} s vs the bare processes`,
        sample([cpu_pct(0, tree)], "% of a core"), sample([cpu_pct(1, bare_pids)], "% of a core"), "ours ≤ 1 %",
        () => cpu_pct(0, tree) <= 1),
    ];
  } finally {
    for (const child of bare) child.kill("SIGKILL");
  }
}

/**
 * 7. A new release served on loopback until it shows on /api, through the daemon (Run now on the
 * admin page), against the three jobs run by hand on the same release.
 */
async function end_to_end(context: BenchContext, runs: number): Promise<Figure[]> {
  const dir = fs.mkdtempSync(path.join(context.workspace.dir, "e2e-"));
  const releases = [shipped_zip_path];
  for (let run = 0; run < runs; run++) {
    const zip = path.join(dir, `release-${run}.zip`);
    await write_revised_release(zip, { country_code: "BR", market_year: 2023, attribute: "Production", value: 70_000 + run });
    releases.push(zip);
  }
  let current = 0;
  const server = await start_http_server((request, response) =>
    serve_release(releases[current]!, `"release-${current}"`, new Date().toUTCString())(request, response));
  // Quick: a small page cache, filled in a second or two; the full run measures the default bound.
  const cache: Record<string, string> = context.quick ? { WEB_CACHE_BYTES_MAX: String(2 * MB) } : {};
  const daemon_sandbox = make_sandbox({ PSD_SOURCE_URL: "", ADMIN_PASSWORD, LOG_LEVEL: "info", WEB_PORT: "0", ...cache });
  daemon_sandbox.env.PSD_SOURCE_URL = server.url;
  const daemon = new DaemonProcess(daemon_sandbox.env, "bench");
  const figures: Figure[] = [];
  try {
    await daemon.wait_for_line(/cycle ok/, 120_000);
    const web_url = (await daemon.wait_for_line(/web: listening on http/, 10_000)).match(/(http:\/\/\S+)/)![1]!;
    figures.push(...await footprint(daemon, web_url, context.quick ? 3 : 30));

    const session = await form_session(web_url, "/admin", basic(ADMIN_PASSWORD));
    const through_daemon: number[] = [];
    const by_hand: number[] = [];
    for (let run = 1; run <= runs; run++) {
      current = run;
      const expected = 70_000 + run - 1;
      through_daemon.push(await seconds_of(async () => {
        const asked = await fetch(`${web_url}/admin/run-now`,
          { redirect: "manual", ...form({ csrf_token: session.token }, { ...basic(ADMIN_PASSWORD), cookie: session.cookie }) });
        if (asked.status !== 303) throw new Error(`Run now answered ${asked.status}`);
        await wait_until("the new release on /api", 300_000, async () => {
          const body = await (await fetch(`${web_url}/api/country/BR?from=2023&to=2023`)).json() as { tables: { balance: { rows: { production: number }[] } } };
          return body.tables.balance.rows[0]?.production === expected;
        });
      }));
      // The same new release, by hand, in the bench workspace (which has landed and built an older one).
      let total_s = 0;
      for (const job of ["extract", "transform", "export_serving"]) {
        const env = { ...context.workspace.env, PSD_SOURCE_URL: `file://${releases[run]}`, LOG_LEVEL: "warn" };
        total_s += await seconds_of(async () => {
          const result = await run_cli(["pipeline", "run", job], env);
          if (result.code !== 0) throw new Error(`${job} by hand failed: ${result.stderr}`);
        });
      }
      by_hand.push(total_s);
    }
    const overhead_s = sample(through_daemon, "s").median - sample(by_hand, "s").median;
    figures.push(figure("7", `new release on loopback → visible on /api via the daemon vs the three jobs by hand (overhead ${overhead_s.toFixed(1)} s)`,
      sample(through_daemon, "s"), sample(by_hand, "s"), "overhead ≤ 3 s", () => overhead_s <= 3));
    return figures;
  } finally {
    await daemon.terminate(60_000);
    await server.close();
    daemon_sandbox.cleanup();
  }
}

export async function bench_daemon(context: BenchContext): Promise<Figure[]> {
  return end_to_end(context, context.quick ? 1 : 3);
}
