"""controls/sqlagg.py: sorted_string_agg gives string_agg(... ORDER BY ...) FILTER (...)'s text."""

from __future__ import annotations

import random

import duckdb
from ccwatch.controls.sqlagg import sorted_string_agg


def test_the_same_text_as_an_ordered_string_agg():
    rnd = random.Random(7)
    rows = [(g, rnd.choice([None, 1, 2, 3]), j, rnd.choice([None, "a", "B", "é", "x y", ""]), rnd.choice([True, False, None]))
            for g in range(2000) for j in range(rnd.randint(1, 5))]
    con = duckdb.connect()
    con.execute("CREATE TABLE t (g INT, k1 INT, k2 INT, v VARCHAR, f BOOLEAN)")
    con.executemany("INSERT INTO t VALUES (?, ?, ?, ?, ?)", rows)
    want = con.execute("SELECT g, string_agg(v, ', ' ORDER BY k1, k2) FILTER (WHERE f), "
                       "string_agg(v || '!', '; ' ORDER BY v), string_agg(v, ', ' ORDER BY struct_pack(a := k1, b := k2)) "
                       "FROM t GROUP BY g ORDER BY g").fetchall()
    got = con.execute(f"SELECT g, {sorted_string_agg('v', chr(39) + ', ' + chr(39), ['k1', 'k2'], 'f')}, "
                      f"{sorted_string_agg(chr(39).join(['v || ', '!', '']), chr(39) + '; ' + chr(39), ['v'])}, "
                      f"{sorted_string_agg('v', chr(39) + ', ' + chr(39), ['struct_pack(a := k1, b := k2)'])} "
                      "FROM t GROUP BY g ORDER BY g").fetchall()
    assert got == want
    assert any(r[1] is None for r in want) and any(r[1] == "" for r in want)  # no row / only '' both occur


def test_no_rows_and_only_nulls_give_null():
    con = duckdb.connect()
    con.execute("CREATE TABLE t AS SELECT * FROM (VALUES (1, 1, NULL::VARCHAR, true), (2, 1, 'x', false)) v(g, k, v, f)")
    got = con.execute(f"SELECT g, {sorted_string_agg('v', chr(39) + ',' + chr(39), ['k'], 'f')} FROM t GROUP BY g ORDER BY g")
    assert got.fetchall() == [(1, None), (2, None)]
