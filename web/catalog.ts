import { check_serving_schema, serving_columns_sql, ServingFileRefused, type ColumnRow } from "../lib/serving_schema.js";
import type { Query } from "./serving.js";

/** A country entering or leaving PSD's coffee data with a large share of a measure (serving.series_breaks). */
export interface SeriesBreak {
  market_year: number;
  measure: string;
  country_code: string;
  country_name: string;
  event: "enters" | "leaves";
  share_of_world_pct: number;
}

/** A release as the pages name it. */
export interface ReleaseInfo {
  release_id: string;
  landed_at: string;
  /** USDA's month of the release, from the file (YYYY-MM); null when the file carries none. */
  usda_month: string | null;
}

/** What the web knows about one serving file, read once when it is opened: freshness and valid inputs. */
export interface Catalog {
  release_id: string;
  exported_at: string;
  landed_at: string;
  /** The published release, and the one it replaced (null for the first release published). */
  release: ReleaseInfo;
  previous_release: ReleaseInfo | null;
  year_first: number;
  year_last: number;
  /** Country code → name, sorted by name: the only codes a request may name. */
  countries: Map<string, string>;
  /** Every series break, by market year: a few dozen rows, read once per file. */
  series_breaks: SeriesBreak[];
}

/**
 * The smoke test of a newly opened file: every table and column the pages read, with its type
 * (lib/serving_schema.ts), then the facts the pages need. Throws ServingFileRefused when unusable.
 */
export async function load_catalog(query: Query): Promise<Catalog> {
  // At once, not one after another: requests wait for these after every swap. The schema's
  // verdict comes first, so a missing table is reported as such, not as another query's error.
  const [columns, infos, years_rows, countries, series_breaks] = await Promise.allSettled([
    query(serving_columns_sql),
    query(`SELECT e.release_id, e.exported_at, r.landed_at, strftime(r.usda_release_month, '%Y-%m') AS usda_month,
        r.previous_release_id, r.previous_landed_at, strftime(r.previous_usda_release_month, '%Y-%m') AS previous_usda_month
      FROM export_info AS e JOIN release AS r USING (release_id)`),
    query("SELECT min(market_year) AS first, max(market_year) AS last FROM world_balance"),
    query(`SELECT country_code, any_value(country_name) AS country_name
      FROM country_balance GROUP BY country_code ORDER BY country_name`),
    query(`SELECT market_year, measure, country_code, country_name, event, share_of_world_pct
      FROM series_breaks ORDER BY market_year, measure, share_of_world_pct DESC, country_name`),
  ]);
  check_serving_schema(settled(columns) as unknown as ColumnRow[]);
  const [info] = settled(infos);
  if (!info) throw new ServingFileRefused("the serving file's export_info does not match its release table");
  const [years] = settled(years_rows);
  if (years?.first === null || years?.first === undefined) throw new ServingFileRefused("the serving file's world_balance is empty");
  const text_or_null = (value: unknown) => (value === null || value === undefined ? null : String(value));
  return {
    release_id: String(info.release_id),
    exported_at: String(info.exported_at),
    landed_at: String(info.landed_at),
    release: { release_id: String(info.release_id), landed_at: String(info.landed_at), usda_month: text_or_null(info.usda_month) },
    previous_release: info.previous_release_id === null ? null : {
      release_id: String(info.previous_release_id),
      landed_at: String(info.previous_landed_at),
      usda_month: text_or_null(info.previous_usda_month),
    },
    year_first: Number(years.first),
    year_last: Number(years.last),
    countries: new Map(settled(countries).map((row) => [String(row.country_code), String(row.country_name)])),
    series_breaks: settled(series_breaks) as unknown as SeriesBreak[],
  };
}

function settled<T>(result: PromiseSettledResult<T>): T {
  if (result.status === "rejected") throw result.reason;
  return result.value;
}
