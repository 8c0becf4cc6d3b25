import crypto from "node:crypto";
import fs from "node:fs";
import http from "node:http";
import https from "node:https";
import path from "node:path";
import { Readable, Transform, Writable, type TransformCallback } from "node:stream";
import { pipeline } from "node:stream/promises";
import { fileURLToPath } from "node:url";
import zlib from "node:zlib";
import yauzl from "yauzl";
import type { Config } from "../../config/schema.js";
import { abort_reason } from "../../lib/deadline.js";
import { fsync_path, rename_durably } from "../../lib/durable_fs.js";
import { log } from "../../lib/log.js";
import { next_current_release, read_current_release, write_current_release, type CurrentRelease } from "../current_release.js";
import { incoming_dir, LANDED_SUFFIX, list_landed_releases } from "../landing.js";
import { check_psd_header, etag_file_stem, landing_path, PSD_CSV_ENTRY } from "./psd_format.js";

export type ExtractResult =
  | { outcome: "up_to_date"; etag: string }
  | { outcome: "already_landed"; etag: string; path: string }
  | { outcome: "landed"; etag: string; path: string; csv_bytes: number };

/** A failure of the upstream or its data: reported as one line, nothing landed. */
export class ExtractError extends Error {}

interface Download {
  etag: string;
  release_date: Date;
  zip_path: string;
}

/**
 * Downloads PSD_SOURCE_URL (conditional on the last ETag seen), takes psd_coffee.csv out of
 * the zip and lands it gzipped at LANDING_DIR/psd/{year}/{month}/{etag}.csv.gzip. Streams
 * throughout; bounded by `stop` (the run's deadline, EXTRACT_TIMEOUT_S) and the size limits. On any failure nothing is
 * left in the landing dir. Whatever upstream serves becomes the current release
 * (MATERIA_STATE_DIR/current_release.json), a release landed before included.
 */
export async function run_extract(config: Config, signal: AbortSignal): Promise<ExtractResult> {
  const download_dir = path.join(config.materia_state_dir, "downloads");
  remove_stale_temporaries([download_dir, incoming_dir(config.landing_dir)]);

  const current = current_release_or_none(config.materia_state_dir);
  const zip_path = path.join(download_dir, `psd-${process.pid}-${Date.now()}.zip`);
  try {
    const download = await with_clear_abort(signal, () =>
      download_source(config, current?.etag, zip_path, signal));
    if (download === "not_modified") {
      log.info("extract: up to date", { etag: current!.etag });
      return { outcome: "up_to_date", etag: current!.etag };
    }
    const landed = find_landed(config.landing_dir, download.etag);
    if (landed) {
      log.info("extract: release already landed", { etag: download.etag, path: landed });
      make_current(config, current, download.etag, landed);
      return { outcome: "already_landed", etag: download.etag, path: landed };
    }
    const target = landing_path(config.landing_dir, download.release_date, download.etag);
    const csv_bytes = await with_clear_abort(signal, () =>
      land_csv(download.zip_path, target, config, signal));
    log.info("extract: landed a new release", { etag: download.etag, path: target, csv_bytes });
    make_current(config, current, download.etag, target);
    return { outcome: "landed", etag: download.etag, path: target, csv_bytes };
  } finally {
    fs.rmSync(zip_path, { force: true });
  }
}

/** A damaged pointer is replaced by this run (an unconditional download), not a reason to fail. */
function current_release_or_none(state_dir: string): CurrentRelease | undefined {
  try {
    return read_current_release(state_dir);
  } catch (error) {
    log.warn(`extract: ignoring the current-release pointer: ${(error as Error).message}`);
    return undefined;
  }
}

/** Points the current release at what upstream serves now, `landed_path`, if it names another. */
function make_current(config: Config, current: CurrentRelease | undefined, etag: string, landed_path: string): void {
  const file = path.relative(config.landing_dir, landed_path);
  const next = next_current_release(current, { etag, release_id: path.basename(file, LANDED_SUFFIX), file }, new Date());
  if (!next) return;
  write_current_release(config.materia_state_dir, next);
  log.info(`extract: the current release is now ${next.release_id}`, { was: current?.release_id ?? null });
}

