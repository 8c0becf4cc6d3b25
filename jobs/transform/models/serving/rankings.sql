MODEL (
  name serving.rankings,
  kind FULL,
  description 'Countries ranked per market year and measure in the published release, with share of world and change against the year before.',
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
  SELECT market_year, measure, country_code, country_name, value
  FROM foundation.country_measure
  WHERE release_id = @current_release
    AND measure IN ('production', 'exports', 'imports', 'domestic_consumption', 'ending_stocks')
), with_context AS (
  SELECT
    cur.*,
    SUM(cur.value) OVER (PARTITION BY cur.market_year, cur.measure) AS world_value,
    -- Only against a figure PSD has for the year before: where the country has no row (it enters
    -- the data that year, as the EU in 2002 and the UK in 2016), there is no change, not one from 0.
    prev.value AS previous_value
  FROM measures AS cur
  LEFT JOIN measures AS prev
    ON prev.country_code = cur.country_code
    AND prev.measure = cur.measure
    AND prev.market_year = cur.market_year - 1
)
SELECT
  market_year,
  measure,
  -- Tied countries share a rank (and the next rank is skipped): a top N is every rank <= N.
  RANK() OVER (PARTITION BY market_year, measure ORDER BY value DESC)::INT AS rank,
  country_code,
  country_name,
  value,
  ROUND(100 * value / NULLIF(world_value, 0), 2) AS share_of_world_pct,
  value - previous_value AS change_vs_previous_year,
  ROUND(100 * (value - previous_value) / NULLIF(previous_value, 0), 2) AS change_vs_previous_year_pct
FROM with_context
WHERE value > 0
