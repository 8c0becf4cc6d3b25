// The contract between the daemon's launcher and each web process it forks (web/main.ts). The
// launcher is the one process a self-update never reloads, so a web process of a newer commit
// must still understand an older launcher: this contract only grows (new message types, new
// optional fields), it never renames or removes.
import { ConfigError } from "../config/load.js";

/** Names the fd of the listening socket a forked web process inherits (set by the launcher only). */
export const listen_fd_variable = "MATERIA_WEB_LISTEN_FD";

/** The listening socket's fd in a web process: the stdio slot after stdin, stdout, stderr and the IPC channel. */
export const web_listen_fd = 4;

/** What a web process tells the launcher: that it takes connections now, or the admin page's "Run now". */
export type WebMessage = { type: "web_listening"; url: string } | { type: "run_now" };

/** The inherited listening socket's fd from `MATERIA_WEB_LISTEN_FD`; undefined when run alone (`npm run web`). */
export function inherited_listen_fd(env: NodeJS.ProcessEnv): number | undefined {
  const value = env[listen_fd_variable];
  if (value === undefined) return undefined;
  const fd = Number(value);
  if (!/^\d+$/.test(value) || fd < 3) {
    throw new ConfigError(`config: ${listen_fd_variable} must name an inherited file descriptor, 3 or more (got "${value}")`);
  }
  return fd;
}
