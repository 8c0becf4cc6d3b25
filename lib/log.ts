import fs from "node:fs";
import winston from "winston";

// journald reads a leading "<N>" as the entry's syslog priority, so `journalctl -p err` works.
const syslog_priority: Record<string, number> = { error: 3, warn: 4, info: 6, debug: 7 };
let line_bytes_max = 16 * 1024;

/** One journal entry per line: newlines escaped, and cut at the configured bound. */
export function format_line(level: string, message: string, fields: Record<string, unknown>): string {
  const extra = Object.keys(fields).length > 0 ? " " + JSON.stringify(fields) : "";
  let line = `<${syslog_priority[level] ?? 6}>${level}: ${message}${extra}`.replace(/\r?\n/g, "\\n");
  if (Buffer.byteLength(line) > line_bytes_max) {
    line = Buffer.from(line).subarray(0, line_bytes_max).toString("utf8").replace(/\uFFFD$/, "") + "…[cut]";
  }
  return line;
}

const line_format = winston.format.printf((info) => {
  const { level, message, stack, ...rest } = info as Record<string, unknown> & { level: string };
  delete rest[Symbol.for("level") as unknown as string];
  delete rest[Symbol.for("splat") as unknown as string];
  const text = typeof stack === "string" ? stack : String(message);
  return format_line(level, text, rest);
});

export const log = winston.createLogger({
  level: "info",
  levels: { error: 0, warn: 1, info: 2, debug: 3 },
  format: winston.format.combine(winston.format.errors({ stack: true }), line_format),
  transports: [new winston.transports.Console()],
});

/**
 * True when stderr is the journal (systemd sets JOURNAL_STREAM to its device:inode): a program's
 * own stderr lines then need a "<N>" priority too, or journald files them at info.
 */
export function stderr_is_journal(env: NodeJS.ProcessEnv = process.env): boolean {
  if (!env.JOURNAL_STREAM) return false;
  try {
    const stat = fs.fstatSync(2);
    return env.JOURNAL_STREAM === `${stat.dev}:${stat.ino}`;
  } catch {
    return false;
  }
}

export function configure_log(options: { level: string; line_bytes_max: number }): void {
  log.level = options.level;
  line_bytes_max = options.line_bytes_max;
}
