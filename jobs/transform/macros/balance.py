from sqlmesh import macro


@macro()
def stocks_to_use_pct(evaluator, ending_stocks, domestic_consumption, exports):
    """Ending stocks as a percentage of total use (domestic consumption + exports), as USDA
    reports it; NULL where there is no use to divide by."""
    return (
        f"ROUND(100 * ({ending_stocks.sql('duckdb')}) / "
        f"NULLIF(({domestic_consumption.sql('duckdb')}) + ({exports.sql('duckdb')}), 0), 2)"
    )
