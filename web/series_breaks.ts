import type { Catalog, SeriesBreak } from "./catalog.js";
import { market_year_label } from "./market_year.js";
import { balance_measures } from "./measures.js";
import type { CellMark, ChartSpec } from "./pages.js";

// Series breaks (serving.series_breaks, built from the data): market years in which a country
// with a large share enters or leaves PSD's coffee data, so the change of that year is the data's
// coverage, not the market's. Pages mark those years in charts, tables and rankings.

const measure_words = new Map(balance_measures.map((measure) => [measure.key, measure.label.toLowerCase()]));
const percent = new Intl.NumberFormat("en-US", { maximumFractionDigits: 1 });

/** The catalog's breaks in [from, to], optionally of one country, by market year. */
export function breaks_by_year(catalog: Catalog, from: number, to: number, country_code?: string): Map<number, SeriesBreak[]> {
  const years = new Map<number, SeriesBreak[]>();
  for (const entry of catalog.series_breaks) {
    if (entry.market_year < from || entry.market_year > to) continue;
    if (country_code !== undefined && entry.country_code !== country_code) continue;
    years.set(entry.market_year, [...(years.get(entry.market_year) ?? []), entry]);
  }
  return years;
}

/**
 * One sentence per break year, each country once with its largest share, largest first:
 * "2016/17: series break: United Kingdom (3.3 % of world imports) enters PSD's coffee data. …"
 */
export function break_note(year: number, breaks: SeriesBreak[]): string {
  const sentences: string[] = [];
  for (const event of ["enters", "leaves"] as const) {
    // One mention per country, with its largest share over the measures.
    const largest = new Map<string, SeriesBreak>();
    for (const entry of breaks.filter((b) => b.event === event)) {
      const seen = largest.get(entry.country_code);
      if (!seen || entry.share_of_world_pct > seen.share_of_world_pct) largest.set(entry.country_code, entry);
    }
    const countries = [...largest.values()].sort((a, b) => b.share_of_world_pct - a.share_of_world_pct)
      .map((b) => `${b.country_name} (${percent.format(b.share_of_world_pct)} % of world ${measure_words.get(b.measure) ?? b.measure})`);
    if (countries.length === 0) continue;
    const verb = event === "enters" ? (countries.length === 1 ? "enters" : "enter") : (countries.length === 1 ? "leaves" : "leave");
    sentences.push(`${countries.join(", ")} ${verb} PSD's coffee data`);
  }
  return `${market_year_label(year)}: series break: ${sentences.join("; ")}. The change against the year before is the data's coverage, not the market's.`;
}

/** Marks on the year cell of every row whose market year is a break year. */
export function year_marks(rows: { market_year?: unknown }[], breaks: Map<number, SeriesBreak[]>): Record<number, Record<string, CellMark>> {
  const marks: Record<number, Record<string, CellMark>> = {};
  rows.forEach((row, index) => {
    const year = Number(row.market_year);
    const entries = breaks.get(year);
    if (entries) marks[index] = { market_year: { kind: "break", note: break_note(year, entries) } };
  });
  return marks;
}

/** The charts' vertical lines at the break years they show. */
export function with_break_markers(charts: ChartSpec[], breaks: Map<number, SeriesBreak[]>): ChartSpec[] {
  const markers = [...breaks.keys()].map((year) => ({ label: market_year_label(year), note: "break" }));
  return charts.map((chart) => (markers.length > 0 ? { ...chart, markers } : chart));
}
