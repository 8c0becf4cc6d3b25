import type { NextFunction, Request, Response } from "express";
import { log } from "../lib/log.js";
import { same_secret } from "./csrf.js";
import { HttpError } from "./errors.js";
import type { LoginLimiter } from "./login_limiter.js";

// The operator pages need HTTP Basic auth with ADMIN_PASSWORD (any user name). Wrong passwords
// are counted per client address (req.ip: the proxy's X-Forwarded-For only when WEB_TRUST_PROXY
// trusts it) and logged one line each, in a fixed form fail2ban can match:
//   web: failed admin login from 203.0.113.7 (3 of 10 within 900 s)

const credentials_chars_max = 1000;

export function basic_auth(password: string, limiter: LoginLimiter) {
  return (req: Request, res: Response, next: NextFunction) => {
    const client = req.ip ?? "unknown";
    const retry_after_s = limiter.retry_after_s(client);
    if (retry_after_s > 0) {
      res.set("Retry-After", String(retry_after_s));
      return next(new HttpError(429, `too many wrong admin passwords from this address: try again in ${retry_after_s} s`));
    }
    const given = basic_password(req.headers.authorization);
    if (given !== undefined && same_secret(given, password)) {
      limiter.succeeded(client);
      return next();
    }
    // No credentials at all is a browser asking for the prompt, not a guess: only wrong ones count.
    if (given !== undefined) {
      const failures = limiter.failed(client);
      const { failures_max, window_ms } = limiter.options;
      log.warn(`web: failed admin login from ${client} (${failures} of ${failures_max} within ${window_ms / 1000} s)`);
    }
    res.set("WWW-Authenticate", 'Basic realm="materia admin", charset="UTF-8"');
    next(new HttpError(401, "the admin pages need the admin password (ADMIN_PASSWORD)"));
  };
}

/** The password of a Basic Authorization header (the scheme is case-insensitive, RFC 7617); undefined without one. */
function basic_password(header: string | undefined): string | undefined {
  const match = new RegExp(`^basic +([A-Za-z0-9+/=]{1,${credentials_chars_max}}) *$`, "i").exec(header ?? "");
  if (!match) return undefined;
  const given = Buffer.from(match[1]!, "base64").toString("utf8");
  const separator = given.indexOf(":");
  return separator >= 0 ? given.slice(separator + 1) : undefined;
}
