import http from "node:http";
import type { Config } from "../config/schema.js";

// Node's HTTP server defaults let one slow client hold a socket for minutes: a body trickled at a
// byte every few seconds lasts until requestTimeout (300 s), slow headers until headersTimeout
// (60 s), and both are only checked every 30 s. Every bound here comes from config.

/**
 * How late a header or request timeout may fire: Node checks them on this interval (30 s by
 * default, which would let a slow client hold its socket that much past its bound).
 */
const connections_check_interval_ms = 1_000;

/** An HTTP server for `app` with every time and connection bound from config; listen() as usual. */
export function create_bounded_server(app: http.RequestListener, config: Config): http.Server {
  const server = http.createServer({
    // Node refuses headersTimeout > requestTimeout here; the config schema says so first, naming the settings.
    headersTimeout: config.web_headers_timeout_ms,
    requestTimeout: config.web_request_timeout_ms,
    keepAliveTimeout: config.web_keep_alive_timeout_ms,
    connectionsCheckingInterval: connections_check_interval_ms,
  }, app);
  // A socket with no byte either way (e.g. a client that stopped reading its answer) is closed.
  server.timeout = config.web_socket_idle_timeout_ms;
  server.maxConnections = config.web_connections_max;
  // Runs before the app: a request that comes with a body is the last on its connection. An answer
  // sent before the body was read (a 401, a 404, a 429) then closes the socket instead of waiting
  // on the client to trickle in the rest of a body nobody will read.
  server.prependListener("request", (req: http.IncomingMessage, res: http.ServerResponse) => {
    if (declares_body(req)) res.setHeader("Connection", "close");
  });
  return server;
}

function declares_body(req: http.IncomingMessage): boolean {
  const length = req.headers["content-length"];
  return req.headers["transfer-encoding"] !== undefined || (length !== undefined && length !== "0");
}