function remove_stale_temporaries(dirs: string[]): void {
  // Only one pipeline runs at a time (the pipeline lock), so whatever is here was left by a crash.
  for (const dir of dirs) {
    fs.rmSync(dir, { recursive: true, force: true });
    fs.mkdirSync(dir, { recursive: true });
  }
}

/** Whatever an abort breaks in `work` becomes one line: the deadline's reason. */
async function with_clear_abort<T>(signal: AbortSignal, work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    if (signal.aborted) throw new ExtractError(abort_reason(signal));
    throw error;
  }
}

function find_landed(landing_dir: string, etag: string): string | undefined {
  const stem = etag_file_stem(etag);
  return list_landed_releases(landing_dir).find((release) => release.etag_stem === stem)?.path;
}

async function download_source(config: Config, known_etag: string | undefined, zip_path: string,
  signal: AbortSignal): Promise<Download | "not_modified"> {
  const url = new URL(config.psd_source_url);
  if (url.protocol === "file:") {
    const file = fileURLToPath(url);
    let stat: fs.Stats;
    try {
      stat = fs.statSync(file);
    } catch (error) {
      throw new ExtractError(`cannot read PSD_SOURCE_URL ${url.href}: ${(error as Error).message}`);
    }
    if (stat.size > config.extract_size_bytes_max) {
      throw new ExtractError(`${url.href} is ${stat.size} bytes, over EXTRACT_SIZE_BYTES_MAX=${config.extract_size_bytes_max}`);
    }
    const { sha256 } = await save_body(fs.createReadStream(file), zip_path, config.extract_size_bytes_max, signal);
    // A file has no ETag: its content hash is a stable one.
    const etag = `sha256-${sha256.slice(0, 32)}`;
    return etag === known_etag ? "not_modified" : { etag, release_date: stat.mtime, zip_path };
  }

  let response: http.IncomingMessage;
  try {
    response = await http_get(url, known_etag ? { "if-none-match": known_etag } : {}, config.extract_redirects_max, signal);
  } catch (error) {
    if (signal.aborted || error instanceof ExtractError) throw error;
    throw new ExtractError(`cannot reach ${url.href}: ${describe_network_error(error)}`);
  }
  const status = response.statusCode ?? 0;
  if (status === 304) {
    response.resume();
    return "not_modified";
  }
  if (status < 200 || status > 299) {
    response.resume();
    throw new ExtractError(`${url.href} answered HTTP ${status} ${response.statusMessage ?? ""}`.trim());
  }
  const declared_bytes = Number(response.headers["content-length"] ?? Number.NaN);
  if (declared_bytes > config.extract_size_bytes_max) {
    response.destroy();
    throw new ExtractError(`${url.href} declares ${declared_bytes} bytes, over EXTRACT_SIZE_BYTES_MAX=${config.extract_size_bytes_max}`);
  }
  const header_etag = response.headers.etag;
  if (header_etag && find_landed(config.landing_dir, header_etag)) {
    response.destroy();
    return { etag: header_etag, release_date: new Date(), zip_path };
  }
  let saved: { bytes: number; sha256: string };
  try {
    saved = await save_body(response, zip_path, config.extract_size_bytes_max, signal);
  } catch (error) {
    if (signal.aborted || error instanceof ExtractError) throw error;
    throw new ExtractError(`download from ${url.href} broke off: ${describe_network_error(error)}`);
  }
  if (Number.isFinite(declared_bytes) && saved.bytes !== declared_bytes) {
    throw new ExtractError(`truncated body from ${url.href}: got ${saved.bytes} of ${declared_bytes} bytes`);
  }
  const last_modified = new Date(response.headers["last-modified"] ?? Number.NaN);
  return {
    etag: header_etag ?? `sha256-${saved.sha256.slice(0, 32)}`,
    release_date: Number.isNaN(last_modified.getTime()) ? new Date() : last_modified,
    zip_path,
  };
}

/**
 * GET with node:http(s), following at most `redirects_max` redirects. Not fetch(): undici
 * buffered most of a fast download in memory (77 MB for a 50 MB zip on loopback), where a
 * node:http response stream holds to its backpressure (40 MB, the GC's slack).
 */
