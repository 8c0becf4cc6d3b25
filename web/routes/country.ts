import type { Express } from "express";
import type { Catalog } from "../catalog.js";
import { bad_request } from "../errors.js";
import { parse_country, query_param } from "../inputs.js";
import { headline_measures } from "../measures.js";
import { market_year_label } from "../market_year.js";
import type { CellMark, Page, PageModel } from "../pages.js";
import type { UnitsName } from "../measures.js";
import type { Row, ServingReader, Snapshot } from "../serving.js";
import { break_note, breaks_by_year, with_break_markers, year_marks } from "../series_breaks.js";
import { view_options } from "../settings.js";
import { balance_charts, balance_columns, balance_select, stocks_ratio_definitions } from "./balance.js";

type CountryParams = {
  units: UnitsName;
  code: string;
  from: number;
  to: number;
};

export const country_page: Page<CountryParams> = {
  name: "country",
  html_path: "/country/:code",
  api_path: "/api/country/:code",
  csv_path: "/api/country/:code.csv",
  parse(input, catalog) {
    const code = parse_country(String(input.path_params.code), catalog);
    const { units, from, to } = view_options(input, catalog);
    return { units, code, from, to };
  },
  async load({ units, code, from, to }, snapshot: Snapshot<Catalog>): Promise<PageModel> {
    const rows = await snapshot.query(`SELECT ${balance_select} FROM country_balance
      WHERE country_code = $code AND market_year BETWEEN $from AND $to ORDER BY market_year`, { code, from, to });
    const revised = await snapshot.query(`SELECT market_year, measure, revision FROM revisions
      WHERE country_code = $code AND market_year BETWEEN $from AND $to AND revision <> 'removed'`, { code, from, to });
    const name = snapshot.meta.countries.get(code)!;
    const breaks = breaks_by_year(snapshot.meta, from, to, code);
    return {
      view: "country",
      title: name,
      units,
      params: { code, from, to },
      tables: {
        balance: {
          title: `${name}: supply and distribution ${market_year_label(from)}–${market_year_label(to)}`,
          columns: balance_columns,
          rows,
          notes: [
            ...[...breaks].map(([year, entries]) => break_note(year, entries)),
            ...(revised.length > 0 ? [`Marked figures were revised or are new in release ${snapshot.meta.release_id}: see What changed.`] : []),
            stocks_ratio_definitions,
          ],
          marks: revision_marks(rows, revised, year_marks(rows, breaks)),
        },
      },
      charts: with_break_markers(balance_charts(rows, "country"), breaks),
      extra: { code, name, headline_measures, revised_count: revised.length },
    };
  },
};

/** Adds a mark on every figure this release revised or brought in new (the balance columns are named after the measures). */
function revision_marks(rows: Row[], revised: Row[], marks: Record<number, Record<string, CellMark>>) {
  const row_of_year = new Map(rows.map((row, index) => [Number(row.market_year), index]));
  for (const { market_year, measure, revision } of revised) {
    const index = row_of_year.get(Number(market_year));
    if (index === undefined) continue;
    const note = revision === "new" ? "new in this release" : "revised in this release";
    marks[index] = { ...marks[index], [String(measure)]: { kind: revision === "new" ? "new" : "revised", note } };
  }
  return marks;
}

/** The country picker's form (GET /country?code=BR) lands on the country's own address. */
export function mount_country_picker(app: Express, reader: ServingReader<Catalog>): void {
  app.get("/country", async (req, res) => {
    const raw = query_param(req, "code");
    if (raw === undefined) throw bad_request("code is required, e.g. /country?code=BR");
    const code = await reader.with_snapshot(async (snapshot) => parse_country(raw, snapshot.meta));
    res.redirect(303, `/country/${code}`);
  });
}
