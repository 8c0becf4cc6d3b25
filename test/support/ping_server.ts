import crypto from "node:crypto";
import http from "node:http";
import type { AddressInfo } from "node:net";

export interface PingServer {
  /** A check's ping URL, as healthchecks.io hands them out: /ping/<uuid>. */
  url: string;
  /** Every ping so far, oldest first: its path and body. */
  pings: { path: string; body: string }[];
  /** The pings whose path is the check's URL plus `suffix` ("", "/start", "/fail"). */
  pinged(suffix: string): { path: string; body: string }[];
  /** While true, pings are recorded but never answered: a hung endpoint. */
  hang: boolean;
  close(): Promise<void>;
}

/** A healthchecks.io stand-in on loopback (the one part of the alarm we cannot run here). */
export async function start_ping_server(): Promise<PingServer> {
  const pings: PingServer["pings"] = [];
  const server = http.createServer((req, res) => {
    let body = "";
    req.setEncoding("utf8").on("data", (chunk: string) => (body += chunk)).on("end", () => {
      pings.push({ path: req.url ?? "", body });
      if (!ping_server.hang) res.end("OK");
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const check_path = `/ping/${crypto.randomUUID()}`;
  const ping_server: PingServer = {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}${check_path}`,
    pings,
    pinged: (suffix) => pings.filter((ping) => ping.path === `${check_path}${suffix}`),
    hang: false,
    close: () => {
      server.closeAllConnections();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
  return ping_server;
}
