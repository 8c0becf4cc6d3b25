// Every security header the web sends, decided in one place: the Express middleware applies
// them, and anything that answers in front of Express (a cache's fast path) takes the same
// headers from `security_headers()`. Pure: the answer depends on the policy and on whether the
// request came over TLS (through a trusted proxy: we never terminate TLS ourselves).

export interface HeaderPolicy {
  /** 0: no HSTS at all. */
  hsts_max_age_s: number;
  hsts_include_subdomains: boolean;
}

const content_security_policy = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "font-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'self'",
  // No page may be framed anywhere; X-Frame-Options says the same to browsers without CSP 2.
  "frame-ancestors 'none'",
].join("; ");

const always: Readonly<Record<string, string>> = {
  "Content-Security-Policy": content_security_policy,
  "X-Frame-Options": "DENY",
  "X-Content-Type-Options": "nosniff",
  // Nothing to other sites; our own forms keep a real Origin (under no-referrer, Chromium sends
  // "Origin: null" with a same-origin form post, which the cross-site check must refuse).
  "Referrer-Policy": "same-origin",
  "Cross-Origin-Opener-Policy": "same-origin",
  "Cross-Origin-Resource-Policy": "same-origin",
  "Origin-Agent-Cluster": "?1",
  "X-DNS-Prefetch-Control": "off",
  "X-Permitted-Cross-Domain-Policies": "none",
  // The old XSS auditor did more harm than good; "0" turns it off where it still exists.
  "X-XSS-Protection": "0",
};

/** The security headers of an answer; HSTS only over TLS, since a browser ignores it over plain HTTP anyway and a proxy decides the scheme. */
export function security_headers(policy: HeaderPolicy, over_tls: boolean): Readonly<Record<string, string>> {
  if (!over_tls || policy.hsts_max_age_s === 0) return always;
  const hsts = `max-age=${policy.hsts_max_age_s}${policy.hsts_include_subdomains ? "; includeSubDomains" : ""}`;
  return { ...always, "Strict-Transport-Security": hsts };
}
