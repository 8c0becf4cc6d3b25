import fs from "node:fs";
import http from "node:http";
import net, { type AddressInfo } from "node:net";

export interface TestServer {
  url: string;
  /** Requests seen, in order: method, path and the If-None-Match sent. */
  requests: { method: string; path: string; if_none_match: string | undefined }[];
  close(): Promise<void>;
}

/** A real HTTP server on loopback standing in for USDA's (the one thing we cannot run here). */
export async function start_http_server(handler: http.RequestListener): Promise<TestServer> {
  const requests: TestServer["requests"] = [];
  const server = http.createServer((request, response) => {
    requests.push({ method: request.method ?? "", path: request.url ?? "", if_none_match: request.headers["if-none-match"] });
    handler(request, response);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/psdonline/downloads/psd_coffee_csv.zip`,
    requests,
    close: () => {
      server.closeAllConnections();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

/** Serves `file` as PSD Online does: with an ETag and Last-Modified, answering 304 to a matching If-None-Match. */
export function serve_release(file: string, etag: string, last_modified: string): http.RequestListener {
  return (request, response) => {
    if (request.headers["if-none-match"] === etag) {
      response.writeHead(304, { etag }).end();
      return;
    }
    const body = fs.readFileSync(file);
    response.writeHead(200, {
      "content-type": "application/zip",
      "content-length": body.length,
      etag,
      "last-modified": last_modified,
    }).end(body);
  };
}

/**
 * A port free on loopback now, for what cannot take port 0: a socket unit (ListenStream= takes no
 * port 0), a server that must come back on the address a client already knows.
 */
export async function free_port(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}
