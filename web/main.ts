import type { AddressInfo } from "node:net";
import { ConfigError, load_config } from "../config/load.js";
import { configure_log, log } from "../lib/log.js";
import { create_app } from "./app.js";
import { load_catalog, type Catalog } from "./catalog.js";
import { create_bounded_server } from "./server_bounds.js";
import { ServingReader } from "./serving.js";

// The web process: run alone (`npm run web`) or forked by the daemon, which waits for the
// "web_listening" message and can receive "run_now" from the admin page.

/** After the grace, how long interrupted DuckDB queries get to return before their instance closes. */
const interrupted_queries_wait_ms = 500;

function main(): void {
  let config;
  try {
    config = load_config();
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    log.error(error.message);
    process.exit(2);
  }
  configure_log({ level: config.log_level, line_bytes_max: config.log_line_bytes_max });
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
  const request_run = process.send
    ? () => {
      try {
        return process.send!({ type: "run_now" });
      } catch {
        return false; // the channel closed: the daemon is gone
      }
    }
    : undefined;
  const server = create_bounded_server(create_app(config, reader, request_run), config);

  server.on("error", (error) => {
    log.error(`web: cannot listen on ${config.web_host}:${config.web_port}: ${error.message}`);
    process.exit(1);
  });
  server.listen(config.web_port, config.web_host, () => {
    const { address, port } = server.address() as AddressInfo;
    const url = `http://${address.includes(":") ? `[${address}]` : address}:${port}`;
    log.info(`web: listening on ${url}`, { serving: config.serving_duckdb_path });
    process.send?.({ type: "web_listening", url });
  });

  let stopping = false;
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
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    server.closeIdleConnections();
    const cut = setTimeout(() => server.closeAllConnections(), grace_ms);
    await closed;
    clearTimeout(cut);
    // Whatever still runs has lost its client: interrupt it and wait only briefly.
    await reader.close(interrupted_queries_wait_ms);
    log.info("web: stopped");
    process.exit(0);
  };
  process.on("SIGTERM", () => void stop("SIGTERM"));
  process.on("SIGINT", () => void stop("SIGINT"));
  // Forked by the daemon: when it goes away, so do we (nobody would re-fork or stop us).
  process.on("disconnect", () => void stop("the daemon closed the IPC channel"));
  process.on("uncaughtException", (error) => {
    log.error(error);
    process.exit(1);
  });
  process.on("unhandledRejection", (reason) => {
    log.error(reason instanceof Error ? reason : new Error(String(reason)));
    process.exit(1);
  });
}

main();
