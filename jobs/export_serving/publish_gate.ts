/** Row counts per table, by table name. */
export type RowCounts = Record<string, number>;

/**
 * Tables of what a release changed: empty when it changed nothing (or replaced no release), and
 * any size from one release to the next, so their size says nothing about a broken build.
 */
const change_tables: ReadonlySet<string> = new Set(["revisions", "world_revisions", "series_breaks"]);

/**
 * Why a new serving file must not replace the published one: a table that is empty, or that
 * lost more than half of its rows against the published file, or that disappeared. Empty when it
 * may be published.
 */
export function publish_gate_refusals(candidate: RowCounts, published: RowCounts | undefined): string[] {
  const refusals: string[] = [];
  for (const [table, rows] of Object.entries(candidate)) {
    if (change_tables.has(table)) continue;
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
