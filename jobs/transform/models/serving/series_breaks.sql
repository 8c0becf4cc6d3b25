MODEL (
  name serving.series_breaks,
  kind FULL,
  description 'Series breaks in the published release: a country entering or leaving PSD''s coffee data with a large share of a measure (at least @series_break_share_pct_min % of the world figure), which makes that market year''s world change (and its rankings) not a change in the market.',
  grain (market_year, measure, country_code),
  audits (
    unique_combination_of_columns(columns := (market_year, measure, country_code)),
    not_null(columns := (market_year, measure, country_code, country_name, event, value, share_of_world_pct)),
    accepted_values(column := event, is_in := ('enters', 'leaves')),
  )
);

WITH measures AS (
  SELECT market_year, measure, country_code, country_name, value
  FROM foundation.country_measure
  WHERE release_id = @current_release
    AND measure IN ('production', 'exports', 'imports', 'domestic_consumption', 'ending_stocks')
), data_years AS (
  SELECT MIN(market_year) AS first_year, MAX(market_year) AS last_year FROM measures
), with_neighbours AS (
  SELECT
    m.*,
    SUM(m.value) OVER (PARTITION BY m.market_year, m.measure) AS world_value,
    LAG(m.market_year) OVER (PARTITION BY m.country_code, m.measure ORDER BY m.market_year) AS year_before,
    LEAD(m.market_year) OVER (PARTITION BY m.country_code, m.measure ORDER BY m.market_year) AS year_after
  FROM measures AS m
), events AS (
  -- A year with a row after a year without one: the country enters the series.
  SELECT market_year, measure, country_code, country_name, 'enters' AS event, value, world_value
  FROM with_neighbours, data_years
  WHERE market_year > data_years.first_year AND year_before IS DISTINCT FROM market_year - 1
  UNION ALL
  -- A last row before the data ends: the country leaves the series the year after, with this share.
  SELECT market_year + 1, measure, country_code, country_name, 'leaves' AS event, value, world_value
  FROM with_neighbours, data_years
  WHERE market_year < data_years.last_year AND year_after IS DISTINCT FROM market_year + 1
)
SELECT
  market_year,
  measure,
  country_code,
  country_name,
  event,
  value,
  ROUND(100 * value / world_value, 2) AS share_of_world_pct
FROM events
WHERE world_value > 0 AND 100 * value / world_value >= @series_break_share_pct_min
