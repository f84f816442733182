"""Every table of two warehouses compared row for row (EXCEPT ALL both ways).

    python compare_warehouses.py A.duckdb B.duckdb
"""

from __future__ import annotations

import sys

import duckdb

WALL_CLOCK = {"runs": ("started_at", "finished_at")}  # when the load ran, not what it loaded

con = duckdb.connect()
con.execute(f"ATTACH '{sys.argv[1]}' AS a (READ_ONLY)")
con.execute(f"ATTACH '{sys.argv[2]}' AS b (READ_ONLY)")


def tables(db: str) -> list[str]:
    return [r[0] for r in con.execute("SELECT table_name FROM information_schema.tables WHERE table_catalog = ? "
                                      "AND table_schema = 'main' ORDER BY 1", [db]).fetchall()]


def columns(db: str, table: str) -> list[str]:
    return [r[0] for r in con.execute("SELECT column_name FROM information_schema.columns WHERE table_catalog = ? "
                                      "AND table_name = ? ORDER BY ordinal_position", [db, table]).fetchall()]


assert tables("a") == tables("b")
differing = rows = 0
for t in tables("a"):
    assert columns("a", t) == columns("b", t), t
    cols = ", ".join(f'"{c}"' for c in columns("a", t) if c not in WALL_CLOCK.get(t, ()))
    n = con.execute(f'SELECT count(*) FROM a.main."{t}"').fetchone()[0]
    only_a, only_b = (con.execute(f'SELECT count(*) FROM (SELECT {cols} FROM {x}.main."{t}" EXCEPT ALL '
                                  f'SELECT {cols} FROM {y}.main."{t}")').fetchone()[0] for x, y in (("a", "b"), ("b", "a")))
    rows += n
    differing += bool(only_a or only_b)
    print(f"{t}: {n} rows, only in A {only_a}, only in B {only_b}")
print(f"tables {len(tables('a'))}, rows {rows}, differing tables {differing}")
