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

/** Doubles as the smoke test of a newly opened file: every table the pages read must answer. */
export async function load_catalog(query: Query): Promise<Catalog> {
  const [info] = await query(`SELECT e.release_id, e.exported_at, r.landed_at
    FROM export_info AS e JOIN release AS r USING (release_id)`);
  if (!info) throw new Error("the serving file's export_info does not match its release table");
  const [years] = await query("SELECT min(market_year) AS first, max(market_year) AS last FROM world_balance");
  if (years?.first === null || years?.first === undefined) throw new Error("the serving file's world_balance is empty");
  const countries = await query(`SELECT country_code, any_value(country_name) AS country_name
    FROM country_balance GROUP BY country_code ORDER BY country_name`);
  await query("SELECT market_year FROM rankings LIMIT 1");
  return {
    release_id: String(info.release_id),
    exported_at: String(info.exported_at),
    landed_at: String(info.landed_at),
    year_first: Number(years.first),
    year_last: Number(years.last),
    countries: new Map(countries.map((row) => [String(row.country_code), String(row.country_name)])),
  };
}
