MODEL (
  name serving.rankings,
  kind FULL,
  description 'Countries ranked per market year and measure, with share of world and change against the year before.',
  grain (market_year, measure, country_code),
  audits (
    unique_combination_of_columns(columns := (market_year, measure, country_code)),
    not_null(columns := (market_year, measure, rank, country_code, value, share_of_world_pct)),
    accepted_values(column := measure, is_in := ('production', 'exports', 'imports', 'domestic_consumption', 'ending_stocks')),
    accepted_range(column := share_of_world_pct, min_v := 0, max_v := 100),
    accepted_range(column := rank, min_v := 1),
  )
);

WITH measures AS (
  SELECT
    b.market_year,
    m.measure,
    b.country_code,
    b.country_name,
    CASE m.measure
      WHEN 'production' THEN b.production
      WHEN 'exports' THEN b.exports
      WHEN 'imports' THEN b.imports
      WHEN 'domestic_consumption' THEN b.domestic_consumption
      WHEN 'ending_stocks' THEN b.ending_stocks
    END AS value
  FROM serving.country_balance AS b
  CROSS JOIN (
    VALUES ('production'), ('exports'), ('imports'), ('domestic_consumption'), ('ending_stocks')
  ) AS m(measure)
), with_context AS (
  SELECT
    cur.*,
    SUM(cur.value) OVER (PARTITION BY cur.market_year, cur.measure) AS world_value,
    -- PSD leaves out country-years where every figure is zero: a missing year before is a zero,
    -- except before the first year of the data, where there is nothing to compare with.
    CASE
      WHEN cur.market_year > MIN(cur.market_year) OVER () THEN COALESCE(prev.value, 0)
    END AS previous_value
  FROM measures AS cur
  LEFT JOIN measures AS prev
    ON prev.country_code = cur.country_code
    AND prev.measure = cur.measure
    AND prev.market_year = cur.market_year - 1
)
SELECT
  market_year,
  measure,
  RANK() OVER (PARTITION BY market_year, measure ORDER BY value DESC)::INT AS rank,
  country_code,
  country_name,
  value,
  ROUND(100 * value / NULLIF(world_value, 0), 2) AS share_of_world_pct,
  value - previous_value AS change_vs_previous_year,
  ROUND(100 * (value - previous_value) / NULLIF(previous_value, 0), 2) AS change_vs_previous_year_pct
FROM with_context
WHERE value > 0
