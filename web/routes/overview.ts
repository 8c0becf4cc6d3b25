import type { Catalog } from "../catalog.js";
import { market_year_label } from "../market_year.js";
import { headline_measures, type UnitsName } from "../measures.js";
import type { Page, PageModel } from "../pages.js";
import type { Row, Snapshot } from "../serving.js";
import { break_note, breaks_by_year, with_break_markers, year_marks } from "../series_breaks.js";
import { view_options } from "../settings.js";
import { balance_charts, balance_columns, balance_select, stocks_ratio_definitions } from "./balance.js";

type OverviewParams = {
  units: UnitsName;
  from: number;
  to: number;
};

export const overview_page: Page<OverviewParams> = {
  name: "overview",
  html_path: "/",
  api_path: "/api/overview",
  csv_path: "/api/overview.csv",
  parse(input, catalog) {
    return view_options(input, catalog);
  },
  async load({ units, from, to }, snapshot: Snapshot<Catalog>): Promise<PageModel> {
    const catalog = snapshot.meta;
    // At once: after a swap, every reader of the overview waits for these.
    const [rows, [latest, previous], revisions] = await Promise.all([
      snapshot.query(`SELECT ${balance_select} FROM world_balance WHERE market_year BETWEEN $from AND $to ORDER BY market_year`, { from, to }),
      snapshot.query(`SELECT ${balance_select} FROM world_balance WHERE market_year IN ($to, $to - 1) ORDER BY market_year DESC`, { to }),
      snapshot.query("SELECT measure, change, change_pct, revision FROM world_revisions WHERE market_year = $to", { to }),
    ]);
    const before = previous?.market_year === to - 1 ? previous : undefined;
    const comparison = headline_measures.map(({ key, label }) => {
      const value = latest?.[key] as number;
      const prior = before?.[key] as number | undefined;
      return {
        measure: label,
        latest: value,
        previous: prior ?? null,
        change: prior === undefined ? null : value - prior,
        change_pct: prior ? Math.round((10_000 * (value - prior)) / prior) / 100 : null,
        ...revision_of(key, revisions, catalog),
      };
    });
    const breaks = breaks_by_year(catalog, from, to);
    const comparison_breaks = breaks_by_year(catalog, to, to);
    return {
      view: "overview",
      title: "World coffee balance",
      units,
      params: { from, to },
      tables: {
        latest: {
          title: `${market_year_label(to)} compared with ${market_year_label(to - 1)}, and what this release revised`,
          columns: [
            { key: "measure", label: "Measure", kind: "text" },
            { key: "latest", label: market_year_label(to), kind: "quantity" },
            { key: "previous", label: market_year_label(to - 1), kind: "quantity" },
            { key: "change", label: "Change", kind: "change" },
            { key: "change_pct", label: "Change %", kind: "change_pct" },
            { key: "revision", label: "Revision", kind: "change" },
            { key: "revision_pct", label: "Revision %", kind: "change_pct" },
            { key: "revision_kind", label: "This release", kind: "text" },
          ],
          rows: comparison,
          notes: [...comparison_breaks].map(([year, entries]) => break_note(year, entries)),
        },
        balance: {
          title: `World balance ${market_year_label(from)}–${market_year_label(to)}`,
          columns: balance_columns,
          rows,
          notes: [...[...breaks].map(([year, entries]) => break_note(year, entries)), stocks_ratio_definitions],
          marks: year_marks(rows, breaks),
        },
      },
      charts: with_break_markers([
        ...balance_charts(rows, "world"),
        { id: "world-stocks-to-use", title: "Stocks ratios (%)", kind: "line", stacked: false, quantity: false,
          labels: rows.map((row) => market_year_label(Number(row.market_year))),
          series: [
            { label: "Stocks-to-use %", data: rows.map((row) => row.stocks_to_use_pct as number | null) },
            { label: "Stocks ÷ consumption %", data: rows.map((row) => row.stocks_to_consumption_pct as number | null) },
          ] },
      ], breaks),
      extra: {
        year: to,
        year_label: market_year_label(to),
        previous_year_label: market_year_label(to - 1),
        stocks_to_use_pct: latest?.stocks_to_use_pct ?? null,
        stocks_to_use_pct_previous: before?.stocks_to_use_pct ?? null,
        stocks_to_consumption_pct: latest?.stocks_to_consumption_pct ?? null,
        stocks_to_consumption_pct_previous: before?.stocks_to_consumption_pct ?? null,
        stocks_ratio_definitions,
        series_break: comparison_breaks.size > 0,
      },
    };
  },
};

/**
 * What this release did to a world figure of the year shown: revised it (by how much), left it
 * as it was, or brought it in new; nothing to say when there is no release before it.
 */
function revision_of(measure: string, revisions: Row[], catalog: Catalog) {
  if (catalog.previous_release === null) return { revision: null, revision_pct: null, revision_kind: null };
  const found = revisions.find((row) => row.measure === measure);
  if (!found) return { revision: 0, revision_pct: 0, revision_kind: "unrevised" };
  return { revision: found.change as number | null, revision_pct: found.change_pct as number | null, revision_kind: String(found.revision) };
}
