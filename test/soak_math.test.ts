import assert from "node:assert/strict";
import { test } from "node:test";
import { failures_outside } from "../bench/soak.js";
import { linear_trend, t_quantile_975 } from "../bench/trend.js";

test("a steady leak is a slope with a tight interval and R² 1; noise around a flat line is an interval holding zero", () => {
  const hours = Array.from({ length: 50 }, (_, i) => i / 10);
  const leak = linear_trend(hours, hours.map((h) => 100 + 3 * h));
  assert.ok(Math.abs(leak.slope - 3) < 1e-9 && leak.slope_ci95 < 1e-6 && Math.abs(leak.r2 - 1) < 1e-9, JSON.stringify(leak));
  const flat = linear_trend(hours, hours.map((_, i) => 100 + (i % 2 === 0 ? 2 : -2)));
  assert.ok(Math.abs(flat.slope) <= flat.slope_ci95, `zero within ${flat.slope} ± ${flat.slope_ci95}`);
  assert.ok(flat.r2 < 0.05);
  assert.throws(() => linear_trend([1, 2], [1, 2]), /needs at least 3 samples, got 2/);
  assert.throws(() => linear_trend([1, 1, 1], [1, 2, 3]), /every sample has the same x/);
});

test("Student's t: exact for small samples, close to 1.96 for large", () => {
  assert.equal(t_quantile_975(1), 12.706);
  assert.ok(Math.abs(t_quantile_975(30) - 2.042) < 0.002);
  assert.ok(Math.abs(t_quantile_975(1000) - 1.962) < 0.002);
});

test("a failed request counts against the soak unless a kill explains it: in flight at the kill, or before the next success after it", () => {
  const request = (started_ms: number, latency_ms: number, outcome: string) => ({ client: 0, started_ms, latency_ms, outcome, url: "/" });
  const requests = [
    request(0, 10, "ok"),
    request(990, 20, "ECONNRESET"), // in flight at the kill (1000)
    request(1100, 10, "ECONNREFUSED"), // before the web served again
    request(1500, 10, "ok"), // served again: the window ends 1 s after this one ended
    request(3000, 10, "status 500"), // nothing explains it
  ];
  const result = failures_outside(requests, [{ what: "web", pid: 7, at_ms: 1000 }]);
  assert.equal(result.failed_outside_kills, 1);
  assert.deepEqual(result.failed_outside_kills_by_outcome, { "status 500": 1 });
  assert.deepEqual(result.kills.map((k) => [k.what, k.failed_requests]), [["web", 2]]);
});
