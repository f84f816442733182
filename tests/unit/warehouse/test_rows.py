"""warehouse/rows.py: rows to and from warehouse tables as bounded JSON documents."""

from __future__ import annotations

from datetime import UTC, datetime

import duckdb
import pytest
from ccwatch.warehouse import rows


@pytest.fixture
def con():
    c = duckdb.connect(":memory:")
    c.execute("CREATE TABLE t (repo VARCHAR, n INTEGER, title VARCHAR, merged_at TIMESTAMP, PRIMARY KEY (repo, n))")
    c.execute("CREATE TABLE log (repo VARCHAR, line VARCHAR)")
    yield c
    c.close()


def test_insert_rows_replaces_by_primary_key_last_row_wins_and_types_come_from_the_schema(con):
    at = datetime(2026, 11, 25, 9, 30, tzinfo=UTC)
    n = rows.insert_rows(con, "t", [{"repo": "acme/a", "n": 1, "title": "first", "merged_at": at},
                                    {"repo": "acme/a", "n": 1, "title": "second", "merged_at": at},
                                    {"repo": "acme/a", "n": 2, "title": "it's \"quoted\"", "merged_at": None}])
    assert n == 2
    assert con.execute("SELECT n, title, merged_at FROM t ORDER BY n").fetchall() == [
        (1, "second", datetime(2026, 11, 25, 9, 30)), (2, "it's \"quoted\"", None)]
    rows.insert_rows(con, "t", [{"repo": "acme/a", "n": 2, "title": "again"}])
    assert con.execute("SELECT count(*), max(title) FROM t WHERE n = 2").fetchone() == (1, "again")


def test_documents_are_bounded_and_a_table_without_key_appends(con, monkeypatch):
    sent: list[int] = []
    real = con.execute

    class Spy:
        def execute(self, sql, params=None):
            if params:
                sent.append(len(params[0]))
            return real(sql, params) if params is not None else real(sql)

    monkeypatch.setattr(rows, "CHUNK_CHARS", 200)
    rows.insert_rows(Spy(), "log", [{"repo": "acme/a", "line": "x" * 50} for _ in range(10)])
    assert len(sent) > 1 and all(size < 400 for size in sent)
    assert con.execute("SELECT count(*) FROM log").fetchone() == (10,)


def test_delete_scopes_deletes_only_the_matching_rows(con):
    rows.insert_rows(con, "t", [{"repo": r, "n": n, "title": "x"} for r in ("acme/a", "acme/b") for n in (1, 2)])
    rows.delete_scopes(con, "t", [{"repo": "acme/a", "n": 2}, {"repo": "acme/b"}])
    assert con.execute("SELECT repo, n FROM t ORDER BY ALL").fetchall() == [("acme/a", 1)]


def test_an_unknown_table_names_itself(con):
    with pytest.raises(LookupError, match="'nope'"):
        rows.insert_rows(con, "nope", [{"a": 1}])
