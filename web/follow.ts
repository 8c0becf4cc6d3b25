import fs from "node:fs";
import path from "node:path";
import type { Config } from "../config/schema.js";
import { record_cycle_success } from "../lib/freshness.js";
import { fsync_path, rename_durably } from "../lib/durable_fs.js";
import { log } from "../lib/log.js";
import { rclone, remote_stat, type RcloneCall, type RemoteEntry } from "../lib/rclone.js";
import { file_digest, manifest_bytes_max, manifest_path, parse_manifest, serving_file_path, type ServingManifest } from "../lib/serving_manifest.js";

// A follower web node (`materia web --follow REMOTE`): no pipeline, only the web, fed by a daemon
// that publishes each serving file to REMOTE (jobs/publish). Every FOLLOW_POLL_INTERVAL_S it looks
// at the manifest, downloads a file it does not have to a temporary name beside SERVING_DUCKDB_PATH,
// checks its size and sha256 against the manifest, and renames it over the served path; the
// ServingReader notices the new inode on the next request and swaps as it does for export_serving.
// A file that fails the check is never renamed in: the node keeps serving its last good release.

/** What /healthz shows of the follower: no remote name, no path, no rclone text (the log has those). */
export interface FollowView {
  /** The release the remote's manifest names; null before a manifest was read. */
  manifest_release_id: string | null;
  manifest_sha256: string | null;
  /** sha256 of the local serving file; null without one. */
  local_sha256: string | null;
  /** The local file is not the one the manifest names; null before a manifest was read. */
  behind: boolean | null;
  /** Since when the local file has not been the manifest's; null when it is. */
  behind_since: string | null;
  behind_s: number | null;
  last_poll_at: string | null;
  /** The last poll that read the manifest (and fetched its file, if needed). */
  last_success_at: string | null;
  last_success_age_s: number | null;
  /** Why the last poll failed, in words safe for anyone; null when it succeeded. */
  last_error: string | null;
}

/** A poll's failure: `reason` is public, `detail` (paths, rclone's words) goes to the log only. */
class PollError extends Error {
  constructor(readonly reason: string, readonly detail = "") {
    super(detail === "" ? reason : `${reason}: ${detail}`);
  }
}

export class Follower {
  private timer: NodeJS.Timeout | undefined;
  private polling: Promise<void> | undefined;
  private readonly stop_controller = new AbortController();
  private local_sha256: string | null = null;
  private manifest: ServingManifest | undefined;
  /** The manifest object last read (size, time): when unchanged, the manifest is not read again. */
  private manifest_entry: RemoteEntry | undefined;
  /**
   * Why the manifest's file failed the check: not downloaded again until the manifest is rewritten
   * (each publish rewrites it, so a file uploaded again is tried again), nor logged again.
   */
  private refusal: PollError | undefined;
  /** The confirmation last recorded as this node's freshness. */
  private recorded_confirmed_at: string | undefined;
  private behind_since: string | null = null;
  private last_poll_at: string | null = null;
  private last_success_at: string | null = null;
  private last_error: PollError | undefined;
  private readonly download_path: string;

  constructor(private readonly config: Config, private readonly remote: string) {
    const served = config.serving_duckdb_path;
    this.download_path = path.join(path.dirname(served), `${path.basename(served, ".duckdb")}_download.duckdb`);
  }

  /** Hashes the local file, then polls now and every FOLLOW_POLL_INTERVAL_S until stop(). */
  async start(): Promise<void> {
    // A download a crash interrupted is never reused.
    fs.rmSync(this.download_path, { force: true });
    if (fs.existsSync(this.config.serving_duckdb_path)) this.local_sha256 = (await file_digest(this.config.serving_duckdb_path)).sha256;
    log.info(`follow: following ${this.remote} every ${this.config.follow_poll_interval_s} s`,
      { local_sha256: this.local_sha256 });
    this.schedule(0);
  }

  /** Cancels a poll under way (its rclone group is killed) and waits for it. */
  async stop(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.stop_controller.abort();
    await this.polling;
  }

  view(now_ms = Date.now()): FollowView {
    const age_s = (at: string | null) => (at === null ? null : Math.max(0, Math.floor((now_ms - Date.parse(at)) / 1000)));
    return {
      manifest_release_id: this.manifest?.release_id ?? null,
      manifest_sha256: this.manifest?.sha256 ?? null,
      local_sha256: this.local_sha256,
      behind: this.manifest === undefined ? null : this.behind_since !== null,
      behind_since: this.behind_since,
      behind_s: age_s(this.behind_since),
      last_poll_at: this.last_poll_at,
      last_success_at: this.last_success_at,
      last_success_age_s: age_s(this.last_success_at),
      last_error: this.last_error?.reason ?? null,
    };
  }

  private schedule(delay_ms: number): void {
    if (this.stop_controller.signal.aborted) return;
    this.timer = setTimeout(() => {
      this.polling = this.poll().finally(() => {
        this.polling = undefined;
        this.schedule(this.config.follow_poll_interval_s * 1000);
      });
    }, delay_ms);
  }

