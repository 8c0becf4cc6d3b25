import assert from "node:assert/strict";
import type { IncomingMessage } from "node:http";
import { describe, test } from "node:test";
import { LoginLimiter } from "../web/login_limiter.js";
import { csv_cell } from "../web/pages.js";
import { SecurityHeaders } from "../web/security_headers.js";

// The web's pure policies against hostile clients, as tables: the login limiter, CSV cells and
// the security headers.

describe("the admin login limiter", () => {
  const minute_ms = 60_000;
  const limiter_at = (clients_max = 100) => {
    const clock = { now_ms: 0 };
    const limiter = new LoginLimiter({ failures_max: 3, window_ms: 10 * minute_ms, clients_max }, () => clock.now_ms);
    return { clock, limiter };
  };

  test("locks an address out after failures_max failures until its window ends, then lets it try again", () => {
    const { clock, limiter } = limiter_at();
    assert.deepEqual([1, 2, 3].map(() => limiter.failed("203.0.113.7")), [1, 2, 3]);
    clock.now_ms = 4 * minute_ms;
    assert.equal(limiter.retry_after_s("203.0.113.7"), 360);
    assert.equal(limiter.retry_after_s("198.51.100.2"), 0, "another address is not locked out");
    clock.now_ms = 10 * minute_ms;
    assert.equal(limiter.retry_after_s("203.0.113.7"), 0, "the window has ended");
    assert.equal(limiter.failed("203.0.113.7"), 1, "a new window counts from one");
  });

  test("fewer failures than failures_max lock nothing, and the right password starts the count afresh", () => {
    const { limiter } = limiter_at();
    limiter.failed("203.0.113.7");
    limiter.failed("203.0.113.7");
    assert.equal(limiter.retry_after_s("203.0.113.7"), 0);
    limiter.succeeded("203.0.113.7");
    assert.equal(limiter.failed("203.0.113.7"), 1);
  });

  test("many addresses never grow it past clients_max: the rest share one counter, and ended windows are dropped", () => {
    const { clock, limiter } = limiter_at(1000);
    for (let i = 0; i < 100_000; i++) limiter.failed(`10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`);
    assert.equal(limiter.remembered(), 1000);
    assert.ok(limiter.retry_after_s("192.0.2.1") > 0, "a new address meets the shared counter, long exhausted");
    assert.equal(limiter.retry_after_s("10.0.0.1"), 0, "a remembered address has its own count (one failure)");
    clock.now_ms = 10 * minute_ms;
    assert.equal(limiter.retry_after_s("192.0.2.1"), 0);
    assert.equal(limiter.remembered(), 0, "every window ended and was dropped");
  });

  test("refuses bounds below 1", () => {
    assert.throws(() => new LoginLimiter({ failures_max: 0, window_ms: 1000, clients_max: 10 }), /bounds must be at least 1/);
  });
});

describe("CSV cells", () => {
  test("cells a spreadsheet would run are prefixed with ' and quoted (OWASP)", () => {
    const cases: [unknown, string][] = [
      ["=1+1", `"'=1+1"`],
      ["+1+1", `"'+1+1"`],
      ["-1+1", `"'-1+1"`],
      ["@SUM(A1)", `"'@SUM(A1)"`],
      ["\tTAB", `"'\tTAB"`],
      ["\rCR", `"'\rCR"`],
      ['=HYPERLINK("http://evil.example")', `"'=HYPERLINK(""http://evil.example"")"`],
    ];
    for (const [value, expected] of cases) assert.equal(csv_cell(value), expected, JSON.stringify(value));
  });

  test("numbers stay numbers, negative ones included; plain text is left alone", () => {
    const cases: [unknown, string][] = [
      [-2150, "-2150"], [-0.5, "-0.5"], [1e21, "1e+21"], ["-12.5", "-12.5"], ["-1e-7", "-1e-7"], [66300, "66300"],
      ["Brazil", "Brazil"], ["Côte d'Ivoire", "Côte d'Ivoire"], ["Congo, Dem. Rep.", `"Congo, Dem. Rep."`],
      [null, ""], [undefined, ""], ["a=b", "a=b"],
    ];
    for (const [value, expected] of cases) assert.equal(csv_cell(value), expected, JSON.stringify(value));
  });
});

describe("security headers", () => {
  const request = (remote_address: string, headers: Record<string, string> = {}) =>
    ({ socket: { remoteAddress: remote_address }, headers }) as unknown as IncomingMessage;
  const trust_loopback = (address: string) => address === "127.0.0.1";
  const as_map = (list: readonly string[]) => new Map(list.flatMap((_, i) => (i % 2 === 0 ? [[list[i]!, list[i + 1]!] as const] : [])));

  test("HSTS only when a trusted proxy says https, without includeSubDomains unless asked", () => {
    const headers = new SecurityHeaders({ hsts_max_age_s: 31_536_000, hsts_include_subdomains: false }, trust_loopback);
    const hsts = (req: IncomingMessage) => as_map(headers.for_request(req)).get("Strict-Transport-Security");
    assert.equal(hsts(request("127.0.0.1", { "x-forwarded-proto": "https" })), "max-age=31536000");
    assert.equal(hsts(request("127.0.0.1", { "x-forwarded-proto": "https, http" })), "max-age=31536000", "the first value counts");
    assert.equal(hsts(request("127.0.0.1", { "x-forwarded-proto": "http" })), undefined);
    assert.equal(hsts(request("127.0.0.1")), undefined);
    assert.equal(hsts(request("203.0.113.7", { "x-forwarded-proto": "https" })), undefined, "an untrusted peer cannot claim TLS");
    const subdomains = new SecurityHeaders({ hsts_max_age_s: 600, hsts_include_subdomains: true }, trust_loopback);
    assert.equal(as_map(subdomains.for_request(request("127.0.0.1", { "x-forwarded-proto": "https" }))).get("Strict-Transport-Security"),
      "max-age=600; includeSubDomains");
    const off = new SecurityHeaders({ hsts_max_age_s: 0, hsts_include_subdomains: false }, trust_loopback);
    assert.equal(as_map(off.for_request(request("127.0.0.1", { "x-forwarded-proto": "https" }))).get("Strict-Transport-Security"), undefined);
  });

  test("X-Frame-Options agrees with the CSP: no framing anywhere", () => {
    const headers = as_map(new SecurityHeaders({ hsts_max_age_s: 0, hsts_include_subdomains: false }, () => false).for_request(request("::1")));
    assert.equal(headers.get("X-Frame-Options"), "DENY");
    assert.match(headers.get("Content-Security-Policy")!, /(^|;\s*)frame-ancestors 'none'(;|$)/);
  });
});