async function http_get(url: URL, headers: Record<string, string>, redirects_max: number,
  signal: AbortSignal): Promise<http.IncomingMessage> {
  for (let redirects = 0; ; redirects++) {
    const client = url.protocol === "https:" ? https : http;
    const response = await new Promise<http.IncomingMessage>((resolve, reject) =>
      client.get(url, { headers, signal }, resolve).once("error", reject));
    const location = response.headers.location;
    if (![301, 302, 303, 307, 308].includes(response.statusCode ?? 0) || !location) return response;
    response.resume();
    if (redirects === redirects_max) throw new ExtractError(`${url.href} redirects more than EXTRACT_REDIRECTS_MAX=${redirects_max} times`);
    url = new URL(location, url);
  }
}

function describe_network_error(error: unknown): string {
  return (error as NodeJS.ErrnoException).code ?? (error as Error).message;
}

async function save_body(body: Readable, file: string, size_bytes_max: number, signal: AbortSignal) {
  const hash = crypto.createHash("sha256");
  let bytes = 0;
  const meter = new Transform({
    transform(chunk: Buffer, _encoding, callback: TransformCallback) {
      bytes += chunk.length;
      if (bytes > size_bytes_max) {
        callback(new ExtractError(`download exceeds EXTRACT_SIZE_BYTES_MAX=${size_bytes_max} bytes`));
        return;
      }
      hash.update(chunk);
      callback(null, chunk);
    },
  });
  await pipeline(body, meter, fs.createWriteStream(file), { signal });
  return { bytes, sha256: hash.digest("hex") };
}

/** Passes the CSV through once its first line has been checked to be PSD's header. */
function psd_header_gate(): Transform {
  const header_bytes_max = 4096;
  let pending: Buffer | undefined = Buffer.alloc(0);
  return new Transform({
    transform(chunk: Buffer, _encoding, callback: TransformCallback) {
      if (pending === undefined) {
        callback(null, chunk);
        return;
      }
      pending = Buffer.concat([pending, chunk]);
      const newline = pending.indexOf(0x0a);
      if (newline === -1 && pending.length <= header_bytes_max) {
        callback();
        return;
      }
      try {
        check_psd_header(pending.subarray(0, newline === -1 ? header_bytes_max : newline).toString("utf8"));
      } catch (error) {
        callback(new ExtractError((error as Error).message));
        return;
      }
      const passed = pending;
      pending = undefined;
      callback(null, passed);
    },
    flush(callback: TransformCallback) {
      if (pending === undefined) {
        callback();
        return;
      }
      try {
        check_psd_header(pending.toString("utf8"));
        callback(new ExtractError(`${PSD_CSV_ENTRY} has a header but no rows`));
      } catch (error) {
        callback(new ExtractError((error as Error).message));
      }
    },
  });
}

/**
 * Lands the zip's CSV gzipped. A deflated zip entry already is a gzip member's body (the same
 * raw deflate stream, CRC-32 and size), so it is rewrapped with a gzip header and trailer
 * instead of being inflated and compressed again; a stored entry is compressed. Either way the
 * incoming file is then read back through gunzip, which checks the CRC and size, and through the
 * PSD header check, before it is renamed into place.
 */
async function land_csv(zip_path: string, target: string, config: Config, signal: AbortSignal): Promise<number> {
  const zip = await open_zip(zip_path);
  const incoming = path.join(incoming_dir(config.landing_dir), `${path.basename(target)}.${process.pid}.tmp`);
  try {
    const entry = await find_entry(zip);
    if (entry.uncompressedSize > config.extract_csv_size_bytes_max) {
      throw new ExtractError(`${PSD_CSV_ENTRY} is ${entry.uncompressedSize} bytes unzipped, over EXTRACT_CSV_SIZE_BYTES_MAX=${config.extract_csv_size_bytes_max}`);
    }
    const rewrap = entry.isCompressed() && entry.compressionMethod === DEFLATE;
    const csv = await open_entry(zip, entry, rewrap);
    await pipeline(csv, rewrap ? gzip_member_around(entry) : zlib.createGzip(), fs.createWriteStream(incoming), { signal })
      .catch((error: Error) => {
        throw signal.aborted ? error : zip_error(error);
      });
    const csv_bytes = await verify_landed_csv(incoming, signal);
    if (csv_bytes !== entry.uncompressedSize) {
      throw new ExtractError(`${PSD_CSV_ENTRY} unzipped to ${csv_bytes} bytes, not the ${entry.uncompressedSize} its zip entry declares`);
    }
    fsync_path(incoming);
    fs.mkdirSync(path.dirname(target), { recursive: true });
    rename_durably(incoming, target);
    return csv_bytes;
  } finally {
    fs.rmSync(incoming, { force: true });
    zip.close();
  }
}

