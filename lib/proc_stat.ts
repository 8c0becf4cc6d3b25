import fs from "node:fs";

/**
 * /proc/<pid>/stat as an array indexed by proc(5)'s field numbers (4 the parent, 14 and 15 user
 * and system ticks, 22 the start time); undefined once the process is gone. The command name
 * (field 2) may hold spaces and parentheses, so the fields after it are split from its last ")".
 */
export function proc_stat_fields(pid: number): string[] | undefined {
  let text: string;
  try {
    text = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
  } catch {
    return undefined;
  }
  const name_end = text.lastIndexOf(")");
  return ["", String(pid), text.slice(text.indexOf("(") + 1, name_end), ...text.slice(name_end + 2).split(" ")];
}
