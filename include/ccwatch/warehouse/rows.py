"""Rows to and from warehouse tables as JSON documents (``from_json`` + ``unnest``).

The column types come from the live schema (read once per load through :class:`SchemaCache`), and
a few thousand rows load in milliseconds where ``executemany`` needs about half a millisecond per
row.  Documents are bounded (``CHUNK_CHARS``): DuckDB parses a document whole, several times its
size in memory.
"""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Any

import duckdb

CHUNK_CHARS = 8_000_000  # JSON characters per INSERT statement


def json_default(value: Any) -> Any:
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


class SchemaCache:
    """Columns and primary keys of the tables, read once per load (information_schema costs
    ~20 ms a query: thousands of chunk statements would spend minutes on it)."""

    def __init__(self) -> None:
        self.columns: dict[str, list[tuple[str, str]]] = {}
        self.keys: dict[str, list[str]] = {}


def columns(con: duckdb.DuckDBPyConnection, table: str, cache: SchemaCache | None = None) -> list[tuple[str, str]]:
    if cache is not None:
        if table not in cache.columns:
            cache.columns[table] = columns(con, table)
        return cache.columns[table]
    rows = con.execute(
        "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = ? "
        "ORDER BY ordinal_position",
        [table],
    ).fetchall()
    if not rows:
        raise LookupError(f"warehouse table {table!r} does not exist (run warehouse.schema.migrate first)")
    return rows


def primary_key(con: duckdb.DuckDBPyConnection, table: str, cache: SchemaCache | None = None) -> list[str]:
    if cache is not None:
        if table not in cache.keys:
            cache.keys[table] = primary_key(con, table)
        return cache.keys[table]
    row = con.execute(
        "SELECT constraint_column_names FROM duckdb_constraints() "
        "WHERE table_name = ? AND constraint_type = 'PRIMARY KEY'",
        [table],
    ).fetchone()
    return list(row[0]) if row else []


def json_rows_sql(con: duckdb.DuckDBPyConnection, table: str, cols: list[str],
                   cache: SchemaCache | None = None) -> str:
    """SELECT yielding the given columns of ``table`` from a JSON array bound as parameter 1."""
    types = dict(columns(con, table, cache))
    spec = json.dumps([{c: types[c] for c in cols}])
    return f"SELECT unnest(from_json(?::JSON, '{spec}'), recursive := true)"


def insert_rows(con: duckdb.DuckDBPyConnection, table: str, rows: list[dict[str, Any]],
                cache: SchemaCache | None = None) -> int:
    """INSERT OR REPLACE rows (last row wins on a duplicate primary key); returns the count."""
    if not rows:
        return 0
    cols = [c for c, _ in columns(con, table, cache)]
    pk = primary_key(con, table, cache)
    if pk:
        rows = list({tuple(str(r.get(k)) for k in pk): r for r in rows}.values())
    verb = "INSERT OR REPLACE" if pk else "INSERT"
    col_list = ", ".join(f'"{c}"' for c in cols)
    sql = f'{verb} INTO "{table}" ({col_list}) {json_rows_sql(con, table, cols, cache)}'
    # bounded JSON documents: DuckDB parses a document whole (several times its size in memory),
    # and one document of a 100k-PR backfill's raw payloads took tens of GB
    chunk: list[str] = []
    size = 0
    for r in rows:
        text = json.dumps({c: r.get(c) for c in cols}, default=json_default)
        chunk.append(text)
        size += len(text)
        if size >= CHUNK_CHARS:
            con.execute(sql, ["[" + ",".join(chunk) + "]"])
            chunk, size = [], 0
    if chunk:
        con.execute(sql, ["[" + ",".join(chunk) + "]"])
    return len(rows)


def delete_scopes(con: duckdb.DuckDBPyConnection, table: str, scopes: list[dict[str, Any]],
                  cache: SchemaCache | None = None) -> None:
    """Delete the rows matching any scope (a column -> value equality filter)."""
    by_cols: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for s in scopes:
        by_cols.setdefault(tuple(sorted(s)), []).append(s)
    for cols, group in by_cols.items():
        cond = " AND ".join(f't."{c}" = s."{c}"' for c in cols)
        payload = json.dumps(group, default=json_default)
        sql = f'DELETE FROM "{table}" t USING ({json_rows_sql(con, table, list(cols), cache)}) s WHERE {cond}'
        con.execute(sql, [payload])
