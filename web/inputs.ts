import type { Request } from "express";
import type { Catalog } from "./catalog.js";
import { bad_request, not_found } from "./errors.js";
import { balance_measures, is_units_name, ranking_measures, type UnitsName } from "./measures.js";

// Every value a client sends is checked here, against fixed lists or the loaded serving file,
// before any query sees it. Messages name the parameter and what would be accepted.

export const rankings_top_max = 100;
const echoed_chars_max = 40;

/** A client's value, quoted and cut short, for error messages. */
const shown = (raw: string) => JSON.stringify(raw.length > echoed_chars_max ? raw.slice(0, echoed_chars_max) + "…" : raw);

/** One query parameter as a string; repeated or nested parameters are refused. */
export function query_param(req: Request, name: string): string | undefined {
  return single_value(name, (req.query as Record<string, unknown>)[name]);
}

/** The same from a parsed query string (the fast path in front of Express). */
export function search_param(search: URLSearchParams, name: string): string | undefined {
  const values = search.getAll(name);
  return single_value(name, values.length > 1 ? values : values[0]);
}

function single_value(name: string, value: unknown): string | undefined {
  if (value === undefined || value === "") return undefined;
  if (typeof value !== "string") throw bad_request(`${name} must be given once`);
  return value;
}

export function parse_year(raw: string, name: string, catalog: Catalog): number {
  if (!/^\d{4}$/.test(raw)) throw bad_request(`${name} must be a year such as ${catalog.year_last}, not ${shown(raw)}`);
  const year = Number(raw);
  if (year < catalog.year_first || year > catalog.year_last) {
    throw bad_request(`${name} must be between ${catalog.year_first} and ${catalog.year_last}, the years in the data (got ${year})`);
  }
  return year;
}

export function parse_units(raw: string): UnitsName {
  if (!is_units_name(raw)) throw bad_request(`units must be bags or tonnes, not ${shown(raw)}`);
  return raw;
}

export function parse_measure(raw: string): string {
  if (!Object.hasOwn(ranking_measures, raw)) {
    throw bad_request(`measure must be one of ${Object.keys(ranking_measures).join(", ")}, not ${shown(raw)}`);
  }
  return raw;
}

export function parse_top(raw: string, top_max = rankings_top_max): number {
  const top = /^\d{1,4}$/.test(raw) ? Number(raw) : NaN;
  if (!(top >= 1 && top <= top_max)) throw bad_request(`top must be a whole number from 1 to ${top_max}, not ${shown(raw)}`);
  return top;
}

/** One of the balance measures (production, arabica_production, …, ending_stocks). */
export function parse_balance_measure(raw: string): string {
  if (!balance_measures.some((measure) => measure.key === raw)) {
    throw bad_request(`measure must be one of ${balance_measures.map((measure) => measure.key).join(", ")}, not ${shown(raw)}`);
  }
  return raw;
}

/** A country code known to the data (case-insensitive): malformed → 400, unknown → 404. */
export function parse_country(raw: string, catalog: Catalog): string {
  if (!/^[A-Za-z0-9]{2}$/.test(raw)) throw bad_request(`a country code is two letters or digits such as BR, not ${shown(raw)}`);
  const code = raw.toUpperCase();
  if (!catalog.countries.has(code)) throw not_found(`no country with code ${code} in release ${catalog.release_id}`);
  return code;
}
