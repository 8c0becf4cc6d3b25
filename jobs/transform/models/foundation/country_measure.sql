MODEL (
  name foundation.country_measure,
  kind FULL,
  description 'foundation.country_balance one measure per row: what rankings, revisions and series breaks compare.',
  grain (release_id, country_code, market_year, measure),
  audits (
    unique_combination_of_columns(columns := (release_id, country_code, market_year, measure)),
    not_null(columns := (release_id, country_code, country_name, market_year, measure, value)),
  )
);

SELECT
  b.release_id,
  b.country_code,
  b.country_name,
  b.market_year,
  m.measure,
  CASE m.measure
    WHEN 'production' THEN b.production
    WHEN 'arabica_production' THEN b.arabica_production
    WHEN 'robusta_production' THEN b.robusta_production
    WHEN 'other_production' THEN b.other_production
    WHEN 'beginning_stocks' THEN b.beginning_stocks
    WHEN 'imports' THEN b.imports
    WHEN 'total_supply' THEN b.total_supply
    WHEN 'exports' THEN b.exports
    WHEN 'domestic_consumption' THEN b.domestic_consumption
    WHEN 'ending_stocks' THEN b.ending_stocks
  END AS value
FROM foundation.country_balance AS b
CROSS JOIN (
  VALUES ('production'), ('arabica_production'), ('robusta_production'), ('other_production'), ('beginning_stocks'),
    ('imports'), ('total_supply'), ('exports'), ('domestic_consumption'), ('ending_stocks')
) AS m(measure)
