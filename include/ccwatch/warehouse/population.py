"""The stored population of every evaluated run (table ``population``, migration 3).

``store_population(con, as_of)`` copies the population columns of ``change_facts`` (built for
``as_of`` by ``warehouse.facts.build_facts``) into ``population`` with that as-of time,
replacing the rows of the as-of date exactly as ``control_results`` is replaced. The
nightly run calls it inside the transaction that writes the date's ``control_results``
(``pipeline.evaluate_controls`` -> ``validation.evaluate(before_commit=...)``), so a date
has either both or neither.  Repository rows are not changes and are not stored here.
"""

from __future__ import annotations

from datetime import datetime

import duckdb

from ccwatch.common.times import naive_utc
from ccwatch.warehouse.facts import POPULATION_COLUMNS


def store_population(con: duckdb.DuckDBPyConnection, as_of: datetime) -> int:
    """Replace the as-of date's population rows with ``change_facts``; returns the row count.

    Runs inside the caller's transaction (it opens none)."""
    t = naive_utc(as_of)
    cols = ", ".join(f'"{c}"' for c in POPULATION_COLUMNS)
    con.execute("DELETE FROM population WHERE CAST(as_of AS DATE) = CAST(? AS DATE)", [t])
    con.execute(f"INSERT INTO population (as_of, {cols}) SELECT ?::TIMESTAMP, {cols} FROM change_facts", [t])
    return con.execute("SELECT count(*) FROM population WHERE as_of = ?", [t]).fetchone()[0]


def has_population_table(con: duckdb.DuckDBPyConnection) -> bool:
    return bool(con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_name = 'population'").fetchone()[0])
