import fs from "node:fs";
import { proc_stat_fields } from "../lib/proc_stat.js";

// Linux /proc readings for the footprint bench: a process tree's resident memory and CPU time.

const CLOCK_TICKS_PER_S = 100; // USER_HZ, 100 on every Linux architecture we run on

/** `pid` and every process below it. */
export function process_tree(pid: number): number[] {
  const children = new Map<number, number[]>();
  for (const entry of fs.readdirSync("/proc").filter((name) => /^\d+$/.test(name))) {
    const parent = Number(proc_stat_fields(Number(entry))?.[4]);
    if (Number.isFinite(parent)) children.set(parent, [...(children.get(parent) ?? []), Number(entry)]);
  }
  const tree: number[] = [];
  const visit = (p: number) => {
    tree.push(p);
    for (const child of children.get(p) ?? []) visit(child);
  };
  visit(pid);
  return tree;
}

/**
 * Resident memory of `pids`, summed. "Rss" counts every shared page (the node binary, DuckDB's
 * library) once per process; "Pss" splits each shared page among the processes that map it, so
 * its sum is what the processes cost the machine.
 */
export function resident_bytes(pids: number[], kind: "Rss" | "Pss"): number {
  let total = 0;
  for (const pid of pids) {
    try {
      const match = new RegExp(`^${kind}:\\s+(\\d+) kB$`, "m").exec(fs.readFileSync(`/proc/${pid}/smaps_rollup`, "utf8"));
      total += match ? Number(match[1]) * 1024 : 0;
    } catch {
      // gone since the tree was read
    }
  }
  return total;
}

export function cpu_seconds(pids: number[]): number {
  let ticks = 0;
  for (const pid of pids) {
    const fields = proc_stat_fields(pid);
    if (fields) ticks += Number(fields[14]) + Number(fields[15]); // user + system
  }
  return ticks / CLOCK_TICKS_PER_S;
}

/** What a soak samples of one process: resident memory (both ways), open file descriptors and threads. */
export interface ProcessReading {
  rss_bytes: number;
  pss_bytes: number;
  fds: number;
  threads: number;
}

/** One process's reading; undefined once it is gone. */
export function read_process(pid: number): ProcessReading | undefined {
  try {
    const rollup = fs.readFileSync(`/proc/${pid}/smaps_rollup`, "utf8");
    const kilobytes = (kind: string) => Number(new RegExp(`^${kind}:\\s+(\\d+) kB$`, "m").exec(rollup)?.[1] ?? Number.NaN) * 1024;
    const threads = Number(/^Threads:\s+(\d+)$/m.exec(fs.readFileSync(`/proc/${pid}/status`, "utf8"))?.[1] ?? Number.NaN);
    const reading = { rss_bytes: kilobytes("Rss"), pss_bytes: kilobytes("Pss"), fds: fs.readdirSync(`/proc/${pid}/fd`).length, threads };
    return Object.values(reading).every(Number.isFinite) ? reading : undefined;
  } catch {
    return undefined; // gone while we read it
  }
}

/** Its command line, arguments joined by spaces; undefined once it is gone. */
export function command_line(pid: number): string | undefined {
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").join(" ").trim();
  } catch {
    return undefined;
  }
}
