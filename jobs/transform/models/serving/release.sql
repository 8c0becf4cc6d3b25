MODEL (
  name serving.release,
  kind FULL,
  description 'The published release (the one upstream serves) and the one it replaces: one row.',
  audits (
    -- No row: the current release is not in staging.psd_coffee (see OPERATIONS.md, rebuild).
    number_of_rows(threshold := 0),
    not_null(columns := (release_id, source_file, landed_at, row_count)),
    accepted_range(column := row_count, min_v := 1),
  )
);

SELECT
  cur.release_id,
  cur.source_file,
  TIMEZONE('UTC', cur.landed_at) AS landed_at,
  cur.usda_release_month,
  cur.row_count,
  cur.country_count,
  cur.market_year_first,
  cur.market_year_last,
  prev.release_id AS previous_release_id,
  TIMEZONE('UTC', prev.landed_at) AS previous_landed_at,
  prev.usda_release_month AS previous_usda_release_month,
  @execution_ts::TIMESTAMP AS transformed_at
FROM foundation.psd_release AS cur
LEFT JOIN foundation.psd_release AS prev
  ON prev.release_id = @previous_release
WHERE cur.release_id = @current_release
