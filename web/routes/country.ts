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
import { balance_charts, balance_columns, stocks_ratio_definitions } from "./balance.js";

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
    // One query: the figures and, per year, the measures this release revised or brought in new.
    const rows_with_revisions = await snapshot.query(`SELECT ${balance_columns.map((column) => `b.${column.key}`).join(", ")},
        list(r.measure) FILTER (WHERE r.revision = 'revised') AS revised_measures,
        list(r.measure) FILTER (WHERE r.revision = 'new') AS new_measures
      FROM country_balance AS b
      LEFT JOIN revisions AS r ON r.country_code = b.country_code AND r.market_year = b.market_year
      WHERE b.country_code = $code AND b.market_year BETWEEN $from AND $to
      GROUP BY ALL ORDER BY b.market_year`, { code, from, to });
    const rows = rows_with_revisions.map(({ revised_measures: _revised, new_measures: _new, ...row }) => row);
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
            ...(rows_with_revisions.some(has_revisions)
              ? [`Marked figures were revised or are new in release ${snapshot.meta.release_id}: see What changed.`] : []),
            stocks_ratio_definitions,
          ],
          marks: revision_marks(rows_with_revisions, year_marks(rows, breaks)),
        },
      },
      charts: with_break_markers(balance_charts(rows, "country"), breaks),
      extra: { code, name, headline_measures },
    };
  },
};

const measures_of = (value: unknown) => (Array.isArray(value) ? value.map(String) : []);
const has_revisions = (row: Row) => measures_of(row.revised_measures).length + measures_of(row.new_measures).length > 0;

/** Adds a mark on every figure this release revised or brought in new (the balance columns are named after the measures). */
function revision_marks(rows: Row[], marks: Record<number, Record<string, CellMark>>) {
  rows.forEach((row, index) => {
    for (const measure of measures_of(row.revised_measures)) {
      marks[index] = { ...marks[index], [measure]: { kind: "revised", note: "revised in this release" } };
    }
    for (const measure of measures_of(row.new_measures)) {
      marks[index] = { ...marks[index], [measure]: { kind: "new", note: "new in this release" } };
    }
  });
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
