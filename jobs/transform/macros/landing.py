import datetime
import glob
import os

from sqlglot import exp
from sqlmesh import macro

# PSD Online's header (jobs/extract/psd_format.ts checks every landed file against it).
PSD_COLUMNS = (
    "Commodity_Code", "Commodity_Description", "Country_Code", "Country_Name", "Market_Year",
    "Calendar_Year", "Month", "Attribute_ID", "Attribute_Description", "Unit_ID", "Unit_Description", "Value",
)
# LANDING_DIR/psd/{year}/{month}/{etag}.csv.gzip (jobs/landing.ts). glob() skips dot-files, which
# is what extract's half-landed files are.
LANDED_GLOB = os.path.join("psd", "[0-9][0-9][0-9][0-9]", "[0-9][0-9]", "*.csv.gzip")


def landed_between(landing_dir, start, end):
    """(path, landed_at) of every release file whose landing time (its mtime, UTC) is in [start, end]."""
    landed = []
    for path in sorted(glob.glob(os.path.join(landing_dir, LANDED_GLOB))):
        mtime = datetime.datetime.fromtimestamp(os.stat(path).st_mtime, datetime.timezone.utc).replace(tzinfo=None)
        if start <= mtime <= end:
            landed.append((path, mtime))
    return landed


@macro()
def landed_psd_releases(evaluator, start, end):
    """The rows of the releases landed in [start, end], as a subquery: PSD's columns as text, plus
    `filename` and `landed_at`. The directory is listed here, not globbed in SQL, so that an
    interval reads only its own files: read_csv over the whole landing dir would read every
    release ever landed on every run."""
    landing_dir = evaluator.var("landing_dir") or ""
    files = landed_between(landing_dir, datetime.datetime.fromisoformat(start.name),
                           datetime.datetime.fromisoformat(end.name))
    if not files:
        # Nothing landed in this interval: no rows, with the same columns.
        columns = ", ".join(f"NULL::TEXT AS {column}" for column in (*PSD_COLUMNS, "filename"))
        return exp.maybe_parse(f"(SELECT {columns}, NULL::TIMESTAMP AS landed_at WHERE FALSE)", dialect="duckdb")
    paths = ", ".join(exp.Literal.string(path).sql("duckdb") for path, _ in files)
    landed_at = ", ".join(
        f"({exp.Literal.string(path).sql('duckdb')}, TIMESTAMP '{mtime.isoformat(sep=' ')}')" for path, mtime in files)
    return exp.maybe_parse(
        f"""(SELECT csv.*, landed.landed_at
        FROM READ_CSV([{paths}], header = TRUE, compression = 'gzip', filename = TRUE, all_varchar = TRUE) AS csv
        JOIN (VALUES {landed_at}) AS landed(filename, landed_at) USING (filename))""",
        dialect="duckdb",
    )
