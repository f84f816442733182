"""Two warehouses of the same benchmark org compared row for row, with what differs between any two
runs set aside: the double's port in every text value (its URLs), the wall-clock columns, and the
columns derived from port-bound bytes (the double's ETags, a payload's SHA-256) and the paths of the
two runs' folders (``runs.detail`` names the archive written).

    python compare_portless.py A.duckdb B.duckdb
"""

from __future__ import annotations

import sys

import duckdb

LEFT_OUT = {"raw_payloads": {"fetched_at", "etag"}, "settings_history": {"observed_at", "sha256"},
            "reconciliation": {"searched_at"}, "runs": {"started_at", "finished_at", "detail"},
            "evidence_archives": {"generated_at", "sha256", "manifest_sha256", "previous_manifest_sha256", "path"}}
con = duckdb.connect()
con.execute(f"ATTACH '{sys.argv[1]}' AS a (READ_ONLY)")
con.execute(f"ATTACH '{sys.argv[2]}' AS b (READ_ONLY)")
tables = [r[0] for r in con.execute("SELECT table_name FROM information_schema.tables WHERE table_catalog = 'a' "
                                    "AND table_schema = 'main' ORDER BY 1").fetchall()]
for t in tables:
    cols = [r[0] for r in con.execute("SELECT column_name FROM information_schema.columns WHERE table_catalog = 'a' "
                                      "AND table_name = ? ORDER BY ordinal_position", [t]).fetchall()]
    kept = [c for c in cols if c not in LEFT_OUT.get(t, set())]
    sel = ", ".join(f"regexp_replace(CAST(\"{c}\" AS VARCHAR), '127\\.0\\.0\\.1:[0-9]+', 'HOST', 'g') AS \"{c}\""
                    for c in kept)
    by = '"kind"' if "kind" in kept else "NULL"

    only = [con.execute(f'SELECT {by}, count(*) FROM (SELECT {sel} FROM {x}.main."{t}" EXCEPT ALL '
                        f'SELECT {sel} FROM {y}.main."{t}") GROUP BY 1 ORDER BY 1').fetchall()
            for x, y in (("a", "b"), ("b", "a"))]
    n = con.execute(f'SELECT count(*) FROM a.main."{t}"').fetchone()[0]
    print(f"{t}: {n} rows; only in A {only[0]}; only in B {only[1]}; left out {sorted(LEFT_OUT.get(t, ()))}")