  private async poll(): Promise<void> {
    this.last_poll_at = new Date().toISOString();
    try {
      await this.follow_manifest();
      this.last_success_at = new Date().toISOString();
      if (this.last_error) log.info(`follow: ${this.remote} answers again`);
      this.last_error = undefined;
    } catch (error) {
      if (this.stop_controller.signal.aborted) return;
      const failure = error instanceof PollError ? error : new PollError("the poll failed", (error as Error).message);
      // One line per failure, not one per poll: an unreachable remote would say the same every poll.
      if (failure.message !== this.last_error?.message) {
        log.error(`follow: ${failure.message}${this.local_sha256 ? "; still serving the local file" : "; no local file to serve yet"}`);
      }
      this.last_error = failure;
    }
  }

  private async follow_manifest(): Promise<void> {
    // One bound for the listing and the read together.
    const manifest_deadline_ms = Date.now() + this.config.follow_manifest_timeout_s * 1000;
    const entry = await remote_stat(manifest_path(this.remote), this.call(manifest_deadline_ms))
      .catch((error: Error) => { throw new PollError("the remote does not answer", error.message); });
    if (!entry) throw new PollError("the remote has no manifest yet", `${manifest_path(this.remote)} does not exist`);
    const unchanged = this.manifest_entry !== undefined && entry.Size === this.manifest_entry.Size && entry.ModTime === this.manifest_entry.ModTime;
    if (!unchanged || !this.manifest) {
      const text = await rclone(["cat", manifest_path(this.remote)], this.call(manifest_deadline_ms), manifest_bytes_max)
        .catch((error: Error) => { throw new PollError("the manifest cannot be read", error.message); });
      try {
        this.manifest = parse_manifest(text);
      } catch (error) {
        throw new PollError("the manifest is invalid", (error as Error).message);
      }
      this.manifest_entry = entry;
      this.refusal = undefined;
    }
    const manifest = this.manifest;
    if (manifest.sha256 !== this.local_sha256) {
      this.behind_since ??= new Date().toISOString();
      if (this.refusal) throw this.refusal;
      await this.fetch(manifest);
    }
    this.behind_since = null;
    // The daemon's confirmation of the file we serve is our dead-man's switch (lib/freshness.ts).
    if (manifest.confirmed_at !== this.recorded_confirmed_at) {
      record_cycle_success(this.config.materia_state_dir, new Date(manifest.confirmed_at));
      this.recorded_confirmed_at = manifest.confirmed_at;
    }
  }

  /** Downloads, checks and renames in the file the manifest names; a file that fails the check is refused for good. */
  private async fetch(manifest: ServingManifest): Promise<void> {
    const what = `release ${manifest.release_id} (sha256 ${manifest.sha256.slice(0, 12)}…)`;
    if (manifest.size_bytes > this.config.follow_size_bytes_max) {
      this.refuse(`${what} is ${manifest.size_bytes} bytes, more than FOLLOW_SIZE_BYTES_MAX=${this.config.follow_size_bytes_max}`);
    }
    const started_ms = Date.now();
    fs.mkdirSync(path.dirname(this.download_path), { recursive: true });
    try {
      // --max-transfer bounds the disk a lying remote can fill; the check below catches the rest.
      await rclone(["copyto", "--max-transfer", String(this.config.follow_size_bytes_max),
        serving_file_path(this.remote, manifest.sha256), this.download_path], this.call(Date.now() + this.config.follow_download_timeout_s * 1000))
        .catch((error: Error) => { throw new PollError(`the download of ${what} failed`, error.message); });
      const got = await file_digest(this.download_path);
      if (got.size_bytes !== manifest.size_bytes) {
        this.refuse(`${what} is ${got.size_bytes} bytes, the manifest says ${manifest.size_bytes}: truncated or wrong file`);
      }
      if (got.sha256 !== manifest.sha256) {
        this.refuse(`${what} has sha256 ${got.sha256.slice(0, 12)}…, not the manifest's: corrupt or wrong file`);
      }
      fsync_path(this.download_path);
      // DuckDB finds a WAL by path: a stale one would be replayed into the new file.
      fs.rmSync(`${this.config.serving_duckdb_path}.wal`, { force: true });
      rename_durably(this.download_path, this.config.serving_duckdb_path);
      this.local_sha256 = manifest.sha256;
      log.info(`follow: fetched ${what}, ${got.size_bytes} bytes in ${Date.now() - started_ms} ms; it serves from the next request`);
    } finally {
      fs.rmSync(this.download_path, { force: true });
    }
  }

  private refuse(reason: string): never {
    this.refusal = new PollError(`refused ${reason}`);
    throw this.refusal;
  }

  /** An rclone call bounded by what is left until `deadline_ms`. */
  private call(deadline_ms: number): RcloneCall {
    return { timeout_ms: Math.max(1, deadline_ms - Date.now()), kill_grace_ms: this.config.subprocess_kill_grace_ms,
      output_tail_bytes_max: this.config.subprocess_output_tail_bytes_max, cancel: this.stop_controller.signal };
  }
}
