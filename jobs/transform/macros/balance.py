from sqlmesh import macro


@macro()
def stocks_to_use_pct(evaluator, ending_stocks, domestic_consumption, exports):
    """Ending stocks as a percentage of total use (domestic consumption + exports), as USDA
    reports it for a country; NULL where there is no use to divide by. Summed over the world,
    exports are other countries' imports, so this counts that coffee twice: see
    stocks_to_consumption_pct."""
    return (
        f"ROUND(100 * ({ending_stocks.sql('duckdb')}) / "
        f"NULLIF(({domestic_consumption.sql('duckdb')}) + ({exports.sql('duckdb')}), 0), 2)"
    )


@macro()
def stocks_to_consumption_pct(evaluator, ending_stocks, domestic_consumption):
    """Ending stocks as a percentage of domestic consumption: the world figure that counts each
    bag once; NULL where nothing is consumed."""
    return f"ROUND(100 * ({ending_stocks.sql('duckdb')}) / NULLIF({domestic_consumption.sql('duckdb')}, 0), 2)"
