import { check_serving_schema, serving_columns_sql, ServingFileRefused, type ColumnRow } from "../lib/serving_schema.js";
import type { Query } from "./serving.js";

/** What the web knows about one serving file, read once when it is opened: freshness and valid inputs. */
export interface Catalog {
  release_id: string;
  exported_at: string;
  landed_at: string;
  year_first: number;
  year_last: number;
  /** Country code → name, sorted by name: the only codes a request may name. */
  countries: Map<string, string>;
}

/**
 * The smoke test of a newly opened file: every table and column the pages read, with its type
 * (lib/serving_schema.ts), then the facts the pages need. Throws ServingFileRefused when unusable.
 */
export async function load_catalog(query: Query): Promise<Catalog> {
  check_serving_schema((await query(serving_columns_sql)) as unknown as ColumnRow[]);
  const [info] = await query(`SELECT e.release_id, e.exported_at, r.landed_at
    FROM export_info AS e JOIN release AS r USING (release_id)`);
  if (!info) throw new ServingFileRefused("the serving file's export_info does not match its release table");
  const [years] = await query("SELECT min(market_year) AS first, max(market_year) AS last FROM world_balance");
  if (years?.first === null || years?.first === undefined) throw new ServingFileRefused("the serving file's world_balance is empty");
  const countries = await query(`SELECT country_code, any_value(country_name) AS country_name
    FROM country_balance GROUP BY country_code ORDER BY country_name`);
  return {
    release_id: String(info.release_id),
    exported_at: String(info.exported_at),
    landed_at: String(info.landed_at),
    year_first: Number(years.first),
    year_last: Number(years.last),
    countries: new Map(countries.map((row) => [String(row.country_code), String(row.country_name)])),
  };
}
