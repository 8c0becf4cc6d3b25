import type { Express } from "express";
import type { Catalog } from "../catalog.js";
import { bad_request } from "../errors.js";
import { parse_country, query_param } from "../inputs.js";
import { headline_measures } from "../measures.js";
import type { Page, PageModel } from "../pages.js";
import type { UnitsName } from "../measures.js";
import type { ServingReader, Snapshot } from "../serving.js";
import { view_options } from "../settings.js";
import { balance_charts, balance_columns, balance_select } from "./balance.js";

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
    const name = snapshot.meta.countries.get(code)!;
    return {
      view: "country",
      title: name,
      units,
      params: { code, from, to },
      tables: { balance: { title: `${name}: supply and distribution ${from}–${to}`, columns: balance_columns, rows } },
      charts: balance_charts(rows, "country"),
      extra: { code, name, headline_measures },
    };
  },
};

/** The country picker's form (GET /country?code=BR) lands on the country's own address. */
export function mount_country_picker(app: Express, reader: ServingReader<Catalog>): void {
  app.get("/country", async (req, res) => {
    const raw = query_param(req, "code");
    if (raw === undefined) throw bad_request("code is required, e.g. /country?code=BR");
    const code = await reader.with_snapshot(async (snapshot) => parse_country(raw, snapshot.meta));
    res.redirect(303, `/country/${code}`);
  });
}
