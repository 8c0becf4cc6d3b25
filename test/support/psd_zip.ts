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

export interface CellEdit {
  country_code: string;
  market_year: number;
  /** PSD's Attribute_Description, e.g. "Production". */
  attribute: string;
  value: number;
}

/**
 * Writes a release as USDA would publish it a month later: the shipped CSV with figures revised
 * (each edit must match exactly one row) and, optionally, the next market year added for some
 * countries, or all (a copy of their rows of `new_year.from`, revised ones included, one year on).
 */
export async function write_edited_release(file: string, edits: { revisions?: CellEdit[];
  new_year?: { from: number; countries?: string[] } }): Promise<void> {
  let lines = (await shipped_csv()).split("\r\n");
  for (const revision of edits.revisions ?? []) {
    const key = new RegExp(`^\\d+,"[^"]*",${revision.country_code},"[^"]*",${revision.market_year},\\d+,\\d+,\\d+,"${revision.attribute}",`);
    let changed = 0;
    lines = lines.map((line) => {
      if (!key.test(line)) return line;
      changed++;
      return line.replace(/,[^,]*$/, `,${revision.value.toFixed(4)}`);
    });
    if (changed !== 1) throw new Error(`revision ${JSON.stringify(revision)} matched ${changed} rows, not 1`);
  }
  if (edits.new_year) {
    const { from, countries } = edits.new_year;
    const country = countries ? `(?:${countries.join("|")})` : "[^,]+";
    const of_year = new RegExp(`^(\\d+,"[^"]*",${country},"[^"]*",)${from},${from + 1},`);
    const added = lines.filter((line) => of_year.test(line)).map((line) => line.replace(of_year, `$1${from + 1},${from + 2},`));
    if (added.length === 0) throw new Error(`no rows of ${countries?.join(", ") ?? "any country"} in ${from} to copy`);
    const last = lines.at(-1) === "" ? lines.length - 1 : lines.length;
    lines = [...lines.slice(0, last), ...added, ...lines.slice(last)];
  }
  await write_zip(file, { "psd_coffee.csv": lines.join("\r\n") });
}

/** Writes a revised release: the shipped CSV with one figure changed. */
export async function write_revised_release(file: string, revision: CellEdit): Promise<void> {
  await write_edited_release(file, { revisions: [revision] });
}
