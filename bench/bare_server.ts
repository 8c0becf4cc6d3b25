import fs from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";

// The limit of the web benchmarks: a bare node:http server answering recorded responses (the
// same status, headers and body bytes materia sent) from memory, and doing nothing else. Run as
// its own process, as the web is, so both share the machine the same way.

export interface RecordedResponse {
  url: string;
  /** Whether it answers requests that carry an Accept-Encoding header. */
  compressed: boolean;
  status: number;
  /** Flat [name, value, …], as materia sent them (Date and connection headers left out). */
  headers: string[];
  body_base64: string;
}

const lookup_key = (url: string, compressed: boolean) => `${compressed ? "z" : "-"}${url}`;

function main(): void {
  const recorded = JSON.parse(fs.readFileSync(process.argv[2]!, "utf8")) as RecordedResponse[];
  const responses = new Map(recorded.map((r) => [lookup_key(r.url, r.compressed),
    { status: r.status, headers: r.headers, body: Buffer.from(r.body_base64, "base64") }]));
  const server = http.createServer((req, res) => {
    const response = responses.get(lookup_key(req.url ?? "", req.headers["accept-encoding"] !== undefined));
    if (response === undefined) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(response.status, response.headers);
    res.end(response.body);
  });
  server.listen(0, "127.0.0.1", () => process.send!({ port: (server.address() as AddressInfo).port }));
  process.on("disconnect", () => process.exit(0));
}

main();
