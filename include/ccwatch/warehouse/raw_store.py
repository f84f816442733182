"""The raw payloads' storage inside a load (warehouse/store.py runs the load): each record's payload
upserted into ``raw_payloads`` as fetched, in bounded documents (:class:`RawUpserts`), the three
accumulating lists (merged with their stored items first) as items (warehouse/raw_lists.py); the 304s checked
against the stored copies (:func:`check_not_modified`); and the two ways a load is refused here,
each naming the record at fault: a 304 without a stored copy (:class:`NotModifiedWithoutCopy`) and a
payload DuckDB's memory bound for the load cannot hold (:class:`LoadMemoryError`).
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import duckdb

from ccwatch.common.times import parse_ts
from ccwatch.ingest.records import RawRecord
from ccwatch.warehouse.connection import LOAD_MEMORY_LIMIT_ENV
from ccwatch.warehouse.raw_lists import Accumulated, ListItems, accumulates
from ccwatch.warehouse.rows import CHUNK_CHARS, SchemaCache, columns, json_default, json_rows_sql

RAW_COLUMNS = ("source", "kind", "natural_key", "url", "fetched_at", "etag", "status_code", "payload")


def coerce_record(rec: RawRecord | dict[str, Any]) -> RawRecord:
    if isinstance(rec, RawRecord):
        return rec
    if isinstance(rec, dict):
        return RawRecord(**rec)
    raise TypeError(f"not a raw record: {type(rec).__name__}")


class RawUpserts:
    """The raw payloads of the load upserted as they are read, each record's payload held as JSON
    text only (never the parsed records of a chunk), in bounded documents; a payload of
    ``DIRECT_CHARS`` or more goes alone, DuckDB parsing the payload once (``json(?)``) instead of
    a document around it twice (cast to JSON, then ``from_json``): the largest single record (the
    busiest repository's commit list) cost the load ~10 times its size.  The rows stored are those
    the former one-batch upsert stored (its reference: tests/helpers/one_batch.py; the comparison:
    tests/unit/warehouse/test_store.py)."""

    DIRECT_CHARS = 1_000_000

    def __init__(self, con: duckdb.DuckDBPyConnection, cache: SchemaCache, flush_records: int) -> None:
        self.con, self.flush_records = con, flush_records
        self.cols = [c for c, _ in columns(con, "raw_payloads", cache)]
        self.others = [c for c in self.cols if c != "payload"]
        col_list = ", ".join(f'"{c}"' for c in self.cols)
        self.doc_sql = f'INSERT OR REPLACE INTO raw_payloads ({col_list}) {json_rows_sql(con, "raw_payloads", self.cols, cache)}'
        picked = ", ".join("json(?)" if c == "payload" else f's."{c}"' for c in self.cols)
        self.direct_sql = (f'INSERT OR REPLACE INTO raw_payloads ({col_list}) SELECT {picked} FROM '
                           f'({json_rows_sql(con, "raw_payloads", self.others, cache)}) s')
        self.items = ListItems(con, cache)
        self.parts: list[str] = []
        self.size = self.count = 0
        (self.bound,) = con.execute("SELECT current_setting('memory_limit')").fetchone()

    def add(self, acc: Accumulated) -> None:
        """Upsert the record (an accumulating list: its items, but those stored already in place)."""
        rec = acc.rec
        if accumulates(rec.source, rec.kind):
            self.items.replace(acc)  # the list's items (none when it is not held as items)
            if acc.held():
                rec = replace(rec, payload=None)
        row = {f: getattr(rec, f) for f in RAW_COLUMNS if f != "payload"}
        row["fetched_at"] = parse_ts(rec.fetched_at)
        if row["fetched_at"] is None:
            raise ValueError(f"{rec.source} {rec.kind} {rec.natural_key}: fetched_at is missing")
        payload = json.dumps(rec.payload, default=json_default)
        others = json.dumps({c: row.get(c) for c in self.others}, default=json_default)
        self.count += 1
        if len(payload) >= self.DIRECT_CHARS and rec.payload is not None:  # null: SQL NULL, as in a document
            self.flush()
            try:
                self.con.execute(self.direct_sql, [payload, "[" + others + "]"])  # json(?) precedes FROM
            except duckdb.OutOfMemoryException as exc:
                raise LoadMemoryError(
                    f"{rec.source} {rec.kind} {rec.natural_key}: its payload, {len(payload) / 1e6:.0f} MB of JSON, "
                    f"does not fit DuckDB's memory bound for the load ({self.bound})", exc) from exc
            return
        text = others[:-1] + (', "payload": ' if len(others) > 2 else '"payload": ') + payload + "}"
        self.parts.append(text)
        self.size += len(text)
        if self.size >= CHUNK_CHARS or len(self.parts) >= self.flush_records:
            self.flush()

    def flush(self) -> None:
        if self.parts:
            self.con.execute(self.doc_sql, ["[" + ",".join(self.parts) + "]"])
            self.parts, self.size = [], 0


class LoadMemoryError(RuntimeError):
    """A record the load cannot store within DuckDB's memory bound for the load, named with what to
    do (DuckDB's own error names neither the record nor the setting).  The load is rolled back."""

    def __init__(self, what: str, cause: BaseException) -> None:
        super().__init__(
            f"{what}: raise {LOAD_MEMORY_LIMIT_ENV} (docs/DEPLOYMENT.md) and run the load again; nothing of "
            f"this load was stored, the warehouse keeps its previous state. An accumulating list grows with "
            f"the deployment's age (docs/PERFORMANCE.md). DuckDB: {str(cause).splitlines()[0]}")


class NotModifiedWithoutCopy(ValueError):
    """A 304 record whose object has no stored 200 payload in this warehouse."""


def check_not_modified(con: duckdb.DuckDBPyConnection, records: list[RawRecord]) -> None:
    """Check every 304 record has a stored 200 copy; move its ``fetched_at`` to the revalidation."""
    if not records:
        return
    keys = json.dumps([{"source": r.source, "kind": r.kind, "natural_key": r.natural_key,
                        "fetched_at": str(parse_ts(r.fetched_at) or "")} for r in records])
    spec = json.dumps([{"source": "VARCHAR", "kind": "VARCHAR", "natural_key": "VARCHAR", "fetched_at": "VARCHAR"}])
    rows = f"SELECT unnest(from_json(?::JSON, '{spec}'), recursive := true)"
    stored = {tuple(row) for row in con.execute(
        f"SELECT k.source, k.kind, k.natural_key FROM ({rows}) k JOIN raw_payloads p USING (source, kind, natural_key) "
        "WHERE p.status_code = 200 AND (p.payload IS NOT NULL OR EXISTS (SELECT 1 FROM raw_list_items i WHERE "
        "i.source = p.source AND i.kind = p.kind AND i.natural_key = p.natural_key))", [keys]).fetchall()}
    missing = [r for r in records if (r.source, r.kind, r.natural_key) not in stored]
    if missing:
        named = ", ".join(f"{r.source} {r.kind} {r.natural_key} ({r.url})" for r in missing[:10])
        more = f" and {len(missing) - 10} more" if len(missing) > 10 else ""
        raise NotModifiedWithoutCopy(
            f"{len(missing)} record(s) answered 304 Not Modified but this warehouse holds no stored copy of "
            f"them: {named}{more}. The ETags came from a load this warehouse does not have; the date must be "
            "fetched again in full")
    con.execute(
        f"UPDATE raw_payloads p SET fetched_at = CAST(k.fetched_at AS TIMESTAMP) FROM ({rows}) k "
        "WHERE p.source = k.source AND p.kind = k.kind AND p.natural_key = k.natural_key "
        "AND k.fetched_at <> '' AND CAST(k.fetched_at AS TIMESTAMP) > p.fetched_at", [keys])
