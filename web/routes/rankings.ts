import type { Catalog } from "../catalog.js";
import { parse_measure, parse_top, parse_year, rankings_top_max } from "../inputs.js";
import { headline_ranking_measures, ranking_measures, type UnitsName } from "../measures.js";
import type { SeriesBreak } from "../catalog.js";
import { market_year_label } from "../market_year.js";
import { country_columns, type CellMark, type Column, type Page, type PageModel, type Table } from "../pages.js";
import type { Row, Snapshot } from "../serving.js";
import { break_note } from "../series_breaks.js";
import { view_options } from "../settings.js";

const top_default = 10;

const ranking_columns: Column[] = [
  { key: "rank", label: "Rank", kind: "rank" },
  ...country_columns,
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
      // rank <= top, not LIMIT top: every country tied at the cut stays in (RANK() gives ties one rank).
      const rows = await snapshot.query(`SELECT rank, country_name, country_code, value, share_of_world_pct,
          change_vs_previous_year, change_vs_previous_year_pct
        FROM rankings WHERE market_year = $year AND measure = $measure AND rank <= $top ORDER BY rank, country_name`,
        { year, measure, top });
      const breaks = snapshot.meta.series_breaks.filter((entry) => entry.market_year === year && entry.measure === measure);
      tables[measure] = {
        title: `${ranking_measures[measure]} ${market_year_label(year)}`,
        columns: ranking_columns,
        rows,
        notes: [...ties_note(rows, top), ...(breaks.length > 0 ? [break_note(year, breaks)] : [])],
        marks: entry_marks(rows, breaks),
      };
    }
    return {
      view: "rankings",
      title: `Rankings ${market_year_label(year)}`,
      units,
      params: measure === undefined ? { year, top } : { year, top, measure },
      tables,
      charts: [],
      extra: { year, top, top_choices: [5, 10, 20, 50, rankings_top_max] },
    };
  },
};

/** Says so when countries tied at the cut make the list longer than `top`. */
function ties_note(rows: Row[], top: number): string[] {
  if (rows.length <= top) return [];
  const cut_rank = rows[top - 1]!.rank;
  const tied = rows.filter((row) => row.rank === cut_rank).length;
  return [`${rows.length} countries for a top ${top}: ${tied} are tied at rank ${cut_rank}, and all of them are shown.`];
}

/** A country that enters the data this year has no change to show: its change cell says why. */
function entry_marks(rows: Row[], breaks: SeriesBreak[]): Record<number, Record<string, CellMark>> {
  const entering = new Set(breaks.filter((entry) => entry.event === "enters").map((entry) => entry.country_code));
  const marks: Record<number, Record<string, CellMark>> = {};
  rows.forEach((row, index) => {
    if (entering.has(String(row.country_code))) {
      marks[index] = { change_vs_previous_year: { kind: "break", note: "enters PSD's coffee data this year: no change to show" } };
    }
  });
  return marks;
}
