import http from "node:http";
import zlib from "node:zlib";

export interface RawReply {
  status: number;
  headers: http.IncomingHttpHeaders;
  /** Flat [name, value, …] as received, names in their original case. */
  raw_headers: string[];
  /** As sent: still compressed when Content-Encoding says so. */
  body: Buffer;
}

/** A request with node:http rather than fetch: fetch decompresses bodies and hides what was sent. */
export function raw_get(base: string, target: string, headers: Record<string, string> = {}, method = "GET"): Promise<RawReply> {
  return new Promise((resolve, reject) => {
    const request = http.request(base + target, { method, headers }, (response) => {
      const chunks: Buffer[] = [];
      response.on("data", (chunk: Buffer) => chunks.push(chunk));
      response.on("end", () => resolve({ status: response.statusCode!, headers: response.headers, raw_headers: response.rawHeaders,
        body: Buffer.concat(chunks) }));
      response.on("error", reject);
    });
    request.on("error", reject);
    request.end();
  });
}

/** The body as the application wrote it. */
export function decoded(reply: RawReply): Buffer {
  switch (reply.headers["content-encoding"]) {
    case undefined: return reply.body;
    case "br": return zlib.brotliDecompressSync(reply.body);
    case "gzip": return zlib.gunzipSync(reply.body);
    default: throw new Error(`unexpected Content-Encoding ${reply.headers["content-encoding"]}`);
  }
}
