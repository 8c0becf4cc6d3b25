import type { Catalog } from "../catalog.js";
import { parse_measure, parse_top, parse_year, rankings_top_max } from "../inputs.js";
import { headline_ranking_measures, ranking_measures, type UnitsName } from "../measures.js";
import type { Column, Page, PageModel, Table } from "../pages.js";
import type { Snapshot } from "../serving.js";
import { view_options } from "../settings.js";

const top_default = 10;

const ranking_columns: Column[] = [
  { key: "rank", label: "Rank", kind: "rank" },
  { key: "country_name", label: "Country", kind: "country" },
  { key: "country_code", label: "Code", kind: "text" },
  { key: "value", label: "Volume", kind: "quantity" },
  { key: "share_of_world_pct", label: "Share of world", kind: "pct" },
  { key: "change_vs_previous_year", label: "Change", kind: "change" },
  { key: "change_vs_previous_year_pct", label: "Change %", kind: "change_pct" },
];

type RankingsParams = {
  units: UnitsName;
  year: number;
  top: number;
  /** Absent: the headline measures. */
  measure?: string;
};

export const rankings_page: Page<RankingsParams> = {
  name: "rankings",
  html_path: "/rankings",
  api_path: "/api/rankings",
  csv_path: "/api/rankings.csv",
  parse(input, catalog) {
    const options = view_options(input, catalog);
    const year_param = input.query("year");
    const year = year_param === undefined ? options.to : parse_year(year_param, "year", catalog);
    const top_param = input.query("top");
    const top = top_param === undefined ? top_default : parse_top(top_param);
    const measure_param = input.query("measure");
    const params = { units: options.units, year, top };
    return measure_param === undefined ? params : { ...params, measure: parse_measure(measure_param) };
  },
  async load({ units, year, top, measure }, snapshot: Snapshot<Catalog>): Promise<PageModel> {
    const measures = measure === undefined ? [...headline_ranking_measures] : [measure];
    const tables: Record<string, Table> = {};
    for (const measure of measures) {
      const rows = await snapshot.query(`SELECT rank, country_name, country_code, value, share_of_world_pct,
          change_vs_previous_year, change_vs_previous_year_pct
        FROM rankings WHERE market_year = $year AND measure = $measure ORDER BY rank, country_name LIMIT $top`,
        { year, measure, top });
      tables[measure] = { title: `${ranking_measures[measure]} ${year}`, columns: ranking_columns, rows };
    }
    return {
      view: "rankings",
      title: `Rankings ${year}`,
      units,
      params: measure === undefined ? { year, top } : { year, top, measure },
      tables,
      charts: [],
      extra: { year, top, top_choices: [5, 10, 20, 50, rankings_top_max] },
    };
  },
};
