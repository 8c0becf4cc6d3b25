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
  // At once, not one after another: requests wait for these after every swap. The schema's
  // verdict comes first, so a missing table is reported as such, not as another query's error.
  const [columns, infos, years_rows, countries] = await Promise.allSettled([
    query(serving_columns_sql),
    query("SELECT e.release_id, e.exported_at, r.landed_at FROM export_info AS e JOIN release AS r USING (release_id)"),
    query("SELECT min(market_year) AS first, max(market_year) AS last FROM world_balance"),
    query(`SELECT country_code, any_value(country_name) AS country_name
      FROM country_balance GROUP BY country_code ORDER BY country_name`),
  ]);
  check_serving_schema(settled(columns) as unknown as ColumnRow[]);
  const [info] = settled(infos);
  if (!info) throw new ServingFileRefused("the serving file's export_info does not match its release table");
  const [years] = settled(years_rows);
  if (years?.first === null || years?.first === undefined) throw new ServingFileRefused("the serving file's world_balance is empty");
  return {
    release_id: String(info.release_id),
    exported_at: String(info.exported_at),
    landed_at: String(info.landed_at),
    year_first: Number(years.first),
    year_last: Number(years.last),
    countries: new Map(settled(countries).map((row) => [String(row.country_code), String(row.country_name)])),
  };
}

function settled<T>(result: PromiseSettledResult<T>): T {
  if (result.status === "rejected") throw result.reason;
  return result.value;
}
