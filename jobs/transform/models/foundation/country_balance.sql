MODEL (
  name foundation.country_balance,
  kind FULL,
  description 'Supply and distribution of green coffee per release, country and market year (1000 60 kg bags), for the releases compared.',
  grain (release_id, country_code, market_year),
  audits (
    unique_combination_of_columns(columns := (release_id, country_code, market_year)),
    not_null(columns := (release_id, country_code, country_name, market_year, production, domestic_consumption, exports, ending_stocks)),
  )
);

SELECT
  release_id,
  country_code,
  ANY_VALUE(country_name) AS country_name,
  market_year,
  COALESCE(SUM(value) FILTER (WHERE attribute_id = 28), 0)::DOUBLE AS production,
  COALESCE(SUM(value) FILTER (WHERE attribute_id = 29), 0)::DOUBLE AS arabica_production,
  COALESCE(SUM(value) FILTER (WHERE attribute_id = 53), 0)::DOUBLE AS robusta_production,
  COALESCE(SUM(value) FILTER (WHERE attribute_id = 56), 0)::DOUBLE AS other_production,
  COALESCE(SUM(value) FILTER (WHERE attribute_id = 20), 0)::DOUBLE AS beginning_stocks,
  COALESCE(SUM(value) FILTER (WHERE attribute_id = 57), 0)::DOUBLE AS imports,
  COALESCE(SUM(value) FILTER (WHERE attribute_id = 86), 0)::DOUBLE AS total_supply,
  COALESCE(SUM(value) FILTER (WHERE attribute_id = 88), 0)::DOUBLE AS exports,
  COALESCE(SUM(value) FILTER (WHERE attribute_id = 125), 0)::DOUBLE AS domestic_consumption,
  COALESCE(SUM(value) FILTER (WHERE attribute_id = 176), 0)::DOUBLE AS ending_stocks
FROM foundation.psd_fact
GROUP BY release_id, country_code, market_year
