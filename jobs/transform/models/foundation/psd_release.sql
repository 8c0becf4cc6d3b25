MODEL (
  name foundation.psd_release,
  kind INCREMENTAL_BY_TIME_RANGE (time_column landed_at),
  allow_partials true,
  description 'The release dimension: one row per landed PSD release.',
  grain (release_id),
  audits (
    unique_values(columns := (release_id)),
    not_null(columns := (release_id, source_file, landed_at, row_count)),
  )
);

SELECT
  release_id,
  ANY_VALUE(source_file) AS source_file,
  MIN(landed_at) AS landed_at,
  -- PSD stamps each row with the month USDA last revised it: the latest is the release's month.
  -- A file without usable stamps has none.
  MAX(
    CASE
      WHEN calendar_year BETWEEN 1900 AND 2200 AND revision_month BETWEEN 1 AND 12
      THEN MAKE_DATE(calendar_year, revision_month, 1)
    END
  ) AS usda_release_month,
  COUNT(*)::INT AS row_count,
  COUNT(DISTINCT country_code)::INT AS country_count,
  MIN(market_year)::INT AS market_year_first,
  MAX(market_year)::INT AS market_year_last
FROM staging.psd_coffee
WHERE landed_at BETWEEN @start_ts AND @end_ts
GROUP BY release_id
