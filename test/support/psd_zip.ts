import fs from "node:fs";
import yauzl from "yauzl";
import yazl from "yazl";
import { shipped_zip_path } from "./sandbox.js";

/** The shipped psd_coffee.csv as text (CRLF line ends, as USDA ships it). */
export async function shipped_csv(): Promise<string> {
  return new Promise((resolve, reject) => {
    yauzl.open(shipped_zip_path, { lazyEntries: true }, (error, zip) => {
      if (error) return reject(error);
      zip.on("entry", (entry: yauzl.Entry) => {
        zip.openReadStream(entry, (stream_error, stream) => {
          if (stream_error) return reject(stream_error);
          const chunks: Buffer[] = [];
          stream.on("data", (chunk: Buffer) => chunks.push(chunk));
          stream.on("end", () => {
            zip.close();
            resolve(Buffer.concat(chunks).toString("utf8"));
          });
          stream.on("error", reject);
        });
      });
      zip.readEntry();
    });
  });
}

/** A zip holding `entries` (name → content), as PSD Online would ship one. */
export async function zip_buffer(entries: Record<string, string | Buffer>, options = { compress: true }): Promise<Buffer> {
  const zip = new yazl.ZipFile();
  for (const [name, content] of Object.entries(entries)) {
    zip.addBuffer(Buffer.isBuffer(content) ? content : Buffer.from(content), name, { compress: options.compress });
  }
  zip.end();
  const chunks: Buffer[] = [];
  for await (const chunk of zip.outputStream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

export async function write_zip(file: string, entries: Record<string, string | Buffer>): Promise<void> {
  fs.writeFileSync(file, await zip_buffer(entries));
}

/**
 * Writes a revised release: the shipped CSV with one figure changed, as USDA revises a month later.
 */
export async function write_revised_release(file: string, revision: { country_code: string; market_year: number;
  attribute: string; value: number }): Promise<void> {
  const lines = (await shipped_csv()).split("\r\n");
  let changed = 0;
  const revised = lines.map((line) => {
    const key = new RegExp(`^\\d+,"[^"]*",${revision.country_code},"[^"]*",${revision.market_year},\\d+,\\d+,\\d+,"${revision.attribute}",`);
    if (!key.test(line)) return line;
    changed++;
    return line.replace(/,[^,]*$/, `,${revision.value.toFixed(4)}`);
  });
  if (changed !== 1) throw new Error(`revision matched ${changed} rows, not 1`);
  await write_zip(file, { "psd_coffee.csv": revised.join("\r\n") });
}
