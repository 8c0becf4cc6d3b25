import fs from "node:fs";
import path from "node:path";
import { read_json, write_file_atomic } from "../lib/durable_fs.js";
import { proc_stat_fields } from "../lib/proc_stat.js";
import { kill_process_group, process_group_alive } from "../lib/subprocess.js";

// The process groups the running job started, on disk, so that when a worker dies without
// cleaning up (kill -9, out of memory) the next one kills what it left: a SQLMesh that runs on
// alone would hold the lakehouse's lock against every later transform.

interface RememberedGroup {
  pgid: number;
  /** The leader's start time (/proc/<pid>/stat field 22): tells it from a later process with the same id. */
  leader_start_ticks: string | null;
}

const groups_path = (state_dir: string) => path.join(state_dir, "job_groups.json");

function start_ticks(pid: number): string | null {
  return proc_stat_fields(pid)?.[22] ?? null;
}

export function remember_group(state_dir: string, pgid: number): void {
  const groups = read_json<RememberedGroup[]>(groups_path(state_dir)) ?? [];
  groups.push({ pgid, leader_start_ticks: start_ticks(pgid) });
  write_file_atomic(groups_path(state_dir), JSON.stringify(groups));
}

export function forget_groups(state_dir: string): void {
  fs.rmSync(groups_path(state_dir), { force: true });
}

/**
 * Kills the groups a dead worker left; returns how many were alive. A group counts as the same
 * when its leader runs with the remembered start time, or when the leader is gone but the group
 * lives on (Linux gives no new process an id that a live group still uses).
 */
export async function kill_left_groups(state_dir: string, kill_grace_ms: number): Promise<number> {
  const groups = read_json<RememberedGroup[]>(groups_path(state_dir)) ?? [];
  let killed = 0;
  for (const group of groups) {
    const leader_ticks = start_ticks(group.pgid);
    const same = leader_ticks === null ? process_group_alive(group.pgid) : leader_ticks === group.leader_start_ticks;
    if (!same || !process_group_alive(group.pgid)) continue;
    await kill_process_group(group.pgid, kill_grace_ms);
    killed++;
  }
  forget_groups(state_dir);
  return killed;
}
