"""``change_facts``, ``repo_facts`` and this run's ``change_deployments`` for one as-of time.

The shared facts (``warehouse.facts``) joined with every control family's own columns
(``change_fact_sql`` / ``repo_fact_sql`` of each module in ``families.FAMILIES``, in that order).
Events after ``as_of`` are ignored.

``change_facts`` is a set: no reader may rely on the order its rows are stored in (every one
orders what it reads; ``tests/integration/pipeline/test_physical_order.py`` stores it in other
orders and compares every output).  The narrow base facts are sorted by change_id and the joins
mostly keep that order, so the table is stored nearly sorted (its row groups' change_id ranges
stay narrow for lookups by id) without sorting its ~100 columns (docs/PERFORMANCE.md, stop 27).
"""

from __future__ import annotations

from datetime import datetime

import duckdb

from ccwatch.common.times import naive_utc
from ccwatch.controls.families import FAMILIES
from ccwatch.settings import Settings
from ccwatch.warehouse.facts import BASE_WORK_TABLES, build_base_facts, drop_work_tables


def build_facts(con: duckdb.DuckDBPyConnection, settings: Settings, as_of: datetime) -> dict:
    """(Re)create ``change_facts`` and ``repo_facts`` for ``as_of``; returns row counts."""
    build_base_facts(con, settings, naive_utc(as_of))
    joins, cols, repo_parts = [], [], []
    for i, mod in enumerate(FAMILIES):
        sql = getattr(mod, "change_fact_sql", None)
        if sql:
            con.execute(f"CREATE OR REPLACE TEMP TABLE _f{i} AS {sql(settings)}")
            names = [r[0] for r in con.execute(f"DESCRIBE _f{i}").fetchall() if r[0] != "change_id"]
            cols += [f"_f{i}.{n}" for n in names]
            joins.append(f"LEFT JOIN _f{i} ON _f{i}.change_id = f.change_id")
        rsql = getattr(mod, "repo_fact_sql", None)
        if rsql:
            repo_parts.append(rsql(settings))

    select = ", ".join(["f.*", *cols])
    con.execute("BEGIN TRANSACTION")
    try:
        con.execute(f"CREATE OR REPLACE TABLE change_facts AS SELECT {select} FROM _facts_base f "
                    f"{' '.join(joins)}")
        repo_sql = "SELECT r.repo AS change_id, r.repo, r.production_branch FROM _repos r"
        for k, part in enumerate(repo_parts):
            con.execute(f"CREATE OR REPLACE TEMP TABLE _r{k} AS {part}")
            repo_sql = (f"SELECT x.*, {', '.join(f'_r{k}.' + c for c in _cols(con, f'_r{k}', {'repo'}))} "
                        f"FROM ({repo_sql}) x LEFT JOIN _r{k} ON _r{k}.repo = x.repo")
        con.execute(f"CREATE OR REPLACE TABLE repo_facts AS {repo_sql} ORDER BY change_id")
        t = naive_utc(as_of)  # this run's rows of change_deployments replace the date's (a rerun)
        con.execute("DELETE FROM change_deployments WHERE CAST(as_of AS DATE) = CAST(? AS DATE)", [t])
        con.execute("INSERT INTO change_deployments SELECT ?::TIMESTAMP, change_id, environment, env_kind, "
                    "deployment_id, ord FROM _change_deployments ORDER BY change_id, environment, ord", [t])
        con.execute("COMMIT")
    except Exception:
        con.execute("ROLLBACK")
        raise
    finally:  # the work tables are dead either way (a retry builds them again)
        drop_work_tables(con, [*BASE_WORK_TABLES, *(f"_f{i}" for i in range(len(FAMILIES))),
                               *(f"_r{k}" for k in range(len(repo_parts)))])
    counts = dict(
        con.execute("SELECT change_kind, count(*) FROM change_facts GROUP BY ALL ORDER BY ALL").fetchall()
    )
    return {
        "changes": sum(counts.values()),
        "pr_changes": counts.get("pr", 0),
        "direct_push_changes": counts.get("direct_push", 0),
        "repositories": con.execute("SELECT count(*) FROM repo_facts").fetchone()[0],
    }


def _cols(con: duckdb.DuckDBPyConnection, table: str, skip: set[str]) -> list[str]:
    return [r[0] for r in con.execute(f"DESCRIBE {table}").fetchall() if r[0] not in skip]
