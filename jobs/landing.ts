import fs from "node:fs";
import path from "node:path";

// The landing dir's layout, shared by extract (writes) and transform (its SQLMesh macro
// jobs/transform/macros/landing.py reads the same layout): LANDING_DIR/psd/{year}/{month}/{etag}.csv.gzip,
// never changed once renamed into place. Its mtime is when it landed.

export interface LandedRelease {
  path: string;
  /** The file name without .csv.gzip: the release's ETag, made safe for a file name. */
  etag_stem: string;
}

export const LANDED_SUFFIX = ".csv.gzip";
const YEAR = /^\d{4}$/;
const MONTH = /^\d{2}$/;

export function list_landed_releases(landing_dir: string): LandedRelease[] {
  const psd_dir = path.join(landing_dir, "psd");
  const releases: LandedRelease[] = [];
  for (const year of readdir_or_empty(psd_dir).filter((name) => YEAR.test(name))) {
    for (const month of readdir_or_empty(path.join(psd_dir, year)).filter((name) => MONTH.test(name))) {
      const month_dir = path.join(psd_dir, year, month);
      for (const name of readdir_or_empty(month_dir)) {
        if (!name.endsWith(LANDED_SUFFIX) || name.startsWith(".")) continue;
        const file = path.join(month_dir, name);
        releases.push({ path: file, etag_stem: name.slice(0, -LANDED_SUFFIX.length) });
      }
    }
  }
  return releases;
}

/** Where extract writes before the rename; the dot keeps it out of every glob that reads releases. */
export function incoming_dir(landing_dir: string): string {
  return path.join(landing_dir, "psd", ".incoming");
}

function readdir_or_empty(dir: string): string[] {
  try {
    return fs.readdirSync(dir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw error;
  }
}
