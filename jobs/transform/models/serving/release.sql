MODEL (
  name serving.release,
  kind FULL,
  description 'The release the serving tables were built from: one row.',
  audits (
    number_of_rows(threshold := 0),
    not_null(columns := (release_id, source_file, landed_at, row_count)),
    accepted_range(column := row_count, min_v := 1),
  )
);

SELECT
  REGEXP_EXTRACT(source_file, '([^/]+)\.csv\.gzip$', 1) AS release_id,
  source_file,
  (SELECT last_modified FROM READ_BLOB(@psd_release_file)) AS landed_at,
  COUNT(*)::INT AS row_count,
  COUNT(DISTINCT country_code)::INT AS country_count,
  MIN(market_year)::INT AS market_year_first,
  MAX(market_year)::INT AS market_year_last,
  @execution_ts::TIMESTAMP AS transformed_at
FROM staging.psd_coffee
GROUP BY source_file
