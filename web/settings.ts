import type { Catalog } from "./catalog.js";
import { HttpError, bad_request } from "./errors.js";
import { parse_units, parse_year } from "./inputs.js";
import type { UnitsName } from "./measures.js";
import type { PageInput } from "./pages.js";

// A reader's preferences (units, default year range) live in one cookie, written by the settings
// page and checked on every request: a tampered cookie is refused with a message and cleared.

export const settings_cookie_name = "beanflows_settings";
const cookie_chars_max = 200;
const sane_year_first = 1900;
const sane_year_last = 2100;

export interface Settings {
  units: UnitsName;
  year_from: number | null;
  year_to: number | null;
}

export const default_settings: Settings = { units: "bags", year_from: null, year_to: null };

/** A bad settings cookie: the error handler answers 400 and clears it, so a reload recovers. */
export class SettingsCookieError extends HttpError {
  constructor(reason: string) {
    super(400, `the settings cookie is not valid (${reason}); it has been cleared: reload the page`);
  }
}

/** The settings from a request's Cookie header (defaults without the cookie). */
export function read_settings(cookie_header: string | undefined): Settings {
  const raw = cookie_value(cookie_header ?? "", settings_cookie_name);
  if (raw === undefined) return default_settings;
  if (raw.length > cookie_chars_max) throw new SettingsCookieError(`longer than ${cookie_chars_max} characters`);
  let fields: URLSearchParams;
  try {
    fields = new URLSearchParams(decodeURIComponent(raw));
  } catch {
    throw new SettingsCookieError("not URL-encoded");
  }
  const units = fields.get("units");
  if (units !== "bags" && units !== "tonnes") throw new SettingsCookieError("units must be bags or tonnes");
  const year = (name: string): number | null => {
    const value = fields.get(name);
    if (value === null || value === "") return null;
    const year = /^\d{4}$/.test(value) ? Number(value) : NaN;
    if (!(year >= sane_year_first && year <= sane_year_last)) throw new SettingsCookieError(`${name} must be a year`);
    return year;
  };
  const settings = { units, year_from: year("from"), year_to: year("to") } satisfies Settings;
  if (settings.year_from !== null && settings.year_to !== null && settings.year_from > settings.year_to) {
    throw new SettingsCookieError("from is after to");
  }
  return settings;
}

export function serialize_settings(settings: Settings): string {
  const fields = new URLSearchParams({ units: settings.units });
  if (settings.year_from !== null) fields.set("from", String(settings.year_from));
  if (settings.year_to !== null) fields.set("to", String(settings.year_to));
  return fields.toString();
}

/** The settings form's fields, checked against the loaded data. */
export function settings_from_form(body: Record<string, unknown>, catalog: Catalog): Settings {
  const field = (name: string): string | undefined => {
    const value = body[name];
    if (value === undefined || value === "") return undefined;
    if (typeof value !== "string") throw bad_request(`${name} must be given once`);
    return value;
  };
  const units = parse_units(field("units") ?? "bags");
  const from = field("from");
  const to = field("to");
  const settings: Settings = { units, year_from: from === undefined ? null : parse_year(from, "from", catalog),
    year_to: to === undefined ? null : parse_year(to, "to", catalog) };
  if (settings.year_from !== null && settings.year_to !== null && settings.year_from > settings.year_to) {
    throw bad_request(`from (${settings.year_from}) must not be after to (${settings.year_to})`);
  }
  return settings;
}

/** The units and years a page shows: query parameters win over the cookie; both are checked. */
export interface ViewOptions {
  units: UnitsName;
  from: number;
  to: number;
}

export function view_options(input: PageInput, catalog: Catalog): ViewOptions {
  const settings = input.settings;
  const units_param = input.query("units");
  const from_param = input.query("from");
  const to_param = input.query("to");
  // The cookie's years were valid when saved; a newer release may cover other years: clamp them.
  const clamp = (year: number) => Math.min(Math.max(year, catalog.year_first), catalog.year_last);
  let from = from_param !== undefined ? parse_year(from_param, "from", catalog) : clamp(settings.year_from ?? catalog.year_first);
  let to = to_param !== undefined ? parse_year(to_param, "to", catalog) : clamp(settings.year_to ?? catalog.year_last);
  if (from > to) {
    if (from_param !== undefined || to_param !== undefined) throw bad_request(`from (${from}) must not be after to (${to})`);
    [from, to] = [catalog.year_first, catalog.year_last];
  }
  return { units: units_param !== undefined ? parse_units(units_param) : settings.units, from, to };
}

export function cookie_value(header: string, name: string): string | undefined {
  for (const part of header.split(";")) {
    const [key, ...value] = part.trim().split("=");
    if (key === name) return value.join("=");
  }
  return undefined;
}

/** Whether the settings cookie can change a page's response: it fills in what the query leaves out. */
export function cookie_matters(input: PageInput): boolean {
  return input.query("units") === undefined || input.query("from") === undefined || input.query("to") === undefined;
}
