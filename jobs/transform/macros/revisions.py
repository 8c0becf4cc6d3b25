from sqlglot import exp
from sqlmesh import macro

# What a figure of the release published is against the release it replaced: serving.revisions
# (per country) and serving.world_revisions (world totals) compare the same way.


@macro()
def revision_columns(evaluator, previous_value, new_value):
    """change, change_pct and revision ('revised', 'new': the previous release had no such figure,
    'removed': this one has none) of a figure compared across the two releases."""
    previous, new = previous_value.sql("duckdb"), new_value.sql("duckdb")
    return [
        exp.maybe_parse(f"{new} - {previous} AS change", dialect="duckdb"),
        exp.maybe_parse(f"ROUND(100 * ({new} - {previous}) / NULLIF({previous}, 0), 2) AS change_pct", dialect="duckdb"),
        exp.maybe_parse(
            f"CASE WHEN {previous} IS NULL THEN 'new' WHEN {new} IS NULL THEN 'removed' ELSE 'revised' END AS revision",
            dialect="duckdb"),
    ]


@macro()
def is_revision(evaluator, previous_value, new_value):
    """Whether the figure changed: never without a previous release (everything would be "new"),
    and never a zero one side lacks (PSD leaves all-zero country-years out: no news)."""
    previous, new = previous_value.sql("duckdb"), new_value.sql("duckdb")
    has_previous_release = exp.Literal.string(evaluator.var("previous_release") or "").sql("duckdb")
    return exp.maybe_parse(
        f"{has_previous_release} <> '' AND {previous} IS DISTINCT FROM {new} AND COALESCE({previous}, {new}) <> 0",
        dialect="duckdb")
