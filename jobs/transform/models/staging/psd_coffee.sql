MODEL (
  name staging.psd_coffee,
  -- Every landed release, once: each interval reads the files landed in it (by their mtime), so
  -- a new release costs one file's read however many came before it.
  kind INCREMENTAL_BY_TIME_RANGE (time_column landed_at),
  -- A release lands at any hour: the transform plans with --run --ignore-cron and an exact
  -- --execution-time, so today's interval is read up to now, not at midnight.
  allow_partials true,
  description 'Typed rows of every landed PSD coffee release, as USDA ships them, with the release they came in.',
  grain (release_id, commodity_code, country_code, market_year, attribute_id),
  -- Non-blocking: a bad row must not stop every later run (this table keeps every release); the
  -- blocking checks are on foundation.psd_fact, for the releases being published.
  audits (
    not_null_non_blocking(columns := (release_id, source_file, landed_at)),
  )
);

SELECT
  REGEXP_EXTRACT(filename, '([^/]+)\.csv\.gzip$', 1)::TEXT AS release_id,
  filename::TEXT AS source_file,
  landed_at::TIMESTAMP AS landed_at,
  Commodity_Code::TEXT AS commodity_code,
  Commodity_Description::TEXT AS commodity,
  Country_Code::TEXT AS country_code,
  Country_Name::TEXT AS country_name,
  -- TRY_CAST: a malformed cell becomes NULL here and fails foundation.psd_fact's audits while its
  -- release is the one being published, instead of failing every run from now on.
  TRY_CAST(Market_Year AS INT) AS market_year,
  TRY_CAST(Calendar_Year AS INT) AS calendar_year,
  TRY_CAST("Month" AS INT) AS revision_month,
  TRY_CAST(Attribute_ID AS INT) AS attribute_id,
  Attribute_Description::TEXT AS attribute,
  Unit_Description::TEXT AS unit,
  TRY_CAST("Value" AS DECIMAL(18, 4)) AS value
FROM @landed_psd_releases(@start_ts, @end_ts) AS landed
WHERE landed_at BETWEEN @start_ts AND @end_ts
