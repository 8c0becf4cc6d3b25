// The fixed vocabulary of the dashboard: which columns are quantities, what they are called, and
// the units a reader can choose. Inputs are checked against these lists, never pasted into SQL.

export interface Measure {
  key: string;
  label: string;
}

/** Every quantity of the balance tables (world_balance, country_balance), in table order. */
export const balance_measures: readonly Measure[] = [
  { key: "production", label: "Production" },
  { key: "arabica_production", label: "Arabica" },
  { key: "robusta_production", label: "Robusta" },
  { key: "other_production", label: "Other production" },
  { key: "beginning_stocks", label: "Beginning stocks" },
  { key: "imports", label: "Imports" },
  { key: "total_supply", label: "Total supply" },
  { key: "exports", label: "Exports" },
  { key: "domestic_consumption", label: "Consumption" },
  { key: "ending_stocks", label: "Ending stocks" },
];

/** The figures a page leads with, as cards above its charts. */
export const headline_measures: readonly Measure[] = balance_measures.filter((measure) =>
  ["production", "arabica_production", "robusta_production", "exports", "domestic_consumption", "ending_stocks"].includes(measure.key));

/** The measures the rankings table holds, with the heading of their ranking. */
export const ranking_measures: Readonly<Record<string, string>> = {
  production: "Top producers",
  exports: "Top exporters",
  imports: "Top importers",
  domestic_consumption: "Top consumers",
  ending_stocks: "Largest ending stocks",
};
/** What the rankings page shows when no measure is chosen. */
export const headline_ranking_measures = ["production", "exports", "imports", "domestic_consumption"] as const;

export type UnitsName = "bags" | "tonnes";
/** The data is in thousand 60 kg bags; 1 thousand bags = 60 metric tonnes. */
export const units: Readonly<Record<UnitsName, { label: string; factor: number }>> = {
  bags: { label: "thousand 60 kg bags", factor: 1 },
  tonnes: { label: "metric tonnes", factor: 60 },
};
export const is_units_name = (value: string): value is UnitsName => Object.hasOwn(units, value);
