import { fork } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { compiled_path } from "../lib/paths.js";
import { raw_get } from "../test/support/raw_http.js";
import { start_web } from "../test/support/web_process.js";
import type { ResponseCacheStats } from "../web/response_cache.js";
import type { RecordedResponse } from "./bare_server.js";
import { load, type Load } from "./load.js";
import { resident_bytes } from "./proc.js";
import { figure, sample, side_by_side, type Figure } from "./stats.js";
import type { BenchContext } from "./workspace.js";

const MB = 1024 * 1024;
const ADMIN_PASSWORD = "bench-admin-password";
const COMPRESSED = { "accept-encoding": "br, gzip" };
/** Headers a server adds to every answer by itself: the bare server's node:http adds its own. */
const per_connection_headers = new Set(["date", "connection", "keep-alive", "transfer-encoding"]);

/** Each page the issue names, JSON and HTML and a CSV, by figure letter. */
const pages = [
  ["a", "/api/overview"],
  ["b", "/api/country/BR"],
  ["c", "/api/rankings?year=2023"],
  ["d", "/"],
  ["e", "/country/BR"],
  ["f", "/api/country/BR.csv"],
] as const;

/**
 * 10–11. Each page, cached, against the limit: a bare node:http server answering the very same
 * status, headers and bytes from memory (8: no Accept-Encoding, 9: `br, gzip`), same client, same
 * connections. 2c: what the page cache costs in memory when full.
 */
export async function bench_web_limit(context: BenchContext): Promise<Figure[]> {
  const { workspace } = context;
  const duration_s = context.quick ? 1 : 5;
  const runs = context.quick ? 1 : 3;
  const cache_bytes_max = context.quick ? 2 * MB : workspace.config.web_cache_bytes_max;
  const web = await start_web({ ...workspace.env, LOG_LEVEL: "warn", ADMIN_PASSWORD,
    WEB_CACHE_BYTES_MAX: String(cache_bytes_max) }, "forked");
  const figures: Figure[] = [];
  let bare: Awaited<ReturnType<typeof start_bare_server>> | undefined;
  try {
    const recorded: RecordedResponse[] = [];
    for (const [, route] of pages) {
      for (const compressed of [false, true]) recorded.push(await record(web.url, route, compressed));
    }
    bare = await start_bare_server(path.join(workspace.dir, "bare_responses.json"), recorded);
    for (const compressed of [false, true]) {
      for (const [letter, route] of pages) {
        const headers = compressed ? COMPRESSED : undefined;
        const loads = { ours: [] as Load[], bare: [] as Load[] };
        await side_by_side(runs,
          async () => (loads.ours.push(await load(web.url + route, { duration_s, headers })), 0),
          async () => (loads.bare.push(await load(bare!.url + route, { duration_s, headers })), 0));
        const failed = [...loads.ours, ...loads.bare].reduce((sum, l) => sum + l.failed, 0);
        if (failed > 0) throw new Error(`${route}: ${failed} failed requests`);
        const size_kb = recorded.find((r) => r.url === route && r.compressed === compressed)!.body_base64.length * 0.75 / 1024;
        const median = (loads_of: Load[], key: "latency_ms_p50" | "latency_ms_p99") => sample(loads_of.map((l) => l[key]), "ms").median;
        figures.push(figure(`${compressed ? 11 : 10}${letter}`,
          `${route}${compressed ? " (br)" : ""}, ${size_kb.toFixed(1)} KB, req/s vs bare node:http (p50 ${median(loads.ours, "latency_ms_p50")} vs ` +
          `${median(loads.bare, "latency_ms_p50")} ms, p99 ${median(loads.ours, "latency_ms_p99")} vs ${median(loads.bare, "latency_ms_p99")} ms)`,
          sample(loads.ours.map((l) => l.requests_per_s), "req/s"), sample(loads.bare.map((l) => l.requests_per_s), "req/s"),
          "≥ 0.5×", (ratio) => ratio >= 0.5));
      }
    }
    figures.push(await cache_memory(web.url, web.child.pid!));
  } finally {
    bare?.stop();
    await web.stop();
  }
  return figures;
}

