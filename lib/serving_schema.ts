// The contract between export_serving (which writes serving.duckdb) and the web (which reads it):
// every table and column the web reads, with its DuckDB type. The web checks each file against it
// when it opens one, and export_serving checks the file it built before publishing it, so a file
// the pages cannot read never ships and, if one turns up anyway, never serves.
//
// Add a table or column here in the same commit as the page or query that reads it. A file may
// hold more than this (e.g. release.source_file): only what the web reads is checked.

/** DuckDB's names for the types the web reads, as information_schema.columns.data_type spells them. */
export type DuckDBTypeName = "VARCHAR" | "INTEGER" | "BIGINT" | "DOUBLE" | "BOOLEAN" | "DATE" | "TIMESTAMP"
  | "TIMESTAMP WITH TIME ZONE";

export type ServingSchema = Readonly<Record<string, Readonly<Record<string, DuckDBTypeName>>>>;

/** The columns of world_balance and country_balance that the balance pages read. */
const balance_columns = {
  market_year: "INTEGER",
  production: "DOUBLE",
  arabica_production: "DOUBLE",
  robusta_production: "DOUBLE",
  other_production: "DOUBLE",
  beginning_stocks: "DOUBLE",
  imports: "DOUBLE",
  total_supply: "DOUBLE",
  exports: "DOUBLE",
  domestic_consumption: "DOUBLE",
  ending_stocks: "DOUBLE",
  stocks_to_use_pct: "DOUBLE",
  stocks_to_consumption_pct: "DOUBLE",
} as const satisfies Record<string, DuckDBTypeName>;

/** A figure of the published release against the one it replaced (revisions, world_revisions). */
const revision_columns = {
  market_year: "INTEGER",
  measure: "VARCHAR",
  previous_value: "DOUBLE",
  new_value: "DOUBLE",
  change: "DOUBLE",
  change_pct: "DOUBLE",
  revision: "VARCHAR",
} as const satisfies Record<string, DuckDBTypeName>;

export const serving_schema = {
  /** Written by export_serving itself. */
  export_info: { release_id: "VARCHAR", exported_at: "TIMESTAMP WITH TIME ZONE" },
  release: {
    release_id: "VARCHAR",
    landed_at: "TIMESTAMP WITH TIME ZONE",
    usda_release_month: "DATE",
    previous_release_id: "VARCHAR",
    previous_landed_at: "TIMESTAMP WITH TIME ZONE",
    previous_usda_release_month: "DATE",
  },
  world_balance: balance_columns,
  country_balance: { country_code: "VARCHAR", country_name: "VARCHAR", ...balance_columns },
  rankings: {
    market_year: "INTEGER",
    measure: "VARCHAR",
    rank: "INTEGER",
    country_code: "VARCHAR",
    country_name: "VARCHAR",
    value: "DOUBLE",
    share_of_world_pct: "DOUBLE",
    change_vs_previous_year: "DOUBLE",
    change_vs_previous_year_pct: "DOUBLE",
  },
  revisions: { country_code: "VARCHAR", country_name: "VARCHAR", ...revision_columns },
  world_revisions: revision_columns,
  series_breaks: {
    market_year: "INTEGER",
    measure: "VARCHAR",
    country_code: "VARCHAR",
    country_name: "VARCHAR",
    event: "VARCHAR",
    value: "DOUBLE",
    share_of_world_pct: "DOUBLE",
  },
} as const satisfies ServingSchema;

/** One row of information_schema.columns. */
export interface ColumnRow {
  table_name: string;
  column_name: string;
  data_type: string;
}

/**
 * The columns of the tables in `main` of the connection's own file, for `schema_mismatches`
 * (export_serving attaches other files beside it). duckdb_columns() rather than
 * information_schema.columns: the same rows, in ~2 ms instead of ~10 ms, and the web runs this
 * on every swap while requests wait for the new file.
 */
export const serving_columns_sql = `SELECT table_name, column_name, data_type FROM duckdb_columns()
  WHERE database_name = current_database() AND schema_name = 'main' ORDER BY table_name, column_index`;

/**
 * What keeps a file with `columns` from being read by the web: one phrase per missing table,
 * missing column or column of another type, in schema order. Empty when the file fits.
 */
export function schema_mismatches(columns: readonly ColumnRow[], schema: ServingSchema = serving_schema): string[] {
  const found = new Map<string, Map<string, string>>();
  for (const { table_name, column_name, data_type } of columns) {
    if (!found.has(table_name)) found.set(table_name, new Map());
    found.get(table_name)!.set(column_name, data_type);
  }
  const mismatches: string[] = [];
  for (const [table, expected_columns] of Object.entries(schema)) {
    const table_columns = found.get(table);
    if (!table_columns) {
      mismatches.push(`table ${table} is missing`);
      continue;
    }
    for (const [column, expected_type] of Object.entries(expected_columns)) {
      const type = table_columns.get(column);
      if (type === undefined) mismatches.push(`column ${table}.${column} is missing`);
      else if (type !== expected_type) mismatches.push(`column ${table}.${column} is ${type}, not ${expected_type}`);
    }
  }
  return mismatches;
}

/**
 * A serving file that opens but must not be served (or published). Its message says why in words
 * safe to show anyone: table and column names, never a path or DuckDB's own error text.
 */
export class ServingFileRefused extends Error {}

/** A serving file that the web could not read: the message names every mismatch. */
export class ServingSchemaError extends ServingFileRefused {
  constructor(readonly mismatches: readonly string[]) {
    super(`the serving file does not fit the schema the web reads: ${mismatches.join("; ")}`);
  }
}

/** Throws a ServingSchemaError naming every mismatch between a file's `columns` and the schema. */
export function check_serving_schema(columns: readonly ColumnRow[], schema: ServingSchema = serving_schema): void {
  const mismatches = schema_mismatches(columns, schema);
  if (mismatches.length > 0) throw new ServingSchemaError(mismatches);
}
