/** Row counts per table, by table name. */
export type RowCounts = Record<string, number>;

/**
 * Why a new serving file must not replace the published one: a table that is empty, or that
 * lost more than half of its rows against the published file. Empty when it may be published.
 */
export function publish_gate_refusals(candidate: RowCounts, published: RowCounts | undefined): string[] {
  const refusals: string[] = [];
  for (const [table, rows] of Object.entries(candidate)) {
    if (rows === 0) {
      refusals.push(`${table} is empty`);
      continue;
    }
    const published_rows = published?.[table];
    if (published_rows !== undefined && rows * 2 < published_rows) {
      refusals.push(`${table} would shrink from ${published_rows} to ${rows} rows`);
    }
  }
  for (const table of Object.keys(published ?? {})) {
    if (!(table in candidate)) refusals.push(`${table} would disappear`);
  }
  return refusals;
}
