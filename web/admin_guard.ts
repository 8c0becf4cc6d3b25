import crypto from "node:crypto";
import type { NextFunction, Request, Response } from "express";
import { HttpError } from "./errors.js";

// The operator pages are guarded twice: HTTP Basic auth with ADMIN_PASSWORD (any user name),
// and a CSRF token on every POST, so a page elsewhere cannot make the operator's browser, which
// sends the Basic credentials by itself, press "Run now".

const digest = (text: string) => crypto.createHash("sha256").update(text).digest();
/** Equal-length digests, so the comparison takes the same time whatever the guess. */
const same_secret = (a: string, b: string) => crypto.timingSafeEqual(digest(a), digest(b));

export function basic_auth(password: string) {
  return (req: Request, res: Response, next: NextFunction) => {
    const header = req.headers.authorization ?? "";
    const match = /^Basic ([A-Za-z0-9+/=]{1,1000})$/.exec(header);
    const given = match ? Buffer.from(match[1]!, "base64").toString("utf8") : "";
    const separator = given.indexOf(":");
    if (separator >= 0 && same_secret(given.slice(separator + 1), password)) return next();
    res.set("WWW-Authenticate", 'Basic realm="materia admin", charset="UTF-8"');
    next(new HttpError(401, "the admin pages need the admin password (ADMIN_PASSWORD)"));
  };
}

/** Tokens are an HMAC under a key made at start-up: valid until the web process restarts. */
export function make_csrf() {
  const key = crypto.randomBytes(32);
  const token = crypto.createHmac("sha256", key).update("materia admin form").digest("base64url");
  return {
    token,
    check(req: Request): void {
      const given = (req.body as Record<string, unknown> | undefined)?.csrf_token;
      if (typeof given !== "string" || !same_secret(given, token)) {
        throw new HttpError(403, "missing or invalid CSRF token: reload /admin and press the button again");
      }
    },
  };
}
