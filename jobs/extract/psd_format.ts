import path from "node:path";

// What a PSD Online per-commodity download looks like, and where a release lands.

export const PSD_CSV_ENTRY = "psd_coffee.csv";
export const PSD_CSV_HEADER =
  "Commodity_Code,Commodity_Description,Country_Code,Country_Name,Market_Year,Calendar_Year,Month," +
  "Attribute_ID,Attribute_Description,Unit_ID,Unit_Description,Value";

/** Throws a one-line error unless `first_line` is PSD's header (BOM, CR and quotes tolerated). */
export function check_psd_header(first_line: string): void {
  const normalized = first_line.replace(/^\uFEFF/, "").replace(/\r$/, "").replaceAll('"', "");
  if (normalized !== PSD_CSV_HEADER) {
    throw new Error(`${PSD_CSV_ENTRY} header is not PSD's: got "${normalized.slice(0, 200)}"`);
  }
}

/** An ETag as a file name: weak marker and quotes gone, anything outside [A-Za-z0-9._-] as "_". */
export function etag_file_stem(etag: string): string {
  const stem = etag.replace(/^W\//, "").replaceAll('"', "").replace(/[^A-Za-z0-9._-]/g, "_").replace(/^\.+/, "_");
  if (stem.length === 0 || stem.length > 200) throw new Error(`unusable ETag ${JSON.stringify(etag)}`);
  return stem;
}

/** LANDING_DIR/psd/{year}/{month}/{etag}.csv.gzip, year and month (UTC) of the release date. */
export function landing_path(landing_dir: string, release_date: Date, etag: string): string {
  const year = String(release_date.getUTCFullYear());
  const month = String(release_date.getUTCMonth() + 1).padStart(2, "0");
  return path.join(landing_dir, "psd", year, month, `${etag_file_stem(etag)}.csv.gzip`);
}