const DEFLATE = 8;

/** Puts a gzip header (RFC 1952: no name, no mtime) before a raw deflate stream and its CRC-32 and size after it. */
function gzip_member_around(entry: yauzl.Entry): Transform {
  const header = Buffer.from([0x1f, 0x8b, DEFLATE, 0, 0, 0, 0, 0, 0, 0xff]);
  const trailer = Buffer.alloc(8);
  trailer.writeUInt32LE(entry.crc32 >>> 0, 0);
  trailer.writeUInt32LE(entry.uncompressedSize % 2 ** 32, 4);
  let started = false;
  return new Transform({
    transform(chunk: Buffer, _encoding, callback: TransformCallback) {
      callback(null, started ? chunk : Buffer.concat([header, chunk]));
      started = true;
    },
    flush(callback: TransformCallback) {
      callback(null, started ? trailer : Buffer.concat([header, trailer]));
    },
  });
}

/** Reads the landed gzip back: gunzip checks CRC and size, the gate checks PSD's header. Returns the CSV's size. */
async function verify_landed_csv(file: string, signal: AbortSignal): Promise<number> {
  let csv_bytes = 0;
  const counter = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      csv_bytes += chunk.length;
      callback();
    },
  });
  // 256 KiB chunks: the 16–64 KiB defaults double this pass's time in per-chunk overhead, and
  // 1 MiB ones raise peak memory by half again (measured on a 1 GB CSV) for little more speed.
  const chunk_bytes = 256 * 1024;
  await pipeline(fs.createReadStream(file, { highWaterMark: chunk_bytes }), zlib.createGunzip({ chunkSize: chunk_bytes }),
    psd_header_gate(), counter, { signal })
    .catch((error: Error) => {
      throw error instanceof ExtractError || signal.aborted ? error : zip_error(error);
    });
  return csv_bytes;
}

function open_entry(zip: yauzl.ZipFile, entry: yauzl.Entry, raw: boolean): Promise<Readable> {
  // @types/yauzl marks every option as required; yauzl itself takes any subset.
  const options = (raw ? { decompress: false } : {}) as yauzl.ZipFileOptions;
  return new Promise((resolve, reject) =>
    zip.openReadStream(entry, options, (error, stream) => (error ? reject(zip_error(error)) : resolve(stream))));
}

function zip_error(error: Error): ExtractError {
  return new ExtractError(`body is not a readable zip file: ${error.message}`);
}

function open_zip(zip_path: string): Promise<yauzl.ZipFile> {
  return new Promise((resolve, reject) =>
    yauzl.open(zip_path, { lazyEntries: true, autoClose: false, validateEntrySizes: true }, (error, zip) =>
      error ? reject(zip_error(error)) : resolve(zip)));
}

function find_entry(zip: yauzl.ZipFile): Promise<yauzl.Entry> {
  const seen: string[] = [];
  return new Promise((resolve, reject) => {
    zip.on("entry", (entry: yauzl.Entry) => {
      if (path.posix.basename(entry.fileName) === PSD_CSV_ENTRY) {
        resolve(entry);
        return;
      }
      if (seen.length < 10) seen.push(entry.fileName);
      zip.readEntry();
    });
    zip.on("end", () => reject(new ExtractError(`zip holds no ${PSD_CSV_ENTRY} (found: ${seen.join(", ") || "nothing"})`)));
    zip.on("error", (error: Error) => reject(zip_error(error)));
    zip.readEntry();
  });
}
