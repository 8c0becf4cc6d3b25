import { execFile } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { promisify } from "node:util";
import yazl from "yazl";
import { compiled_path } from "../lib/paths.js";
import { serve_release, start_http_server } from "../test/support/http_server.js";
import { shipped_csv } from "../test/support/psd_zip.js";
import { shipped_zip_path } from "../test/support/sandbox.js";
import { figure, sample, seconds_of, side_by_side, type Figure } from "./stats.js";
import type { BenchContext } from "./workspace.js";

const run_file = promisify(execFile);
const MB = 1024 * 1024;

/**
 * 5. extract against curl: a large PSD-layout zip served on loopback, downloaded by our extract
 * (which also unzips, checks and lands it gzipped) and by `curl -o` followed by `unzip -t` (which
 * inflates every entry and checks its CRC: the same checking work); and the extract's peak
 * memory above idle, on the large file and on the real one: it must not grow with the file.
 */
export async function bench_extract_vs_curl(context: BenchContext): Promise<Figure[]> {
  const { workspace } = context;
  const csv_bytes_min = (context.quick ? 20 : 200) * MB;
  const runs = context.quick ? 2 : 3;
  const big_zip = path.join(workspace.dir, "psd_big.zip");
  const csv_bytes = await write_big_psd_zip(big_zip, csv_bytes_min);

  const big = await measure_extract(workspace.dir, big_zip, runs);
  const real = await measure_extract(workspace.dir, shipped_zip_path, runs);
  const zip_mb = fs.statSync(big_zip).size / MB;
  const throughput = (seconds: number[]) => sample(seconds.map((s) => zip_mb / s), "MB/s");
  return [
    figure("5a", `extract vs curl -o + unzip -t: throughput on a ${zip_mb.toFixed(0)} MB zip of ${(csv_bytes / MB).toFixed(0)} MB CSV`,
      throughput(big.extract_seconds), throughput(big.curl_seconds), "≥ 0.8×", (ratio) => ratio >= 0.8),
    figure("5b", "extract peak RSS above idle: large file vs the real one",
      sample(big.rss_above_idle_mb, "MB"), sample(real.rss_above_idle_mb, "MB"), "< 50 MB on the large file",
      () => Math.max(...big.rss_above_idle_mb) < 50),
  ];
}

async function measure_extract(dir: string, zip: string, runs: number) {
  const server = await start_http_server(serve_release(zip, `"bench-${path.basename(zip)}"`, new Date().toUTCString()));
  const rss_above_idle_mb: number[] = [];
  try {
    let run = 0;
    const times = await side_by_side(runs,
      async () => {
        // Each run lands into an empty dir of its own, so it downloads and lands the whole file.
        const run_dir = path.join(dir, `extract-run-${run++}`);
        fs.rmSync(run_dir, { recursive: true, force: true });
        const env = { ...process.env, PSD_SOURCE_URL: server.url, LANDING_DIR: path.join(run_dir, "landing"),
          MATERIA_STATE_DIR: path.join(run_dir, "state"), EXTRACT_SIZE_BYTES_MAX: String(4096 * MB),
          EXTRACT_CSV_SIZE_BYTES_MAX: String(16384 * MB) };
        const { stdout } = await run_file(process.execPath, [compiled_path("bench/extract_probe.ts")], { env, timeout: 600_000 });
        const probe = JSON.parse(stdout) as { outcome: string; seconds: number; idle_rss_bytes: number; peak_rss_bytes: number };
        if (probe.outcome !== "landed") throw new Error(`extract probe: ${probe.outcome}, not landed`);
        rss_above_idle_mb.push((probe.peak_rss_bytes - probe.idle_rss_bytes) / MB);
        fs.rmSync(run_dir, { recursive: true, force: true });
        return probe.seconds;
      },
      () => {
        const output = path.join(dir, "curl-download.zip");
        return seconds_of(async () => {
          await run_file("curl", ["--silent", "--show-error", "--fail", "--max-time", "600", "-o", output, server.url]);
          await run_file("unzip", ["-tq", output], { timeout: 600_000 });
          fs.rmSync(output, { force: true });
        });
      });
    return { extract_seconds: times.ours, curl_seconds: times.reference, rss_above_idle_mb };
  } finally {
    await server.close();
  }
}

/** A PSD-layout zip whose CSV (the real rows, repeated) is at least `csv_bytes_min`; returns the CSV's size. */
async function write_big_psd_zip(file: string, csv_bytes_min: number): Promise<number> {
  const [header, ...rows] = (await shipped_csv()).split("\r\n");
  const body = Buffer.from(rows.filter(Boolean).join("\r\n") + "\r\n");
  const copies = Math.ceil(csv_bytes_min / body.length);
  function* csv() {
    yield Buffer.from(header + "\r\n");
    for (let copy = 0; copy < copies; copy++) yield body;
  }
  const zip = new yazl.ZipFile();
  zip.addReadStream(Readable.from(csv()), "psd_coffee.csv");
  zip.end();
  await pipeline(zip.outputStream, fs.createWriteStream(file));
  return header!.length + 2 + copies * body.length;
}
