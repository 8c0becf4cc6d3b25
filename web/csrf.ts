import crypto from "node:crypto";
import type { NextFunction, Request, Response } from "express";
import { HttpError } from "./errors.js";
import { cookie_value } from "./settings.js";

// Forms that change something (POST /settings, POST /admin/run-now) are guarded twice:
// - a state-changing request whose Sec-Fetch-Site or Origin says it comes from another site is
//   refused outright, whatever it carries;
// - the form must carry a token tied to the browser's own session cookie (a signed double-submit
//   cookie): the token is an HMAC of the cookie under a key made at start-up, so a token taken
//   from one browser is worthless in another, and a cookie planted from elsewhere comes with no
//   valid token. A restart makes open forms stale: the 403 says to reload.

export const csrf_cookie_name = "beanflows_session";
const session_bytes = 32;
const session_pattern = /^[A-Za-z0-9_-]{43}$/;
const safe_methods: ReadonlySet<string> = new Set(["GET", "HEAD", "OPTIONS"]);
/** Sec-Fetch-Site values of a request the user made on this site, or typed/bookmarked ("none"). */
const own_site_fetches: ReadonlySet<string> = new Set(["same-origin", "none"]);

const digest = (text: string) => crypto.createHash("sha256").update(text).digest();
/** Equal-length digests, so the comparison takes the same time whatever the guess. */
export const same_secret = (a: string, b: string) => crypto.timingSafeEqual(digest(a), digest(b));

export function make_csrf() {
  const key = crypto.randomBytes(32);
  const token_of = (session: string) => crypto.createHmac("sha256", key).update(session).digest("base64url");
  return {
    /** The token for the form a page is about to show; starts the browser's session cookie if it has none. */
    token(req: Request, res: Response): string {
      let session = session_of(req);
      if (session === undefined) {
        session = crypto.randomBytes(session_bytes).toString("base64url");
        res.cookie(csrf_cookie_name, session, { path: "/", httpOnly: true, sameSite: "strict", secure: req.secure });
      }
      return token_of(session);
    },
    /** Throws 403 unless the form's csrf_token belongs to the request's session cookie. */
    check(req: Request): void {
      const given = (req.body as Record<string, unknown> | undefined)?.csrf_token;
      const session = session_of(req);
      if (typeof given !== "string" || session === undefined || !same_secret(given, token_of(session))) {
        throw new HttpError(403, "missing or invalid CSRF token: reload the page and submit the form again");
      }
    },
  };
}

export type Csrf = ReturnType<typeof make_csrf>;

/** Refuses every state-changing request that its browser says comes from another site. */
export function refuse_cross_site(req: Request, _res: Response, next: NextFunction): void {
  if (safe_methods.has(req.method)) return next();
  const fetch_site = req.headers["sec-fetch-site"];
  if (fetch_site !== undefined && !own_site_fetches.has(fetch_site)) {
    return next(new HttpError(403, `cross-site request refused (Sec-Fetch-Site: ${fetch_site.slice(0, 20)})`));
  }
  const origin = req.headers.origin;
  if (origin !== undefined && origin_host(origin) !== req.host) {
    return next(new HttpError(403, "cross-site request refused: its Origin is not this site"));
  }
  next();
}

function origin_host(origin: string): string | undefined {
  return URL.canParse(origin) ? new URL(origin).host : undefined; // "null" (a sandboxed or opaque origin) matches nothing
}

function session_of(req: Request): string | undefined {
  const value = cookie_value(req.headers.cookie ?? "", csrf_cookie_name);
  return value !== undefined && session_pattern.test(value) ? value : undefined;
}
