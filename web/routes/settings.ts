import express, { type Express } from "express";
import type { Config } from "../../config/schema.js";
import type { Catalog } from "../catalog.js";
import type { Csrf } from "../csrf.js";
import { units } from "../measures.js";
import type { ServingReader } from "../serving.js";
import { read_settings, serialize_settings, settings_cookie_name, settings_from_form } from "../settings.js";

const cookie_age_ms_max = 365 * 24 * 3600 * 1000;

export function mount_settings(app: Express, reader: ServingReader<Catalog>, config: Config, csrf: Csrf): void {
  app.get("/settings", async (req, res) => {
    const settings = read_settings(req.headers.cookie);
    const catalog = await reader.with_snapshot(async (snapshot) => snapshot.meta);
    const years: number[] = [];
    for (let year = catalog.year_first; year <= catalog.year_last; year++) years.push(year);
    // no-store: the form carries this browser's CSRF token.
    res.set("Cache-Control", "no-store").render("settings", { catalog, settings, years, units, saved: req.query.saved === "1",
      title: "Settings", csrf_token: csrf.token(req, res) });
  });

  app.get("/api/settings", (req, res) => {
    res.json({ settings: read_settings(req.headers.cookie), units: Object.keys(units) });
  });

  const form = express.urlencoded({ extended: false, limit: config.web_body_bytes_max, parameterLimit: 10 });
  app.post("/settings", form, async (req, res) => {
    csrf.check(req);
    const body = (req.body ?? {}) as Record<string, unknown>;
    if (body.reset !== undefined) {
      res.clearCookie(settings_cookie_name, { path: "/" });
    } else {
      const settings = await reader.with_snapshot(async (snapshot) => settings_from_form(body, snapshot.meta));
      res.cookie(settings_cookie_name, serialize_settings(settings),
        { path: "/", httpOnly: true, sameSite: "lax", secure: req.secure, maxAge: cookie_age_ms_max });
    }
    res.redirect(303, "/settings?saved=1");
  });
}
