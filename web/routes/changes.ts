import type { Catalog } from "../catalog.js";
import { parse_balance_measure, parse_country, parse_top, parse_year } from "../inputs.js";
import { market_year_label } from "../market_year.js";
import { balance_measures, type UnitsName } from "../measures.js";
import { country_columns, type Column, type Page, type PageModel, type Table } from "../pages.js";
import type { Params, Row, Snapshot } from "../serving.js";
import { view_options } from "../settings.js";

// "What changed": the published release against the one it replaced (serving.revisions and
// serving.world_revisions): the largest revisions first, figures new in this release apart, and
// the world totals' revisions. The only page that shows the previous release's figures.

const top_default = 100;
/** Each table lists at most this many rows (a release can revise thousands of figures); it says how many it left out. */
export const changes_top_max = 1000;

type ChangesParams = {
  units: UnitsName;
  top: number;
  measure?: string;
  country?: string;
  year?: number;
};

const measure_labels = new Map(balance_measures.map((measure) => [measure.key, measure.label]));

/** A figure of both releases, and the revision. */
const compared_columns: Column[] = [
  { key: "market_year", label: "Market year", kind: "year" },
  { key: "measure_label", label: "Measure", kind: "text" },
  { key: "previous_value", label: "Previous release", kind: "quantity" },
  { key: "new_value", label: "This release", kind: "quantity" },
  { key: "change", label: "Revision", kind: "change" },
  { key: "change_pct", label: "Revision %", kind: "change_pct" },
];
const figure_columns: Column[] = [
  ...country_columns,
  ...compared_columns,
];
const world_columns: Column[] = [...compared_columns, { key: "revision", label: "What", kind: "text" }];

const release_columns: Column[] = [
  { key: "role", label: "", kind: "text" },
  { key: "release_id", label: "Release", kind: "text" },
  { key: "usda_month", label: "USDA month", kind: "text" },
  { key: "landed_at", label: "Landed", kind: "text" },
];

export const changes_page: Page<ChangesParams> = {
  name: "changes",
  html_path: "/changes",
  api_path: "/api/changes",
  csv_path: "/api/changes.csv",
  parse(input, catalog) {
    const { units } = view_options(input, catalog);
    const top_param = input.query("top");
    const measure = input.query("measure");
    const country = input.query("country");
    const year = input.query("year");
    return {
      units,
      top: top_param === undefined ? top_default : parse_top(top_param, changes_top_max),
      ...(measure === undefined ? {} : { measure: parse_balance_measure(measure) }),
      ...(country === undefined ? {} : { country: parse_country(country, catalog) }),
      ...(year === undefined ? {} : { year: parse_year(year, "year", catalog) }),
    };
  },
  async load(params, snapshot: Snapshot<Catalog>): Promise<PageModel> {
    const { units, top, measure, country, year } = params;
    const catalog = snapshot.meta;
    // Filters are fixed SQL where '' or 0 means "any": the values are bound, never pasted in.
    const filters: Params = { top, measure: measure ?? "", year: year ?? 0 };
    const where = `($measure = '' OR measure = $measure) AND ($year = 0 OR market_year = $year)`;
    const country_where = `${where} AND ($country = '' OR country_code = $country)`;
    const figures = async (revision: string, order: string): Promise<{ rows: Row[]; total: number }> => {
      const rows = await snapshot.query(`SELECT country_name, country_code, market_year, measure, previous_value, new_value, change, change_pct,
          count(*) OVER () AS total
        FROM revisions WHERE revision = $revision AND ${country_where} ORDER BY ${order} LIMIT $top`,
        { ...filters, country: country ?? "", revision });
      return { rows: rows.map(({ total: _total, ...row }) => with_measure_label(row)), total: Number(rows[0]?.total ?? 0) };
    };
    const revised = await figures("revised", "abs(change) DESC, country_name, market_year, measure");
    const added = await figures("new", "market_year DESC, new_value DESC, country_name, measure");
    const removed = await figures("removed", "market_year DESC, previous_value DESC, country_name, measure");
    // The world totals say nothing about one country: with a country chosen they are left out.
    const world = country === undefined ? (await snapshot.query(`SELECT market_year, measure, previous_value, new_value, change, change_pct, revision
        FROM world_revisions WHERE ${where} ORDER BY abs(change) DESC NULLS LAST, market_year DESC, measure LIMIT $top`, filters))
      .map(with_measure_label) : [];

    const selection = [
      measure === undefined ? undefined : measure_labels.get(measure),
      country === undefined ? undefined : catalog.countries.get(country),
      year === undefined ? undefined : market_year_label(year),
    ].filter(Boolean).join(", ");
    const in_selection = selection ? ` (${selection})` : "";
    const shown = (part: { rows: Row[]; total: number }, what: string) =>
      part.total > part.rows.length ? [`The ${part.rows.length} ${what} of ${part.total}; choose a larger "show" or narrow the selection for the rest.`] : [];
    const tables: Record<string, Table> = {
      revised: { title: `Revised figures${in_selection}, largest first`, columns: figure_columns, rows: revised.rows,
        notes: shown(revised, "largest revisions") },
      new: { title: `New in this release${in_selection}`, columns: figure_columns, rows: added.rows,
        notes: ["Figures for a country and market year the previous release did not have (zeros left out)."
          , ...shown(added, "largest new figures")] },
      removed: { title: `No longer in this release${in_selection}`, columns: figure_columns, rows: removed.rows,
        notes: shown(removed, "largest removed figures") },
      world: { title: `World totals${in_selection}`, columns: world_columns, rows: world,
        notes: [country === undefined
          ? "A world revision is the sum of the country revisions of that market year and measure (a figure new or removed counting as a change from or to 0)."
          : "World totals are not shown for one country."] },
      releases: { title: "Releases compared", columns: release_columns, rows: release_rows(catalog) },
    };
    return {
      view: "changes",
      title: "What changed",
      units,
      params: { top, ...(measure === undefined ? {} : { measure }), ...(country === undefined ? {} : { country }),
        ...(year === undefined ? {} : { year }) },
      tables,
      charts: [],
      extra: {
        has_previous: catalog.previous_release !== null,
        top_choices: [20, 100, 500, changes_top_max],
        measures: balance_measures,
        selected: { top, measure: measure ?? "", country: country ?? "", year: year ?? 0 },
      },
    };
  },
};

function with_measure_label(row: Row): Row {
  const { measure, ...rest } = row;
  return { ...rest, measure, measure_label: measure_labels.get(String(measure)) ?? String(measure) };
}

function release_rows(catalog: Catalog): Row[] {
  const row = (role: string, release: Catalog["release"]) => ({ role, release_id: release.release_id,
    usda_month: release.usda_month, landed_at: release.landed_at });
  return [row("this release", catalog.release),
    ...(catalog.previous_release ? [row("compared with", catalog.previous_release)] : [])];
}
