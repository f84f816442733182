"""Atomic load of raw records into the warehouse (docs/ARCHITECTURE.md, step 3).

:func:`load_records` runs ONE transaction: upsert ``raw_payloads`` by
(source, kind, natural_key), replace the normalised rows of every object present in the
batch (delete by the object's natural key, then insert: a rerun yields the same rows),
and refresh ``people`` from the config.  Any exception rolls everything back and is
re-raised, so the previous state stays intact and evaluation never sees half a load.

**Bounded.** The batch is never held whole: it is read three times (a callable re-reads the
staging files), ``chunk_records`` records at a time, and the warehouse it leaves is, table by
table, the one a single batch (every record normalised together) would leave:

1. an index of the keys (``warehouse/load_index.py``; no payload, ~24 bytes a record: a 128-bit digest of the key and a
   position, in numpy arrays): the last record of each (source, kind, natural_key) wins, at the
   place of the key's first occurrence; the 304s; what a normaliser asks about the whole batch (is
   there a REST record of this piece, a commits list of this repository, the issues' status
   categories);
2. the 304s checked against the stored copies, then the raw payloads upserted chunk by chunk
   (accumulating lists merged with the stored ones first): from here on every lookup of a
   normaliser finds the batch's records in ``raw_payloads``, whatever chunk they came in;
3. the records normalised chunk by chunk (:func:`load_chunks`: a list payload counts one record
   per item, so a busy branch's commit list is a chunk alone; a chunk's parsed records are dropped
   once normalised, its rows staged a slice at a time): each chunk's scopes deleted at once (the
   batch's own rows are not in the tables yet), its rows staged in temp tables (DuckDB keeps them within its
   memory limit and spills; ``pipeline.load_warehouse`` sets ``CCWATCH_DUCKDB_LOAD_MEMORY_LIMIT``,
   warehouse/schema.py), published at the end, the last row winning on a
   duplicate primary key in the batch's order, as :func:`insert_rows` does.

Three raw kinds *accumulate* instead of being replaced: a branch's ``commits`` list, an
environment's ``deployments`` list and (r2) a branch's ``activity`` log.  An incremental fetch
brings only their newest items, so the stored list is merged with the fetched one by item id
(sha / deployment id / activity id; the fetched item wins) before anything is normalised: the
first-parent chain (and every ``position``) is that of the whole stored history, exactly as if the
list had been fetched in one piece, and older items stay available to reruns of earlier dates.
A night that only put new items on top of the stored ones normalises those alone, on top of the
stored rows (``warehouse/appends.py``: the first-parent line continued from the stored tip); any
other merge normalises the whole list again.  The merged record keeps
the fetch's url and time; its etag is dropped when stored items were merged in.  The merged list
is stored one row per item (``raw_list_items``), never as one value: nothing prunes the lists, and
as one value a busy branch's list outgrew the load's DuckDB bound after a few years
(docs/PERFORMANCE.md, "The accumulating lists over the years"); a night's merge reads the stored
items' ids and sort keys, not the items.  The merging and the items live in
``warehouse/raw_lists.py``, the raw upsert in ``warehouse/raw_store.py``.

A record with ``status_code`` 304 (a conditional request answered "not modified",
ingest/github/conditional.py) carries no payload: the stored payload and the normalised
rows of that object stay as they are (only the raw row's ``fetched_at`` moves to the
revalidation time).  A 304 for an object with no stored 200 payload cannot be served: the load
raises ``raw_store.NotModifiedWithoutCopy`` naming the records (nothing is committed; the
pipeline then drops the ingest state so the next fetch is full).

Rows travel to DuckDB as JSON documents (``warehouse/rows.py``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import duckdb

from ccwatch.ingest.records import RawRecord
from ccwatch.settings import Settings
from ccwatch.warehouse.appends import Appends
from ccwatch.warehouse.load_index import LoadIndex
from ccwatch.warehouse.normalize import graphql as ng
from ccwatch.warehouse.normalize.base import Context
from ccwatch.warehouse.normalize.batch import (
    LoadView,
    appended_branches,
    commit_list_repos,
    normalize_chunk,
    people_rows,
)
from ccwatch.warehouse.normalize.jira import status_categories
from ccwatch.warehouse.raw_lists import accumulate, payload_text, stored_merge
from ccwatch.warehouse.raw_store import RawUpserts, check_not_modified, coerce_record
from ccwatch.warehouse.rows import (
    SchemaCache,
    columns,
    delete_scopes,
    insert_rows,
    primary_key,
)


class _DbContext:
    """Lookups into raw_payloads, which already hold this batch (read inside the load transaction)."""

    # kinds looked up once per commit of a branch: fetched for the whole repository in one query
    # (a query per commit costs ~1 ms, minutes for a busy repository's history)
    PER_REPO = {("github", "commit_pulls"): "@", ("github", "gql_commit_pulls"): "@"}
    # but a repository whose commits the load appends to (warehouse/appends.py) asks about its new
    # commits only: that many are asked one by one before the whole repository is read
    FEW = 256

    def __init__(self, con: duckdb.DuckDBPyConnection, few: set[str] | frozenset[str] = frozenset()) -> None:
        self.con, self.few = con, few
        self._repo_cache: dict[tuple[str, str, str], dict[str, Any]] = {}
        self._asked: dict[tuple[str, str, str], int] = {}

    def lookup(self, source: str, kind: str, key: str) -> Any:
        cache = self._repository_rows(source, kind, key)
        if cache is not None:
            text = cache.get(key)
        else:  # the key alone (a list: from its items)
            text = payload_text(self.con, source, kind, key, "AND status_code = 200")
        return json.loads(text) if text is not None else None

    def _repository_rows(self, source: str, kind: str, key: str) -> dict[str, Any] | None:
        """natural_key -> payload of the key's repository, for a kind looked up per commit, read at
        once; None: the key is asked alone (another kind, or one of the first ``FEW`` keys of a
        repository whose commits the load appends to)."""
        sep = self.PER_REPO.get((source, kind))
        if sep is None or sep not in key:
            return None
        repo = key.split(sep, 1)[0]
        prefix = repo + sep
        cache = self._repo_cache.get((source, kind, prefix))
        if cache is None and repo in self.few:
            asked = self._asked[(source, kind, prefix)] = self._asked.get((source, kind, prefix), 0) + 1
            if asked <= self.FEW:
                return None
        if cache is None:
            if any(p != prefix for _, _, p in self._repo_cache):
                self._repo_cache.clear()  # one repository at a time: bounded, whatever the org's size
            rows = self.con.execute(
                "SELECT natural_key, payload FROM raw_payloads WHERE source = ? AND kind = ? "
                "AND starts_with(natural_key, ?) AND status_code = 200", [source, kind, prefix]).fetchall()
            cache = self._repo_cache[(source, kind, prefix)] = dict(rows)
        return cache

    def status_categories(self) -> dict[str, str]:
        rows = self.con.execute(
            "SELECT json_extract(payload, '$.fields.status') FROM raw_payloads "
            "WHERE source = 'jira' AND kind = 'issue' AND status_code = 200"
        ).fetchall()
        return status_categories({"fields": {"status": json.loads(s)}} for (s,) in rows if s)


DEFAULT_CHUNK_RECORDS = 1_000  # records normalised (and held in Python) at a time
STAGED = "_ccwatch_load_"  # temp tables holding a load's normalised rows until the end of the load
_POSITION, _SEQ = "_ccwatch_position", "_ccwatch_seq"

Records = Iterable[RawRecord | dict[str, Any]] | Callable[[], Iterable[RawRecord | dict[str, Any]]]


def _reader(records: Records) -> Callable[[], Iterator[RawRecord]]:
    """A function reading the records again from the start at each call.  A callable is called
    again (streamed: e.g. one staging file after the other); a list is iterated again; any other
    iterable can be read only once, so it is held in memory."""
    if callable(records):
        return lambda: map(coerce_record, records())
    held = records if isinstance(records, (list, tuple)) else list(records)
    return lambda: map(coerce_record, held)


def _weight(rec: RawRecord) -> int:
    """What a record counts in a chunk: one, or one per item of a list payload (the busiest branch's
    commit list is thousands of records' worth); an empty list still one (else they pile up unbounded)."""
    return max(1, len(rec.payload)) if isinstance(rec.payload, list) else 1


def _take(chunk: list[Any]) -> list[Any]:
    out = chunk[:]
    chunk.clear()
    return out


def load_chunks(winners: Iterable[tuple[int, RawRecord]], size: int) -> Iterator[list[tuple[int, RawRecord]]]:
    """(position, record) pairs in chunks of at most ``size`` records, a list payload counting one
    per item; a record heavier than ``size`` is a chunk alone.  A chunk that reaches ``size`` is
    handed over before the next record is read (one closed because the next record does not fit
    is handed over with that record read), and once yielded it is referenced only by the caller:
    its parsed records are freed as soon as the caller drops them, so two long lists (the busiest
    branch's activity log and commit list) are never held at once."""
    chunk: list[tuple[int, RawRecord]] = []
    weight = 0
    for item in winners:
        w = _weight(item[1])
        if chunk and weight + w > size:
            yield _take(chunk)
            weight = 0
        chunk.append(item)
        weight += w
        del item
        if weight >= size:
            yield _take(chunk)
            weight = 0
    if chunk:
        yield _take(chunk)


class _StagedRows:
    """The load's normalised rows, chunk by chunk, in temp tables (DuckDB holds them within its
    memory limit and spills), each tagged with its record's position and its order; published
    into the warehouse tables at the end, the last row winning on a duplicate primary key as in
    one batch (:func:`insert_rows`)."""

    SLICE = 1_000  # rows tagged and sent per insert

    def __init__(self, con: duckdb.DuckDBPyConnection, cache: SchemaCache) -> None:
        self.con, self.cache = con, cache
        self.tables: dict[str, str] = {}
        self.seq = 0

    def add(self, table: str, rows: list[dict[str, Any]], positions: list[int]) -> None:
        name = self.tables.get(table)
        if name is None:
            name = self.tables[table] = f"{STAGED}{table}"
            self.con.execute(f'CREATE OR REPLACE TEMP TABLE "{name}" AS SELECT *, 0::BIGINT AS {_POSITION}, '
                             f'0::BIGINT AS {_SEQ} FROM main."{table}" LIMIT 0')
        if len(rows) != len(positions):
            raise ValueError(f"{table}: {len(rows)} rows, {len(positions)} positions")
        for lo in range(0, len(rows), self.SLICE):  # a slice at a time: one long list's rows are never copied whole
            part = zip(rows[lo:lo + self.SLICE], positions[lo:lo + self.SLICE], strict=True)
            tagged = [{**row, _POSITION: position, _SEQ: self.seq + i} for i, (row, position) in enumerate(part)]
            self.seq += len(tagged)
            insert_rows(self.con, name, tagged, self.cache)

    def publish(self) -> dict[str, int]:
        counts = {}
        for table, name in self.tables.items():
            cols = ", ".join(f'"{c}"' for c, _ in columns(self.con, table, self.cache))
            pk = ", ".join(f'"{c}"' for c in primary_key(self.con, table, self.cache))
            select = f'SELECT {cols} FROM "{name}"'
            if pk and self.con.execute(f'SELECT count(*) FROM (SELECT 1 FROM "{name}" GROUP BY {pk} '
                                       'HAVING count(*) > 1)').fetchone()[0]:
                select += f" QUALIFY row_number() OVER (PARTITION BY {pk} ORDER BY {_POSITION} DESC, {_SEQ} DESC) = 1"
            verb = "INSERT OR REPLACE" if pk else "INSERT"
            counts[table] = self.con.execute(f'{verb} INTO main."{table}" ({cols}) {select}').fetchone()[0]
            self.con.execute(f'DROP TABLE "{name}"')
        return counts


def load_records(
    con: duckdb.DuckDBPyConnection, records: Records, settings: Settings,
    before_commit: Callable[[duckdb.DuckDBPyConnection], None] | None = None, *,
    chunk_records: int = DEFAULT_CHUNK_RECORDS,
) -> dict[str, int]:
    """Load one batch atomically, ``chunk_records`` records at a time; returns the number of rows
    written per table.  The warehouse it leaves is the one a single chunk would (see the module
    docstring): ``records`` is read three times (pass a callable to stream it from its files).

    ``before_commit(con)`` runs last inside the transaction (it sees the batch's rows; e.g. the
    run bookkeeping and the next ingest state); if it raises, nothing is committed."""
    if chunk_records < 1:
        raise ValueError(f"chunk_records must be at least 1, not {chunk_records}")
    read = _reader(records)
    index = LoadIndex(read)
    counts: dict[str, int] = {}
    cache = SchemaCache()
    con.execute("BEGIN TRANSACTION")
    try:
        check_not_modified(con, index.unchanged())  # kept as stored: no upsert, no normalisation
        # 1. raw payloads (accumulating lists merged with the stored ones): every lookup of the
        #    normalisers then reads the load through the warehouse, whatever chunk it came in
        #    (one parsed record at a time: each is held as JSON text until its document is sent)
        merged: set[tuple[str, str, str]] = set()
        appends = Appends()  # the lists that only got new items on top: those alone are normalised
        raw = RawUpserts(con, cache, chunk_records)
        for _, rec in index.winners(read):
            acc = accumulate(con, rec)
            if acc.rec is not rec:
                merged.add((rec.source, rec.kind, rec.natural_key))
                appends.note(rec, acc)
            raw.add(acc)
            del rec, acc  # held as JSON text by raw: the next record is parsed without this one
        raw.flush()
        counts["raw_payloads"] = raw.count
        # 2. normalised rows: scopes deleted at once (this load's rows are not in the tables yet),
        #    rows staged and published at the end
        appended = appends.view(con)
        branches = appended_branches(appended)  # of the commits lists appended to, per repository
        db = _DbContext(con, set(branches))
        ctx, view = _load_context(db, index, appended)
        staged = _StagedRows(con, cache)
        pr_updates: dict[tuple[str, str], list[tuple[int, str | None]]] = {}
        appended_prs: dict[tuple[str, str], list[tuple[int, str | None]]] = {}
        for chunk in load_chunks(index.winners(read), chunk_records):
            recs = [(pos, _as_normalised(con, rec, view, merged, appends)) for pos, rec in chunk]
            batch = normalize_chunk(recs, settings, ctx, view)
            del chunk, recs  # the parsed records: only their rows are staged (load_chunks)
            for table, scopes in batch.scopes.items():
                delete_scopes(con, table, scopes, cache)
            for table in list(batch.rows):  # each table's rows dropped once staged
                staged.add(table, batch.rows.pop(table), batch.positions.get(table, []))
            pr_updates.update(batch.commit_pr_updates)
            appended_prs.update(batch.appended_pr_updates)
        counts.update(staged.publish())
        _update_commit_prs(con, pr_updates)
        _update_commit_prs(con, appended_prs, branches)
        con.execute("DELETE FROM people")
        counts["people"] = insert_rows(con, "people", people_rows(settings))
        if before_commit is not None:
            before_commit(con)
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return counts


def _as_normalised(con: duckdb.DuckDBPyConnection, rec: RawRecord, view: LoadView,
                   merged: set[tuple[str, str, str]], appends: Appends) -> RawRecord:
    """The record a chunk normalises: an appended list's new items, another merged list whole."""
    key = (rec.source, rec.kind, rec.natural_key)
    if key in view.appended:
        return appends.head_record(rec)
    return stored_merge(con, rec) if key in merged else rec


def _update_commit_prs(con: duckdb.DuckDBPyConnection, updates: dict[tuple[str, str], list[tuple[int, str | None]]],
                       branches: dict[str, set[str]] | None = None) -> None:
    """Commits whose merged PRs ((number, base branch)) were asked again: their stored rows follow,
    on ``branches`` of the repository (default: every stored branch of the commit); (r2) per branch,
    only the PRs merged into that branch cover the commit."""
    for (repo, sha), pulls in updates.items():
        on = sorted(branches.get(repo, ())) if branches is not None else [
            b for (b,) in con.execute("SELECT DISTINCT branch FROM commits WHERE repo = ? AND sha = ?",
                                      [repo, sha]).fetchall()]
        for branch in on:
            con.execute("UPDATE commits SET pr_numbers = ? WHERE repo = ? AND branch = ? AND sha = ?",
                        [sorted({n for n, base in pulls if base == branch}), repo, branch, sha])


def _load_context(db: _DbContext, index: LoadIndex, appended: dict) -> tuple[Context, LoadView]:
    """The context and view every chunk normalises with, once the load's raw payloads are stored:
    what one batch resolves from its own records first, then from the warehouse, the warehouse
    now resolves alone, except a commit's PRs, whose order (REST of the load, GraphQL of the
    load, stored REST, stored GraphQL) the index keeps."""

    def lookup(source: str, kind: str, key: str) -> Any:
        if (source, kind) != ("github", "commit_pulls"):
            return db.lookup(source, kind, key)
        found = db.lookup(source, kind, key) if index.commit_pulls_200((source, kind, key)) else None
        if found is None and index.commit_pulls_200((source, "gql_commit_pulls", key)):
            node = db.lookup(source, "gql_commit_pulls", key)
            found = ng.commit_pulls_payload(node, key) if node is not None else None
        if found is None:
            found = db.lookup(source, kind, key)
        if found is None and (node := db.lookup(source, "gql_commit_pulls", key)) is not None:
            found = ng.commit_pulls_payload(node, key)
        return found

    cats = db.status_categories()
    status_list = lookup("jira", "statuses", "statuses")  # GET /rest/api/2/status: every status
    if isinstance(status_list, list):
        cats.update(status_categories({"fields": {"status": st}} for st in status_list))
    cats.update(status_categories(shape for code, shape in index.issues if code != 304))
    view = LoadView(keys=index, commit_repos=commit_list_repos(index.commit_keys),
                    fields_payload=lookup("jira", "fields", "fields"), appended=appended)
    return Context(lookup, cats), view
