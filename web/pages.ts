import assert from "node:assert/strict";
import type { Express, Request } from "express";
import type { Catalog } from "./catalog.js";
import { bad_request } from "./errors.js";
import { query_param } from "./inputs.js";
import { market_year_label } from "./market_year.js";
import { units, type UnitsName } from "./measures.js";
import type { PageResponses } from "./page_responses.js";
import type { ResponseBody } from "./prepared_response.js";
import type { Row, Snapshot } from "./serving.js";
import { read_settings, type Settings } from "./settings.js";

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

/** Why one cell (or a row's year) deserves a second look: revised or new in this release, or a series break. */
export interface CellMark {
  kind: "revised" | "new" | "break";
  /** Unit-free words: a mark is not converted with the figures. */
  note: string;
}

export interface Table {
  title: string;
  columns: Column[];
  rows: Row[];
  /** Lines said under the table (ties kept at the cut, series breaks in the years shown). */
  notes?: string[];
  /** Row index → column key → mark. */
  marks?: Record<number, Record<string, CellMark>>;
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
  /** Vertical lines at these x labels (series breaks), with what they mean. */
  markers?: { label: string; note: string }[];
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

/**
 * Everything a page may read from a request, and nothing else: Express's routes and a fast path
 * in front of Express both build it, so a page never sees either one's request type.
 */
export interface PageInput {
  /** Decoded path parameters, e.g. { code: "br" } for /country/br. */
  path_params: Readonly<Record<string, string>>;
  /** One query parameter: undefined when absent or empty; a repeated one throws a 400. */
  query(name: string): string | undefined;
  /** The settings cookie, already checked (a bad cookie throws before a page sees it). */
  settings: Settings;
}

/**
 * Every input a page's response depends on, validated and normalized (units included): two
 * requests with equal params get the same body from the same serving file.
 */
export type PageParams = Readonly<Record<string, string | number>> & { units: UnitsName };

export interface Page<P extends PageParams = PageParams> {
  name: string;
  html_path: string;
  api_path: string;
  csv_path: string;
  /** Pure and synchronous (no query): checks and normalizes the input; bad input throws a 400 or 404 HttpError. */
  parse(input: PageInput, catalog: Catalog): P;
  /** The queries and the model: depends only on `params` and the snapshot's file. */
  load(params: P, snapshot: Snapshot<Catalog>): Promise<PageModel>;
}

/** How a page is sent: its HTML, its JSON twin, or one of its tables as CSV. */
export type Representation = "html" | "json" | `csv:${string}`;

/**
 * The serving file a response was computed from, by what export_serving wrote into it: a new
 * release or a re-export (a new exported_at) is a new version. Not by its inode: every web node
 * that serves the same published file (follower nodes, web/follow.ts) must derive the same ETags,
 * or a CDN revalidating against another node would get a 200 where a 304 was due.
 */
export function serving_version(catalog: Pick<Catalog, "release_id" | "exported_at">): string {
  return `${catalog.release_id}@${catalog.exported_at}`;
}

/**
 * What a rendered response is a function of: the serving file version, the page, the
 * representation, the normalized params (keys sorted, so the order of the query does not matter)
 * and the stale-data banner (web/freshness.ts; null while data is fresh), which depends on the time.
 */
export function cache_key(version: string, page: string, representation: Representation, params: PageParams,
  banner: string | null = null): string {
  const sorted = Object.keys(params).sort().map((key) => [key, params[key]]);
  return JSON.stringify([version, page, representation, sorted, banner]);
}

/** A page's input from an Express request. */
export function express_page_input(req: Request): PageInput {
  return { path_params: req.params as Record<string, string>, query: (name) => query_param(req, name), settings: read_settings(req.headers.cookie) };
}

const converted_kinds: ReadonlySet<ColumnKind> = new Set(["quantity", "change"]);

export type RepresentationKind = "html" | "json" | "csv";

/** The representation a request asks for: a CSV names its table (?table=, else the page's first). */
export function representation_of(kind: RepresentationKind, input: PageInput): Representation {
  return kind === "csv" ? `csv:${input.query("table") ?? ""}` : kind;
}

/** Renders an EJS view of the app to a string. */
export type RenderHtml = (view: string, locals: Record<string, unknown>) => Promise<string>;

/** The body of one representation of a page: the model loaded once, converted to its units, rendered. */
export async function render_page(page: Page, representation: Representation, params: PageParams, snapshot: Snapshot<Catalog>,
  render_html: RenderHtml, freshness_banner: string | null): Promise<ResponseBody> {
  const model = with_year_labels(in_units(await page.load(params, snapshot)));
  const catalog = snapshot.meta;
  const links = data_links(page, model);
  if (representation === "html") {
    return { body: await render_html(model.view, { model, catalog, links, unit_label: units[model.units].label, freshness_banner }),
      content_type: "text/html; charset=utf-8" };
  }
  if (representation === "json") {
    return {
      body: JSON.stringify({
        release_id: catalog.release_id,
        exported_at: catalog.exported_at,
        units: model.units,
        units_label: units[model.units].label,
        ...model.params,
        tables: model.tables,
        csv: Object.fromEntries(Object.keys(model.tables).map((key) => [key, links.csv(key)])),
      }),
      content_type: "application/json; charset=utf-8",
    };
  }
  const names = Object.keys(model.tables);
  const name = representation.slice("csv:".length) || names[0]!;
  const table = Object.hasOwn(model.tables, name) ? model.tables[name]! : undefined;
  if (!table) throw bad_request(`table must be one of ${names.join(", ")}`);
  const file = `beanflows_${[page.name, ...Object.values(model.params), name, model.units].join("_")}.csv`;
  // Every part comes from checked inputs or fixed names: nothing to quote or escape.
  assert.match(file, /^[\w.-]+$/, "a CSV file name is plain");
  return { body: to_csv(table), content_type: "text/csv; charset=utf-8", content_disposition: `attachment; filename="${file}"` };
}

/** Serves a page's HTML, JSON and CSV through `responses` (which caches them). */
export function mount_page(app: Express, responses: PageResponses, page: Page): void {
  app.get(page.html_path, (req, res) => responses.respond(req, res, page, "html"));
  // The CSV route first: /api/country/:code would also match BR.csv.
  app.get(page.csv_path, (req, res) => responses.respond(req, res, page, "csv"));
  app.get(page.api_path, (req, res) => responses.respond(req, res, page, "json"));
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

/** A market-year column's companion in JSON rows and CSV files: "2023/24" beside 2023. */
const label_key = (key: string) => `${key}_label`;

/** Adds the market-year label beside every year column of every row (JSON and CSV carry both). */
function with_year_labels(model: PageModel): PageModel {
  for (const table of Object.values(model.tables)) {
    const keys = table.columns.filter((column) => column.kind === "year").map((column) => column.key);
    if (keys.length === 0) continue;
    table.rows = table.rows.map((row) => ({ ...row, ...Object.fromEntries(keys.map((key) =>
      [label_key(key), typeof row[key] === "number" ? market_year_label(row[key]) : null])) }));
  }
  return model;
}

export function to_csv(table: Table): string {
  const keys = table.columns.flatMap((column) => (column.kind === "year" ? [column.key, label_key(column.key)] : [column.key]));
  const lines = [keys.map(csv_cell).join(",")];
  for (const row of table.rows) lines.push(keys.map((key) => csv_cell(row[key])).join(","));
  return lines.join("\r\n") + "\r\n";
}

/** What a spreadsheet may run as a formula when a cell starts with it (OWASP's CSV injection list). */
const formula_start = /^[=+\-@\t\r]/;
const plain_number = /^-?\d+(\.\d+)?(e[+-]?\d+)?$/i;

/**
 * One CSV cell, quoted when needed. A cell that a spreadsheet would take for a formula (a country
 * name "=HYPERLINK(…)" in a release) gets a leading ' and quotes, as OWASP advises; plain numbers,
 * negative ones included, stay numbers.
 */
export function csv_cell(value: unknown): string {
  let text = value === null || value === undefined ? "" : String(value);
  const formula = typeof value !== "number" && formula_start.test(text) && !plain_number.test(text);
  if (formula) text = `'${text}`;
  return formula || /[",\r\n]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}

const whole = new Intl.NumberFormat("en-US", { maximumFractionDigits: 0 });
const signed_whole = new Intl.NumberFormat("en-US", { maximumFractionDigits: 0, signDisplay: "exceptZero" });
const percent = new Intl.NumberFormat("en-US", { minimumFractionDigits: 1, maximumFractionDigits: 1 });
const signed_percent = new Intl.NumberFormat("en-US", { minimumFractionDigits: 1, maximumFractionDigits: 1, signDisplay: "exceptZero" });

/** How a cell reads on a page (templates call it; JSON and CSV carry the raw numbers). */
export function format_cell(value: unknown, kind: ColumnKind): string {
  // An empty cell is no figure (e.g. no change where a country enters the data), never a 0.
  if (value === null || value === undefined) return "—";
  if (typeof value !== "number") return String(value);
  switch (kind) {
    case "year": return market_year_label(value);
    case "quantity": return whole.format(value);
    case "change": return signed_whole.format(value);
    case "pct": return `${percent.format(value)} %`;
    case "change_pct": return `${signed_percent.format(value)} %`;
    default: return String(value);
  }
}
