MODEL (
  name serving.world_balance,
  kind FULL,
  description 'The world balance of green coffee per market year in the published release: the sum over every country (1000 60 kg bags).',
  grain (market_year),
  audits (
    unique_values(columns := (market_year)),
    not_null(columns := (market_year, production, domestic_consumption, exports, ending_stocks)),
    accepted_range(column := production, min_v := 0),
    accepted_range(column := stocks_to_use_pct, min_v := 0),
    accepted_range(column := stocks_to_consumption_pct, min_v := 0),
  )
);

WITH totals AS (
  SELECT
    market_year,
    SUM(production) AS production,
    SUM(arabica_production) AS arabica_production,
    SUM(robusta_production) AS robusta_production,
    SUM(other_production) AS other_production,
    SUM(beginning_stocks) AS beginning_stocks,
    SUM(imports) AS imports,
    SUM(total_supply) AS total_supply,
    SUM(exports) AS exports,
    SUM(domestic_consumption) AS domestic_consumption,
    SUM(ending_stocks) AS ending_stocks,
    COUNT(*)::INT AS country_count
  FROM serving.country_balance
  GROUP BY market_year
)
SELECT
  *,
  @stocks_to_use_pct(ending_stocks, domestic_consumption, exports) AS stocks_to_use_pct,
  @stocks_to_consumption_pct(ending_stocks, domestic_consumption) AS stocks_to_consumption_pct
FROM totals
