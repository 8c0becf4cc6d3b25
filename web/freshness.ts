import fs from "node:fs";
import { format_age, freshness_path, judge_freshness, parse_freshness_record, type FreshnessVerdict } from "../lib/freshness.js";

/**
 * The web's view of the dead-man's switch (lib/freshness.ts): the daemon's record of its last
 * successful cycle, and the publish time of the serving file in use. Cheap enough for every
 * request: the record is read with statSync at most once per `recheck_ms` and re-read only when
 * the file changed (never async fs per request: DuckDB's queries fill the libuv threadpool that
 * fs shares). A web started alone, without a daemon, has no record and judges by the publish time.
 */
export class FreshnessMonitor {
  /** A stale threshold is hours; noticing a new record a second late changes nothing. */
  private static readonly recheck_ms = 1_000;
  private checked_at_ms = -Infinity;
  private identity = "";
  private last_success_at: string | null = null;

  constructor(
    private readonly state_dir: string,
    private readonly stale_after_s: number,
    /** The serving file in use: when it was published (export_info.exported_at). */
    private readonly last_publish_at: () => string | null,
  ) {}

  verdict(): FreshnessVerdict {
    return judge_freshness({ last_success_at: this.recorded_success(), last_publish_at: this.last_publish_at() },
      Date.now(), this.stale_after_s);
  }

  /**
   * The dashboard's warning while data is stale, else null. Pages are cached by key, so this
   * text is part of every page's cache key (web/pages.ts): a page rendered while fresh is never
   * served once data went stale, and the age shown is current to the minute.
   */
  banner(): string | null {
    const verdict = this.verdict();
    if (verdict.stale_reason === null) return null;
    const published = verdict.last_publish_age_s === null ? "" : `; this release was published ${format_age(verdict.last_publish_age_s)} ago`;
    const success = verdict.last_success_age_s === null
      ? "The data pipeline has not confirmed these figures"
      : `The data pipeline last succeeded ${format_age(verdict.last_success_age_s)} ago`;
    return `${success}${published}. Newer USDA figures may exist.`;
  }

  private recorded_success(): string | null {
    const now_ms = Date.now();
    if (now_ms - this.checked_at_ms < FreshnessMonitor.recheck_ms) return this.last_success_at;
    this.checked_at_ms = now_ms;
    const file = freshness_path(this.state_dir);
    const stat = fs.statSync(file, { throwIfNoEntry: false });
    const identity = stat ? `${stat.dev}:${stat.ino}:${stat.mtimeMs}:${stat.size}` : "";
    if (identity === this.identity) return this.last_success_at;
    // Written whole by rename (write_file_atomic): a read sees the old record or the new one.
    const text = stat ? read_or_undefined(file) : undefined;
    if (stat && text === undefined) return this.last_success_at; // replaced again meanwhile: read at the next check
    this.identity = identity;
    this.last_success_at = parse_freshness_record(text);
    return this.last_success_at;
  }
}

function read_or_undefined(file: string): string | undefined {
  try {
    return fs.readFileSync(file, "utf8");
  } catch {
    return undefined;
  }
}
