MODEL (
  name serving.revisions,
  kind FULL,
  description 'What the published release changed against the one it replaces, per country, market year and measure (1000 60 kg bags): revised figures, figures new in this release (a country-year the previous release did not have) and figures it no longer has. Empty when there is no previous release.',
  grain (country_code, market_year, measure),
  audits (
    unique_combination_of_columns(columns := (country_code, market_year, measure)),
    not_null(columns := (country_code, country_name, market_year, measure, revision)),
    accepted_values(column := revision, is_in := ('revised', 'new', 'removed')),
  )
);

WITH current_release AS (
  SELECT * FROM foundation.country_measure WHERE release_id = @current_release
), previous_release AS (
  SELECT * FROM foundation.country_measure WHERE release_id = @previous_release
), compared AS (
  SELECT
    country_code,
    COALESCE(cur.country_name, prev.country_name) AS country_name,
    market_year,
    measure,
    prev.value AS previous_value,
    cur.value AS new_value
  FROM current_release AS cur
  FULL OUTER JOIN previous_release AS prev
    USING (country_code, market_year, measure)
)
SELECT
  country_code,
  country_name,
  market_year,
  measure,
  previous_value,
  new_value,
  @revision_columns(previous_value, new_value)
FROM compared
WHERE @is_revision(previous_value, new_value)
