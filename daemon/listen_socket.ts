import fs from "node:fs";
import net from "node:net";
import { getSystemErrorName } from "node:util";
import type { Config } from "../config/schema.js";

// The dashboard's listening socket, owned by the launcher for its whole life, so that it outlives
// every web process that serves it: while one web process hands over to the next, or is re-forked
// after a crash, connections wait in the socket's backlog instead of being refused.

/** The first fd systemd passes (SD_LISTEN_FDS_START in sd-daemon.h). */
const systemd_first_fd = 3;

/** A bound TCP socket held open by the launcher; `fd` is what each web process inherits. */
export interface ListenSocket {
  fd: number;
  /** For the log: where the socket came from. */
  description: string;
  /** The handle owning `fd` when the launcher bound it; kept referenced so it is never collected and closed. */
  handle?: object;
}

/**
 * systemd's socket activation (sd_listen_fds(3)): LISTEN_PID names the process the sockets are
 * for, LISTEN_FDS how many there are from fd 3 on. Variables meant for another process are
 * ignored; more than one socket is refused (materia-web.socket has one ListenStream=).
 */
export function systemd_listen_fd(env: NodeJS.ProcessEnv, pid: number): number | undefined {
  if (env.LISTEN_PID === undefined || env.LISTEN_PID !== String(pid)) return undefined;
  if (env.LISTEN_FDS !== "1") {
    throw new Error(`systemd passed LISTEN_FDS=${env.LISTEN_FDS ?? ""}: materia-web.socket must have exactly one ListenStream=`);
  }
  return systemd_first_fd;
}

type ServerHandle = { fd: number; getsockname(out: { address?: string; port?: number }): number };
type CreateServerHandle = (address: string, port: number, address_type: number, fd?: number, flags?: number) => ServerHandle | number;

/**
 * The socket from systemd, or one bound here to WEB_HOST:WEB_PORT. Throws one line naming the
 * address and the reason (EADDRINUSE, EACCES) when it cannot be had.
 */
export function open_listen_socket(config: Config, env: NodeJS.ProcessEnv = process.env): ListenSocket {
  const fd = systemd_listen_fd(env, process.pid);
  if (fd !== undefined) {
    if (!fs.fstatSync(fd).isSocket()) throw new Error(`fd ${fd} from systemd (LISTEN_FDS=1) is not a socket`);
    return { fd, description: `fd ${fd} from systemd (materia-web.socket)` };
  }
  // A net.Server cannot be used here: listening on it would make this process accept connections
  // too, and nothing here would answer them. Node's cluster module has the same need (the primary
  // holds the socket, only workers accept) and meets it with net._createServerHandle: a socket
  // bound, and not watched by this process's event loop. Each web process calls listen(2) on its
  // inherited copy; from the first one on, the kernel queues connections whoever accepts them.
  const create = (net as unknown as { _createServerHandle?: CreateServerHandle })._createServerHandle;
  if (typeof create !== "function") throw new Error(`this Node (${process.version}) has no net._createServerHandle; materia needs Node 20`);
  const address = `${config.web_host.includes(":") ? `[${config.web_host}]` : config.web_host}:${config.web_port}`;
  const handle = create(config.web_host, config.web_port, net.isIP(config.web_host));
  if (typeof handle === "number") throw new Error(`cannot listen on ${address}: ${getSystemErrorName(handle)}`);
  if (!(handle.fd >= 0)) throw new Error(`the socket bound to ${address} has no fd (${handle.fd})`);
  const bound: { address?: string; port?: number } = {};
  handle.getsockname(bound);
  // libuv reports a bind(2) that failed with EADDRINUSE only at listen(2), which happens in the web
  // process; the socket is left unbound meanwhile, and listen(2) would pick a random port for it.
  if (config.web_port !== 0 && bound.port !== config.web_port) throw new Error(`cannot listen on ${address}: EADDRINUSE`);
  return { fd: handle.fd, description: `${address} (port ${bound.port}) bound by the daemon`, handle };
}
