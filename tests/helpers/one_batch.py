"""The load as it was before issue #15 (A): every record in one Python batch (``normalize_batch``
over the whole load), kept as the reference the bounded load must equal, table by table."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from ccwatch.common.times import parse_ts
from ccwatch.warehouse import raw_lists, raw_store, store
from ccwatch.warehouse.normalize.base import Context
from ccwatch.warehouse.normalize.batch import normalize_batch, people_rows
from ccwatch.warehouse.rows import SchemaCache, delete_scopes, insert_rows


def upsert_raw(con, batch: list[raw_lists.Accumulated]) -> int:
    """The raw payloads as the one-batch load upserted them: one row per record, every column (an
    accumulating list's items written as the bounded load writes them, warehouse/raw_lists.py,
    every item again)."""
    rows = []
    items = raw_lists.ListItems(con, SchemaCache())
    for acc in batch:
        r = acc.rec
        if raw_lists.accumulates(r.source, r.kind):
            items.replace(acc)
            if acc.held():
                r = replace(r, payload=None)
        row = {f: getattr(r, f) for f in raw_store.RAW_COLUMNS}
        row["fetched_at"] = parse_ts(r.fetched_at)
        if row["fetched_at"] is None:
            raise ValueError(f"{r.source} {r.kind} {r.natural_key}: fetched_at is missing")
        rows.append(row)
    return insert_rows(con, "raw_payloads", rows)


def load_records(con, records, settings, before_commit=None, **_: Any) -> dict[str, int]:
    records = records() if callable(records) else records
    latest = {}
    for rec in map(raw_store.coerce_record, records):  # the reference reuses the store's pieces
        latest[(rec.source, rec.kind, rec.natural_key)] = rec
    counts: dict[str, int] = {}
    con.execute("BEGIN TRANSACTION")
    try:
        unchanged = [rec for rec in latest.values() if rec.status_code == 304]
        raw_store.check_not_modified(con, unchanged)
        accumulated = [raw_lists.accumulate(con, rec, whole=True) for rec in latest.values() if rec.status_code != 304]
        batch_records = [acc.rec for acc in accumulated]
        counts["raw_payloads"] = upsert_raw(con, accumulated)
        db = store._DbContext(con)  # noqa: SLF001
        batch = normalize_batch(batch_records, settings, Context(db.lookup, db.status_categories()))
        for table, scopes in batch.scopes.items():
            delete_scopes(con, table, scopes)
        for table, rows in batch.rows.items():
            counts[table] = insert_rows(con, table, rows)
        for (repo, sha), pulls in batch.commit_pr_updates.items():
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