/** One cached answer of materia's, as the bare server will replay it. */
async function record(base: string, route: string, compressed: boolean): Promise<RecordedResponse> {
  const headers = compressed ? COMPRESSED : {};
  await raw_get(base, route, headers); // the first request renders and caches it
  const reply = await raw_get(base, route, headers);
  if (reply.status !== 200) throw new Error(`${route} answered ${reply.status}`);
  const kept: string[] = [];
  for (let index = 0; index < reply.raw_headers.length; index += 2) {
    if (!per_connection_headers.has(reply.raw_headers[index]!.toLowerCase())) kept.push(reply.raw_headers[index]!, reply.raw_headers[index + 1]!);
  }
  return { url: route, compressed, status: reply.status, headers: kept, body_base64: reply.body.toString("base64") };
}

async function start_bare_server(responses_file: string, recorded: RecordedResponse[]) {
  fs.writeFileSync(responses_file, JSON.stringify(recorded));
  const child = fork(compiled_path("bench/bare_server.ts"), [responses_file], { stdio: ["ignore", "inherit", "inherit", "ipc"] });
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("the bare server did not listen within 10 s")), 10_000);
    child.once("message", (message) => {
      clearTimeout(timer);
      resolve((message as { port: number }).port);
    });
    child.once("exit", (code) => reject(new Error(`the bare server exited with ${code}`)));
  });
  return { url: `http://127.0.0.1:${port}`, stop: () => child.kill("SIGKILL") };
}

/** 2c. The web process's memory with its page cache filled to its bound, against with one page cached. */
async function cache_memory(base: string, pid: number): Promise<Figure> {
  const settle_ms = 2000;
  await sleep(settle_ms);
  const empty_mb = resident_bytes([pid], "Pss") / MB;
  const stats = await fill_page_cache(base, ADMIN_PASSWORD);
  await sleep(settle_ms);
  const full_mb = resident_bytes([pid], "Pss") / MB;
  const bound_mb = stats.size_bytes_max / MB;
  return figure("2c", `web memory (PSS) with its page cache full (${stats.entries} responses, ${(stats.size_bytes / MB).toFixed(1)} of ` +
    `${bound_mb.toFixed(0)} MB) vs nearly empty: ${(full_mb - empty_mb).toFixed(1)} MB more`,
  sample([full_mb], "MB"), sample([empty_mb], "MB"), "informational");
}

/**
 * Requests distinct country pages (codes × units × first years) until the page cache is within one
 * page of its bound, as the admin page reports it; returns its last report.
 */
export async function fill_page_cache(base: string, admin_password: string): Promise<ResponseCacheStats> {
  const auth = { authorization: `Basic ${Buffer.from(`admin:${admin_password}`).toString("base64")}` };
  const stats = async () => ((await (await fetch(`${base}/api/admin`, { headers: auth })).json()) as { page_cache: ResponseCacheStats }).page_cache;
  const overview = await (await fetch(`${base}/`)).text();
  const codes = [...overview.matchAll(/<option value="([A-Z0-9]{2})"/g)].map((found) => found[1]!);
  const page_bytes_max = 256 * 1024;
  let last = await stats();
  for (const from of [1960, 1970, 1980, 1990]) {
    for (const units of ["bags", "tonnes"]) {
      for (const code of codes) {
        const response = await fetch(`${base}/country/${code}?units=${units}&from=${from}`, { headers: COMPRESSED });
        await response.arrayBuffer();
        if (response.status !== 200) throw new Error(`/country/${code} answered ${response.status}`);
      }
      last = await stats();
      if (last.size_bytes + page_bytes_max >= last.size_bytes_max) return last;
    }
  }
  throw new Error(`the page cache did not fill: ${JSON.stringify(last)}`);
}
