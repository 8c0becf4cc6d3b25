import fs from "node:fs";
import path from "node:path";
import { write_file_atomic } from "./durable_fs.js";

// The dead-man's switch, shared by the daemon (which records each successful cycle), the web
// (/healthz, the banner) and `materia status`. Data is stale when nothing has confirmed it for
// STALE_AFTER_S: neither a successful pipeline cycle nor the publish of the serving file in use
// (a publish by hand, `materia pipeline run all`, confirms it as well as a cycle does).

/** What the daemon records in MATERIA_STATE_DIR, rewritten whole after each successful cycle. */
export interface FreshnessRecord {
  last_success_at: string;
}

export interface Freshness {
  /** When the daemon's last cycle succeeded; null when none is recorded. */
  last_success_at: string | null;
  /** When the serving file in use was published; null without one. */
  last_publish_at: string | null;
}

export interface FreshnessVerdict extends Freshness {
  last_success_age_s: number | null;
  last_publish_age_s: number | null;
  stale_after_s: number;
  /** Why the data is stale, one line; null when it is not. */
  stale_reason: string | null;
}

export const freshness_path = (state_dir: string) => path.join(state_dir, "freshness.json");

export function record_cycle_success(state_dir: string, at: Date): void {
  const record: FreshnessRecord = { last_success_at: at.toISOString() };
  fs.mkdirSync(state_dir, { recursive: true });
  write_file_atomic(freshness_path(state_dir), JSON.stringify(record));
}

/** The recorded last success; null when none is (no file yet, or one this version cannot read). */
export function parse_freshness_record(text: string | undefined): string | null {
  if (text === undefined) return null;
  try {
    const value = (JSON.parse(text) as Partial<FreshnessRecord>).last_success_at;
    return typeof value === "string" && Number.isFinite(Date.parse(value)) ? value : null;
  } catch {
    return null;
  }
}

/** The recorded last success, read now (the CLI and the daemon; the web caches it: web/freshness.ts). */
export function read_last_success(state_dir: string): string | null {
  try {
    return parse_freshness_record(fs.readFileSync(freshness_path(state_dir), "utf8"));
  } catch {
    return null;
  }
}

/**
 * When the serving file was last published, without opening it: its mtime (export_serving writes
 * it whole, then renames it into place). The web, which has it open, reads export_info.exported_at.
 */
export function serving_published_at(serving_path: string): string | null {
  const stat = fs.statSync(serving_path, { throwIfNoEntry: false });
  return stat ? stat.mtime.toISOString() : null;
}

/**
 * Judges the data at `now_ms`. Stale when the newer of the last success and the last publish is
 * older than `stale_after_s`; never stale when neither exists (no data is "unavailable", and says so).
 */
export function judge_freshness(freshness: Freshness, now_ms: number, stale_after_s: number): FreshnessVerdict {
  const age_s = (at: string | null) => (at === null ? null : Math.max(0, Math.floor((now_ms - Date.parse(at)) / 1000)));
  const last_success_age_s = age_s(freshness.last_success_at);
  const last_publish_age_s = age_s(freshness.last_publish_at);
  const confirmed_age_s = Math.min(last_success_age_s ?? Infinity, last_publish_age_s ?? Infinity);
  let stale_reason: string | null = null;
  if (Number.isFinite(confirmed_age_s) && confirmed_age_s > stale_after_s) {
    stale_reason = last_success_age_s === null
      ? `no pipeline cycle has succeeded, and the data was published ${format_age(last_publish_age_s!)} ago`
      : `no pipeline cycle has succeeded for ${format_age(last_success_age_s)}`;
    stale_reason += ` (STALE_AFTER_S=${stale_after_s})`;
  }
  return { ...freshness, last_success_age_s, last_publish_age_s, stale_after_s, stale_reason };
}

/** When data confirmed at the newer of the two instants turns stale (ms since the epoch); undefined without either. */
export function stale_at_ms(freshness: Freshness, stale_after_s: number): number | undefined {
  const confirmed = [freshness.last_success_at, freshness.last_publish_at].filter((at) => at !== null).map((at) => Date.parse(at));
  return confirmed.length === 0 ? undefined : Math.max(...confirmed) + stale_after_s * 1000 + 1000;
}

/** An age as a reader says it: "45 s", "12 min", "5 h 3 min", "3 d 4 h". */
export function format_age(age_s: number): string {
  const minutes = Math.floor(age_s / 60);
  const hours = Math.floor(minutes / 60);
  const days = Math.floor(hours / 24);
  if (age_s < 60) return `${age_s} s`;
  if (minutes < 60) return `${minutes} min`;
  if (hours < 48) return minutes % 60 === 0 ? `${hours} h` : `${hours} h ${minutes % 60} min`;
  return hours % 24 === 0 ? `${days} d` : `${days} d ${hours % 24} h`;
}
