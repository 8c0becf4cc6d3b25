MODEL (
  name serving.world_revisions,
  kind FULL,
  description 'What the published release changed in the world totals against the one it replaces, per market year and measure (1000 60 kg bags). A world change is the sum of the country changes (a figure one side lacks counting as 0). Empty when there is no previous release.',
  grain (market_year, measure),
  audits (
    unique_combination_of_columns(columns := (market_year, measure)),
    not_null(columns := (market_year, measure, revision)),
    accepted_values(column := revision, is_in := ('revised', 'new', 'removed')),
  )
);

WITH totals AS (
  -- Rounded: a sum of doubles depends on their order, and noise is not a revision.
  SELECT release_id, market_year, measure, ROUND(SUM(value), 4) AS value
  FROM foundation.country_measure
  GROUP BY release_id, market_year, measure
), compared AS (
  SELECT
    market_year,
    measure,
    prev.value AS previous_value,
    cur.value AS new_value
  FROM (SELECT * FROM totals WHERE release_id = @current_release) AS cur
  FULL OUTER JOIN (SELECT * FROM totals WHERE release_id = @previous_release) AS prev
    USING (market_year, measure)
)
SELECT
  market_year,
  measure,
  previous_value,
  new_value,
  @revision_columns(previous_value, new_value)
FROM compared
WHERE @is_revision(previous_value, new_value)
