MODEL (
  name foundation.psd_fact,
  kind FULL,
  description 'One clean fact per release, commodity, country, market year and attribute (1000 60 kg bags), for the release published and the one it replaces.',
  grain (release_id, commodity_code, country_code, market_year, attribute_id),
  audits (
    unique_combination_of_columns(columns := (release_id, commodity_code, country_code, market_year, attribute_id)),
    not_null(columns := (release_id, commodity_code, country_code, country_name, market_year, attribute_id, attribute, value)),
    accepted_range(column := market_year, min_v := 1960, max_v := 2100),
    accepted_range(column := value, min_v := 0),
  )
);

SELECT
  release_id,
  commodity_code,
  TRIM(commodity) AS commodity,
  UPPER(TRIM(country_code)) AS country_code,
  TRIM(country_name) AS country_name,
  market_year,
  attribute_id,
  TRIM(attribute) AS attribute,
  TRIM(unit) AS unit,
  value
FROM staging.psd_coffee
WHERE commodity_code = '0711100'
  AND release_id IN (@current_release, @previous_release)
