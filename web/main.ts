import net, { type AddressInfo } from "node:net";
import { ConfigError, load_config } from "../config/load.js";
import { configure_log, log } from "../lib/log.js";
import { inherited_listen_fd, type WebMessage } from "../lib/web_ipc.js";
import { AccessLog } from "./access_log.js";
import { create_app } from "./app.js";
import { Follower } from "./follow.js";
import { load_catalog, type Catalog } from "./catalog.js";
import { HttpError } from "./errors.js";
import { create_bounded_server } from "./server_bounds.js";
import { ServingReader } from "./serving.js";

// The web process: run alone (`npm run web`, it binds WEB_HOST:WEB_PORT itself) or forked by the
// daemon's launcher, which owns the listening socket and passes it in (lib/web_ipc.ts), waits for
// the "web_listening" message and can receive "run_now" from the admin page.

/** After the grace, how long interrupted DuckDB queries get to return before their instance closes. */
const interrupted_queries_wait_ms = 500;

async function main(): Promise<void> {
  let config;
  let listen_fd;
  try {
    config = load_config();
    listen_fd = inherited_listen_fd(process.env);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    log.error(error.message);
    process.exit(2);
  }
  configure_log({ level: config.log_level, line_bytes_max: config.log_line_bytes_max });
  process.on("uncaughtException", (error) => {
    log.error(error);
    process.exit(1);
  });
  process.on("unhandledRejection", (reason) => {
    log.error(reason instanceof Error ? reason : new Error(String(reason)));
    process.exit(1);
  });
  // DuckDB queries run on libuv's threadpool, which fs (static files) shares. The pool has started
  // before any of our code runs (the ESM loader reads files through it), so its size can only come
  // from the environment this process was started with.
  const threadpool_size = Number(process.env.UV_THREADPOOL_SIZE) || 4;
  if (config.web_query_concurrency_max >= threadpool_size) {
    log.warn(`web: WEB_QUERY_CONCURRENCY_MAX=${config.web_query_concurrency_max} leaves no libuv thread for file reads ` +
      `(UV_THREADPOOL_SIZE=${threadpool_size}): raise UV_THREADPOOL_SIZE in the environment that starts the web`);
  }

  const reader = new ServingReader<Catalog>({
    path: config.serving_duckdb_path,
    query_concurrency_max: config.web_query_concurrency_max,
    query_queue_max: config.web_query_queue_max,
    query_timeout_ms: config.web_query_timeout_ms,
    swap_check: config.web_swap_check,
    load_meta: load_catalog,
    describe_meta: (catalog) => `release ${catalog.release_id}`,
  });
  const tell_daemon = (message: WebMessage) => {
    try {
      return process.send!(message);
    } catch {
      return false; // the channel closed: the daemon is gone
    }
  };
  const request_run = process.send ? () => tell_daemon({ type: "run_now" }) : undefined;
  const access_log = new AccessLog({ interval_ms: config.web_access_log_interval_s * 1000, slow_ms: config.web_access_log_slow_ms,
    lines_max: config.web_access_log_lines_max });
  // A follower node (FOLLOW_REMOTE, `materia web --follow`) fetches each published serving file itself.
  const follower = config.follow_remote === "" ? undefined : new Follower(config, config.follow_remote);
  const server = create_bounded_server(create_app(config, reader, request_run, access_log, follower && (() => follower.view())), config);

  let stopping = false;
  // From the stop on, every response ends its keep-alive connection gracefully: the client reads
  // "Connection: close" and opens its next connection, which the web process that took over accepts.
  server.prependListener("request", (_request, response) => {
    if (stopping) response.setHeader("connection", "close");
  });
  const stop = async (reason: string) => {
    if (stopping) return;
    stopping = true;
    const grace_ms = config.web_shutdown_grace_ms;
    log.info(`web: stopping (${reason}): finishing requests for up to ${grace_ms} ms`);
    // The last resort if closing DuckDB itself hangs: still inside the daemon's margin before SIGKILL.
    setTimeout(() => {
      log.error("web: stop did not finish in time; exiting");
      process.exit(1);
    }, grace_ms + interrupted_queries_wait_ms + 200).unref();
    // Stop accepting with net.Server's close: http.Server's also closes idle keep-alive connections
    // at once, and a request already on its way on one of them would meet a reset. An idle one is
    // closed after its next response, by the keep-alive timeout, or at the end of the grace. The
    // listening socket stays open in the daemon, which queues new connections for the next web.
    const closed = new Promise<void>((resolve) => net.Server.prototype.close.call(server, () => resolve()));
    const cut = setTimeout(() => server.closeAllConnections(), grace_ms);
    // A download under way is cancelled: its rclone process group is killed, not left behind.
    await Promise.all([closed, follower?.stop()]);
    clearTimeout(cut);
    access_log.close();
    // Whatever still runs has lost its client: interrupt it and wait only briefly.
    await reader.close(interrupted_queries_wait_ms);
    log.info("web: stopped");
    process.exit(0);
  };
  process.on("SIGTERM", () => void stop("SIGTERM"));
  process.on("SIGINT", () => void stop("SIGINT"));
  // Forked by the daemon: when it goes away, so do we (nobody would re-fork or stop us).
  process.on("disconnect", () => void stop("the daemon closed the IPC channel"));

  // Open the serving file before taking connections, so that the first requests after a hand-over
  // cost what every request costs. Without a file yet, requests say "no data yet".
  try {
    await reader.with_snapshot(async () => undefined);
  } catch (error) {
    if (!(error instanceof HttpError)) throw error;
  }
  await follower?.start();
  if (stopping) return;

  server.on("error", (error) => {
    log.error(`web: cannot listen on ${listen_fd === undefined ? `${config.web_host}:${config.web_port}` : `fd ${listen_fd}`}: ${error.message}`);
    process.exit(1);
  });
  const on_listening = () => {
    const { address, port } = server.address() as AddressInfo;
    const url = `http://${address.includes(":") ? `[${address}]` : address}:${port}`;
    log.info(`web: listening on ${url}${listen_fd === undefined ? "" : ` (socket fd ${listen_fd} from the daemon)`}`,
      { serving: config.serving_duckdb_path });
    if (listen_fd !== undefined && config.web_port !== 0 && (address !== config.web_host || port !== config.web_port)) {
      log.warn(`web: the daemon's socket listens on ${url}, not on WEB_HOST:WEB_PORT=${config.web_host}:${config.web_port}: ` +
        "run infra/bootstrap.sh after changing them, so that materia-web.socket follows");
    }
    if (process.send) tell_daemon({ type: "web_listening", url });
  };
  if (listen_fd === undefined) server.listen(config.web_port, config.web_host, on_listening);
  else server.listen({ fd: listen_fd }, on_listening);
}

await main();
