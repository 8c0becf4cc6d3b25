import { market_year_label } from "../market_year.js";
import type { ChartSpec, Column } from "../pages.js";
import { balance_measures } from "../measures.js";
import type { Row } from "../serving.js";

// world_balance and country_balance share their columns: one table layout and one set of charts.

export const balance_columns: Column[] = [
  { key: "market_year", label: "Year", kind: "year" },
  ...balance_measures.map((measure): Column => ({ key: measure.key, label: measure.label, kind: "quantity" })),
  { key: "stocks_to_use_pct", label: "Stocks-to-use", kind: "pct" },
  { key: "stocks_to_consumption_pct", label: "Stocks ÷ consumption", kind: "pct" },
];

/** Said wherever the ratios are shown. */
export const stocks_ratio_definitions = "Stocks-to-use = ending stocks ÷ (domestic consumption + exports), as USDA reports it "
  + "for a country. Summed over the world, exports are other countries' imports, so that ratio counts them twice; "
  + "stocks ÷ consumption = ending stocks ÷ domestic consumption counts each bag once.";

/** Column names from the fixed list above, never from a request. */
export const balance_select = balance_columns.map((column) => column.key).join(", ");

export function balance_charts(rows: Row[], prefix: string): ChartSpec[] {
  const labels = rows.map((row) => market_year_label(Number(row.market_year)));
  const series = (key: string, label: string) => ({ label, data: rows.map((row) => row[key] as number | null) });
  return [
    { id: `${prefix}-production`, title: "Production by type", kind: "bar", stacked: true, quantity: true, labels,
      series: [series("arabica_production", "Arabica"), series("robusta_production", "Robusta"), series("other_production", "Other")] },
    { id: `${prefix}-supply-use`, title: "Production, consumption, trade and stocks", kind: "line", stacked: false, quantity: true,
      labels, series: [series("production", "Production"), series("domestic_consumption", "Consumption"),
        series("exports", "Exports"), series("imports", "Imports"), series("ending_stocks", "Ending stocks")] },
  ];
}
