import type { Catalog } from "../catalog.js";
import { headline_measures, type UnitsName } from "../measures.js";
import type { Page, PageModel } from "../pages.js";
import type { Snapshot } from "../serving.js";
import { view_options } from "../settings.js";
import { balance_charts, balance_columns, balance_select } from "./balance.js";

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
    // Both at once: after a swap, every reader of the overview waits for this.
    const [rows, [latest, previous]] = await Promise.all([
      snapshot.query(`SELECT ${balance_select} FROM world_balance WHERE market_year BETWEEN $from AND $to ORDER BY market_year`, { from, to }),
      snapshot.query(`SELECT ${balance_select} FROM world_balance WHERE market_year IN ($to, $to - 1) ORDER BY market_year DESC`, { to }),
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
      };
    });
    return {
      view: "overview",
      title: "World coffee balance",
      units,
      params: { from, to },
      tables: {
        latest: {
          title: `${to} compared with ${to - 1}`,
          columns: [
            { key: "measure", label: "Measure", kind: "text" },
            { key: "latest", label: String(to), kind: "quantity" },
            { key: "previous", label: String(to - 1), kind: "quantity" },
            { key: "change", label: "Change", kind: "change" },
            { key: "change_pct", label: "Change %", kind: "change_pct" },
          ],
          rows: comparison,
        },
        balance: { title: `World balance ${from}–${to}`, columns: balance_columns, rows },
      },
      charts: [
        ...balance_charts(rows, "world"),
        { id: "world-stocks-to-use", title: "Stocks-to-use ratio (%)", kind: "line", stacked: false, quantity: false,
          labels: rows.map((row) => Number(row.market_year)),
          series: [{ label: "Stocks-to-use %", data: rows.map((row) => row.stocks_to_use_pct as number | null) }] },
      ],
      extra: {
        year: to,
        stocks_to_use_pct: latest?.stocks_to_use_pct ?? null,
        stocks_to_use_pct_previous: before?.stocks_to_use_pct ?? null,
      },
    };
  },
};
