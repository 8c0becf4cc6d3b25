import type { Express, Request } from "express";
import type { Catalog } from "./catalog.js";
import { bad_request } from "./errors.js";
import { query_param } from "./inputs.js";
import { units, type UnitsName } from "./measures.js";
import type { Row, ServingReader, Snapshot } from "./serving.js";

// One query, three renderings (Datasette's rule): a page module loads a model of tables and
// charts from one snapshot of the serving file; this module serves it as HTML, as JSON under
// /api/…, and each table as CSV. Unit conversion happens here, once, so all three agree.

/** quantity and change columns are in thousand 60 kg bags in the data and converted for display. */
export type ColumnKind = "year" | "rank" | "text" | "country" | "quantity" | "change" | "pct" | "change_pct";

export interface Column {
  key: string;
  label: string;
  kind: ColumnKind;
}

export interface Table {
  title: string;
  columns: Column[];
  rows: Row[];
}

export interface ChartSpec {
  id: string;
  title: string;
  kind: "line" | "bar";
  stacked: boolean;
  /** Plotted quantities are converted to the chosen units; percentages are not. */
  quantity: boolean;
  labels: (string | number)[];
  series: { label: string; data: (number | null)[] }[];
}

export interface PageModel {
  view: string;
  title: string;
  units: UnitsName;
  /** The resolved inputs that produced the model: echoed in JSON and used for the JSON/CSV links. */
  params: Record<string, string | number>;
  tables: Record<string, Table>;
  charts: ChartSpec[];
  /** Anything else a template needs (form choices, headline figures). */
  extra?: Record<string, unknown>;
}

export interface Page {
  name: string;
  html_path: string;
  api_path: string;
  csv_path: string;
  load(req: Request, snapshot: Snapshot<Catalog>): Promise<PageModel>;
}

const converted_kinds: ReadonlySet<ColumnKind> = new Set(["quantity", "change"]);

export function mount_page(app: Express, reader: ServingReader<Catalog>, page: Page): void {
  const load = (req: Request) => reader.with_snapshot(async (snapshot) => ({
    model: in_units(await page.load(req, snapshot)),
    catalog: snapshot.meta,
  }));

  app.get(page.html_path, async (req, res) => {
    const { model, catalog } = await load(req);
    const links = data_links(page, model);
    res.render(model.view, { model, catalog, links, unit_label: units[model.units].label });
  });

  // The CSV route first: /api/country/:code would also match BR.csv.
  app.get(page.csv_path, async (req, res) => {
    const { model } = await load(req);
    const names = Object.keys(model.tables);
    const name = query_param(req, "table") ?? names[0]!;
    const table = Object.hasOwn(model.tables, name) ? model.tables[name]! : undefined;
    if (!table) throw bad_request(`table must be one of ${names.join(", ")}`);
    const file = [page.name, ...Object.values(model.params), name, model.units].join("_");
    res.type("text/csv").attachment(`beanflows_${file}.csv`).send(to_csv(table));
  });

  app.get(page.api_path, async (req, res) => {
    const { model, catalog } = await load(req);
    const links = data_links(page, model);
    res.json({
      release_id: catalog.release_id,
      exported_at: catalog.exported_at,
      units: model.units,
      units_label: units[model.units].label,
      ...model.params,
      tables: model.tables,
      csv: Object.fromEntries(Object.keys(model.tables).map((key) => [key, links.csv(key)])),
    });
  });
}

/** The JSON and CSV addresses of what the page shows, with every resolved input made explicit. */
function data_links(page: Page, model: PageModel) {
  const fill = (path: string) => path.replace(/:(\w+)/g, (_, key: string) => encodeURIComponent(String(model.params[key])));
  const query = new URLSearchParams(Object.entries({ ...model.params, units: model.units })
    .filter(([key]) => !page.html_path.includes(`:${key}`))
    .map(([key, value]) => [key, String(value)]));
  return {
    json: `${fill(page.api_path)}?${query}`,
    csv: (table: string) => `${fill(page.csv_path)}?${new URLSearchParams([...query, ["table", table]])}`,
  };
}

function in_units(model: PageModel): PageModel {
  const factor = units[model.units].factor;
  if (factor === 1) return model;
  const scale = (value: unknown) => (typeof value === "number" ? value * factor : value);
  for (const table of Object.values(model.tables)) {
    const keys = table.columns.filter((column) => converted_kinds.has(column.kind)).map((column) => column.key);
    table.rows = table.rows.map((row) => ({ ...row, ...Object.fromEntries(keys.map((key) => [key, scale(row[key])])) }));
  }
  for (const chart of model.charts.filter((c) => c.quantity)) {
    for (const series of chart.series) series.data = series.data.map((value) => scale(value) as number | null);
  }
  return model;
}

export function to_csv(table: Table): string {
  const cell = (value: unknown) => {
    const text = value === null || value === undefined ? "" : String(value);
    return /[",\r\n]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
  };
  const lines = [table.columns.map((column) => cell(column.key)).join(",")];
  for (const row of table.rows) lines.push(table.columns.map((column) => cell(row[column.key])).join(","));
  return lines.join("\r\n") + "\r\n";
}

const whole = new Intl.NumberFormat("en-US", { maximumFractionDigits: 0 });
const signed_whole = new Intl.NumberFormat("en-US", { maximumFractionDigits: 0, signDisplay: "exceptZero" });
const percent = new Intl.NumberFormat("en-US", { minimumFractionDigits: 1, maximumFractionDigits: 1 });
const signed_percent = new Intl.NumberFormat("en-US", { minimumFractionDigits: 1, maximumFractionDigits: 1, signDisplay: "exceptZero" });

/** How a cell reads on a page (templates call it; JSON and CSV carry the raw numbers). */
export function format_cell(value: unknown, kind: ColumnKind): string {
  if (value === null || value === undefined) return "–";
  if (typeof value !== "number") return String(value);
  switch (kind) {
    case "quantity": return whole.format(value);
    case "change": return signed_whole.format(value);
    case "pct": return `${percent.format(value)} %`;
    case "change_pct": return `${signed_percent.format(value)} %`;
    default: return String(value);
  }
}
