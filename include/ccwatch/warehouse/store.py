"""Atomic load of raw records into the warehouse (docs/ARCHITECTURE.md, step 3).

:func:`load_records` runs ONE transaction: upsert ``raw_payloads`` by
(source, kind, natural_key), replace the normalised rows of every object present in the
batch (delete by the object's natural key, then insert: a rerun yields the same rows),
and refresh ``people`` from the config.  Any exception rolls everything back and is
re-raised, so the previous state stays intact and evaluation never sees half a load.

Three raw kinds *accumulate* instead of being replaced: a branch's ``commits`` list, an
environment's ``deployments`` list and (r2) a branch's ``activity`` log.  An incremental fetch
brings only their newest items, so the stored list is merged with the fetched one by item id
(sha / deployment id / activity id; the fetched item wins) before anything is normalised: the first-parent chain (and every ``position``) is
then recomputed over the whole stored history, exactly as if the list had been fetched in
one piece, and older items stay available to reruns of earlier dates.  The merged record keeps
the fetch's url and time; its etag is dropped when stored items were merged in.

A record with ``status_code`` 304 (a conditional request answered "not modified",
ingest/github/conditional.py) carries no payload: the stored payload and the normalised
rows of that object stay as they are (only the raw row's ``fetched_at`` moves to the
revalidation time).  A 304 for an object with no stored 200 payload cannot be served: the load
raises :class:`NotModifiedWithoutCopy` naming the records (nothing is committed; the pipeline
then drops the ingest state so the next fetch is full).

Rows travel to DuckDB as one JSON document per table (``from_json`` + ``unnest``): the
column types come from the live schema, and a few thousand rows load in milliseconds
where ``executemany`` needs about half a millisecond per row.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import replace
from datetime import date, datetime
from typing import Any

import duckdb

from ccwatch.common.times import parse_ts
from ccwatch.ingest.records import RawRecord
from ccwatch.settings import Settings
from ccwatch.warehouse.normalize.base import Context
from ccwatch.warehouse.normalize.batch import normalize_batch, people_rows
from ccwatch.warehouse.normalize.jira import status_categories

CHUNK_CHARS = 8_000_000  # JSON characters per INSERT statement
RAW_COLUMNS = ("source", "kind", "natural_key", "url", "fetched_at", "etag", "status_code", "payload")


def _json_default(value: Any) -> Any:
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def _columns(con: duckdb.DuckDBPyConnection, table: str) -> list[tuple[str, str]]:
    rows = con.execute(
        "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = ? "
        "ORDER BY ordinal_position",
        [table],
    ).fetchall()
    if not rows:
        raise LookupError(f"warehouse table {table!r} does not exist (run warehouse.schema.migrate first)")
    return rows


def _primary_key(con: duckdb.DuckDBPyConnection, table: str) -> list[str]:
    row = con.execute(
        "SELECT constraint_column_names FROM duckdb_constraints() "
        "WHERE table_name = ? AND constraint_type = 'PRIMARY KEY'",
        [table],
    ).fetchone()
    return list(row[0]) if row else []


def _json_rows_sql(con: duckdb.DuckDBPyConnection, table: str, cols: list[str]) -> str:
    """SELECT yielding the given columns of ``table`` from a JSON array bound as parameter 1."""
    types = dict(_columns(con, table))
    spec = json.dumps([{c: types[c] for c in cols}])
    return f"SELECT unnest(from_json(?::JSON, '{spec}'), recursive := true)"


def insert_rows(con: duckdb.DuckDBPyConnection, table: str, rows: list[dict[str, Any]]) -> int:
    """INSERT OR REPLACE rows (last row wins on a duplicate primary key); returns the count."""
    if not rows:
        return 0
    cols = [c for c, _ in _columns(con, table)]
    pk = _primary_key(con, table)
    if pk:
        rows = list({tuple(str(r.get(k)) for k in pk): r for r in rows}.values())
    verb = "INSERT OR REPLACE" if pk else "INSERT"
    col_list = ", ".join(f'"{c}"' for c in cols)
    sql = f'{verb} INTO "{table}" ({col_list}) {_json_rows_sql(con, table, cols)}'
    # bounded JSON documents: DuckDB parses a document whole (several times its size in memory),
    # and one document of a 100k-PR backfill's raw payloads took tens of GB
    chunk: list[str] = []
    size = 0
    for r in rows:
        text = json.dumps({c: r.get(c) for c in cols}, default=_json_default)
        chunk.append(text)
        size += len(text)
        if size >= CHUNK_CHARS:
            con.execute(sql, ["[" + ",".join(chunk) + "]"])
            chunk, size = [], 0
    if chunk:
        con.execute(sql, ["[" + ",".join(chunk) + "]"])
    return len(rows)


def delete_scopes(con: duckdb.DuckDBPyConnection, table: str, scopes: list[dict[str, Any]]) -> None:
    """Delete the rows matching any scope (a column -> value equality filter)."""
    by_cols: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for s in scopes:
        by_cols.setdefault(tuple(sorted(s)), []).append(s)
    for cols, group in by_cols.items():
        cond = " AND ".join(f't."{c}" = s."{c}"' for c in cols)
        payload = json.dumps(group, default=_json_default)
        sql = f'DELETE FROM "{table}" t USING ({_json_rows_sql(con, table, list(cols))}) s WHERE {cond}'
        con.execute(sql, [payload])


def _coerce(rec: RawRecord | dict[str, Any]) -> RawRecord:
    if isinstance(rec, RawRecord):
        return rec
    if isinstance(rec, dict):
        return RawRecord(**rec)
    raise TypeError(f"not a raw record: {type(rec).__name__}")


def _upsert_raw(con: duckdb.DuckDBPyConnection, records: list[RawRecord]) -> int:
    rows = []
    for r in records:
        # a shallow row: dataclasses.asdict deep-copies every payload (most of a large load's time)
        row = {f: getattr(r, f) for f in RAW_COLUMNS}
        row["fetched_at"] = parse_ts(r.fetched_at)
        if row["fetched_at"] is None:
            raise ValueError(f"{r.source} {r.kind} {r.natural_key}: fetched_at is missing")
        rows.append(row)
    return insert_rows(con, "raw_payloads", rows)


# (source, kind) -> (item id field, sort key of the API's newest-first order)
ACCUMULATING: dict[tuple[str, str], tuple[str, Callable[[dict[str, Any]], Any]]] = {
    ("github", "commits"): ("sha", lambda c: str(((c.get("commit") or {}).get("committer") or {}).get("date") or "")),
    ("github", "deployments"): ("id", lambda d: (str(d.get("created_at") or ""), int(d.get("id") or 0))),
    ("github", "activity"): ("id", lambda e: (str(e.get("timestamp") or ""), int(e.get("id") or 0))),
}


def _accumulate(con: duckdb.DuckDBPyConnection, rec: RawRecord) -> RawRecord:
    """``rec`` with the stored list of the same object merged in (see the module docstring)."""
    spec = ACCUMULATING.get((rec.source, rec.kind))
    if spec is None or rec.status_code != 200 or not isinstance(rec.payload, list):
        return rec
    row = con.execute(
        "SELECT payload FROM raw_payloads WHERE source = ? AND kind = ? AND natural_key = ? AND status_code = 200",
        [rec.source, rec.kind, rec.natural_key],
    ).fetchone()
    stored = json.loads(row[0]) if row and row[0] is not None else None
    if not isinstance(stored, list):
        return rec
    id_field, order = spec
    fetched = {item.get(id_field) for item in rec.payload if isinstance(item, dict)}
    extra = [item for item in stored if isinstance(item, dict) and item.get(id_field) not in fetched]
    if not extra:
        return rec
    merged = sorted([*rec.payload, *extra], key=order, reverse=True)  # stable: fetched first on ties
    return replace(rec, payload=merged, etag=None)


class NotModifiedWithoutCopy(ValueError):
    """A 304 record whose object has no stored 200 payload in this warehouse."""


def _not_modified(con: duckdb.DuckDBPyConnection, records: list[RawRecord]) -> None:
    """Check every 304 record has a stored 200 copy; move its ``fetched_at`` to the revalidation."""
    if not records:
        return
    keys = json.dumps([{"source": r.source, "kind": r.kind, "natural_key": r.natural_key,
                        "fetched_at": str(parse_ts(r.fetched_at) or "")} for r in records])
    spec = json.dumps([{"source": "VARCHAR", "kind": "VARCHAR", "natural_key": "VARCHAR", "fetched_at": "VARCHAR"}])
    rows = f"SELECT unnest(from_json(?::JSON, '{spec}'), recursive := true)"
    stored = {tuple(row) for row in con.execute(
        f"SELECT k.source, k.kind, k.natural_key FROM ({rows}) k JOIN raw_payloads p USING (source, kind, natural_key) "
        "WHERE p.status_code = 200 AND p.payload IS NOT NULL", [keys]).fetchall()}
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


class _DbContext:
    """Lookups into raw_payloads, which already hold this batch (read inside the load transaction)."""

    # kinds looked up once per commit of a branch: fetched for the whole repository in one query
    # (a query per commit costs ~1 ms, minutes for a busy repository's history)
    PER_REPO = {("github", "commit_pulls"): "@", ("github", "gql_commit_pulls"): "@"}

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self.con = con
        self._repo_cache: dict[tuple[str, str, str], dict[str, Any]] = {}

    def lookup(self, source: str, kind: str, key: str) -> Any:
        sep = self.PER_REPO.get((source, kind))
        if sep is not None and sep in key:
            prefix = key.split(sep, 1)[0] + sep
            cache = self._repo_cache.get((source, kind, prefix))
            if cache is None:
                rows = self.con.execute(
                    "SELECT natural_key, payload FROM raw_payloads WHERE source = ? AND kind = ? "
                    "AND starts_with(natural_key, ?) AND status_code = 200", [source, kind, prefix]).fetchall()
                cache = self._repo_cache[(source, kind, prefix)] = dict(rows)
            text = cache.get(key)
            return json.loads(text) if text is not None else None
        row = self.con.execute(
            "SELECT payload FROM raw_payloads WHERE source = ? AND kind = ? AND natural_key = ? "
            "AND status_code = 200",
            [source, kind, key],
        ).fetchone()
        return json.loads(row[0]) if row and row[0] is not None else None

    def status_categories(self) -> dict[str, str]:
        rows = self.con.execute(
            "SELECT json_extract(payload, '$.fields.status') FROM raw_payloads "
            "WHERE source = 'jira' AND kind = 'issue' AND status_code = 200"
        ).fetchall()
        return status_categories({"fields": {"status": json.loads(s)}} for (s,) in rows if s)


def load_records(
    con: duckdb.DuckDBPyConnection, records: Iterable[RawRecord | dict[str, Any]], settings: Settings,
    before_commit: Callable[[duckdb.DuckDBPyConnection], None] | None = None,
) -> dict[str, int]:
    """Load one batch atomically; returns the number of rows written per table.

    ``before_commit(con)`` runs last inside the transaction (it sees the batch's rows; e.g. the
    run bookkeeping and the next ingest state); if it raises, nothing is committed."""
    latest: dict[tuple[str, str, str], RawRecord] = {}
    for rec in map(_coerce, records):
        latest[(rec.source, rec.kind, rec.natural_key)] = rec
    counts: dict[str, int] = {}
    con.execute("BEGIN TRANSACTION")
    try:
        unchanged = [rec for rec in latest.values() if rec.status_code == 304]
        _not_modified(con, unchanged)  # kept as stored: no upsert, no normalisation
        batch_records = [_accumulate(con, rec) for rec in latest.values() if rec.status_code != 304]
        counts["raw_payloads"] = _upsert_raw(con, batch_records)
        db = _DbContext(con)
        batch = normalize_batch(batch_records, settings, Context(db.lookup, db.status_categories()))
        for table, scopes in batch.scopes.items():
            delete_scopes(con, table, scopes)
        for table, rows in batch.rows.items():
            counts[table] = insert_rows(con, table, rows)
        for (repo, sha), pulls in batch.commit_pr_updates.items():
            # (r2) per stored branch of the commit, only the PRs merged into that branch cover it
            for (branch,) in con.execute("SELECT DISTINCT branch FROM commits WHERE repo = ? AND sha = ?",
                                         [repo, sha]).fetchall():
                numbers = sorted({n for n, base in pulls if base == branch})
                con.execute("UPDATE commits SET pr_numbers = ? WHERE repo = ? AND branch = ? AND sha = ?",
                            [numbers, repo, branch, sha])
        con.execute("DELETE FROM people")
        counts["people"] = insert_rows(con, "people", people_rows(settings))
        if before_commit is not None:
            before_commit(con)
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return counts
