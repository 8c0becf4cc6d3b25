MODEL (
  name serving.country_balance,
  kind FULL,
  description 'Supply and distribution of green coffee per country and market year in the published release (1000 60 kg bags).',
  grain (country_code, market_year),
  audits (
    unique_combination_of_columns(columns := (country_code, market_year)),
    not_null(columns := (country_code, country_name, market_year, production, domestic_consumption, exports, ending_stocks)),
    accepted_range(column := stocks_to_use_pct, min_v := 0),
    accepted_range(column := stocks_to_consumption_pct, min_v := 0),
  )
);

SELECT
  * EXCLUDE (release_id),
  @stocks_to_use_pct(ending_stocks, domestic_consumption, exports) AS stocks_to_use_pct,
  @stocks_to_consumption_pct(ending_stocks, domestic_consumption) AS stocks_to_consumption_pct
FROM foundation.country_balance
WHERE release_id = @current_release
