// The trend of a series sampled over a soak: an ordinary least-squares line, how well it fits
// (R²) and how sure its slope is (a 95 % confidence interval). A slope whose interval holds zero
// is no growth the run could tell from noise; a steady leak shows as a tight interval and an R²
// near 1.

export interface Trend {
  /** Units of y per unit of x. */
  slope: number;
  /** Half the width of the slope's 95 % confidence interval: slope ± this. */
  slope_ci95: number;
  /** Share of y's variance the line explains, 0..1 (0 when y does not vary). */
  r2: number;
  samples: number;
}

/** The least-squares line through (x[i], y[i]); needs three points or more (two leave no error to estimate). */
export function linear_trend(x: number[], y: number[]): Trend {
  if (x.length !== y.length) throw new Error(`linear_trend: ${x.length} x values but ${y.length} y values`);
  const n = x.length;
  if (n < 3) throw new Error(`linear_trend: needs at least 3 samples, got ${n}`);
  const mean_x = x.reduce((sum, v) => sum + v, 0) / n;
  const mean_y = y.reduce((sum, v) => sum + v, 0) / n;
  let sxx = 0;
  let sxy = 0;
  let syy = 0;
  for (let i = 0; i < n; i++) {
    const dx = x[i]! - mean_x;
    const dy = y[i]! - mean_y;
    sxx += dx * dx;
    sxy += dx * dy;
    syy += dy * dy;
  }
  if (sxx === 0) throw new Error("linear_trend: every sample has the same x");
  const slope = sxy / sxx;
  const residual_ss = Math.max(0, syy - slope * sxy);
  const slope_se = Math.sqrt(residual_ss / (n - 2) / sxx);
  return { slope, slope_ci95: t_quantile_975(n - 2) * slope_se, r2: syy === 0 ? 0 : 1 - residual_ss / syy, samples: n };
}

/**
 * Student's t at 0.975 for `df` degrees of freedom: exact values for small df, then the
 * Cornish-Fisher expansion around the normal's 1.96 (within 0.1 % from df = 10 on).
 */
export function t_quantile_975(df: number): number {
  const small = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262];
  if (df < 1) throw new Error(`t_quantile_975: df must be at least 1, got ${df}`);
  if (df <= small.length) return small[df - 1]!;
  const z = 1.959964;
  return z + (z ** 3 + z) / (4 * df) + (5 * z ** 5 + 16 * z ** 3 + 3 * z) / (96 * df ** 2);
}
