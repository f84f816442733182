"""The three raw lists that accumulate instead of being replaced (a branch's ``commits``, an
environment's ``deployments``, a branch's ``activity`` log; warehouse/store.py says why): how a
load merges tonight's items with the stored ones (:func:`accumulate`), and how the merged list is
held: one row per item in ``raw_list_items``, in the list's order, never as one value.

One value was the cliff of docs/PERFORMANCE.md ("The accumulating lists over the years"): the
list grows with the deployment's age, and DuckDB needs several times a value's size to store it
(a 157 MB commit list no longer fit the load's 1 GB bound); items cost it about their own size.

**Where the list is.** A 200 answer whose (merged) list has at least one item is stored with its
``raw_payloads`` row as fetched (url, time, etag, status) and ``payload`` NULL, its items in
``raw_list_items``, ``ord`` counted from the list's end (0: its last, oldest item), so a night
that only adds newer items writes only those (the stored ones keep their place).  Anything else (an empty list, a
403/404 answer, a payload that is not a list) is stored in ``payload`` as before, and the key's
items are dropped, as the former one-value row was replaced.  A row stored before the items
existed (schema migration 12) still holds its list in ``payload``: it is read from there until the
next load of its key moves it.  Readers go through :func:`payload_texts` / :func:`payload_text`,
which give the stored payload's JSON text either way (:func:`items_with_ids`: a few items of a
long list).

**Merging without reading the list.** Each item row also holds the item's id and sort key as
Python computed them when the item was written (:func:`item_keys`, migration 13), so a night's
:func:`accumulate` merges from those and reads only the items it compares or places; its result
is the one of the whole list parsed and merged.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import Any, NamedTuple

import duckdb

from ccwatch.ingest.records import RawRecord
from ccwatch.warehouse.rows import SchemaCache, json_default, json_rows_sql

Key = tuple[str, str, str]  # (source, kind, natural_key)
READ_ROWS = 2_000  # items fetched from DuckDB at a time
DOC_CHARS = 1_000_000  # JSON characters of items per INSERT: DuckDB parses a document at several times its size

# (source, kind) -> (item id field, sort key of the API's newest-first order)
ACCUMULATING: dict[tuple[str, str], tuple[str, Callable[[dict[str, Any]], Any]]] = {
    ("github", "commits"): ("sha", lambda c: str(((c.get("commit") or {}).get("committer") or {}).get("date") or "")),
    ("github", "deployments"): ("id", lambda d: (str(d.get("created_at") or ""), int(d.get("id") or 0))),
    ("github", "activity"): ("id", lambda e: (str(e.get("timestamp") or ""), int(e.get("id") or 0))),
}


def accumulates(source: str, kind: str) -> bool:
    return (source, kind) in ACCUMULATING


def payload_texts(con: duckdb.DuckDBPyConnection, rows: Iterable[tuple[Key, str | None]]) -> dict[Key, str | None]:
    """The stored payloads' JSON text of these raw rows ((key, ``raw_payloads.payload``)): the
    payload itself, or for an accumulating list held as items, the list rebuilt from them.  None:
    SQL NULL and no items."""
    out: dict[Key, str | None] = {}
    want: list[Key] = []
    for key, text in rows:
        out[key] = text
        if text is None and accumulates(key[0], key[1]):
            want.append(key)
    for key in want:
        # one query a key, its columns compared to constants: DuckDB filters the scan and reads the
        # items of matching rows only (a join on a list of keys read every item of the table: at
        # 200k PRs that was most of the backfill's time, 295 GB re-read from the page cache); no
        # ORDER BY: a sort would hold the items whole in DuckDB, Python orders them by ord
        result = con.execute("SELECT ord, item FROM raw_list_items WHERE source = ? AND kind = ? AND natural_key = ?",
                             list(key))
        items: list[tuple[int, str]] = []
        while batch := result.fetchmany(READ_ROWS):
            items += ((ord_, "null" if item is None else item) for ord_, item in batch)
        if items:
            items.sort(reverse=True)  # ord counts from the list's end
            out[key] = "[" + ",".join(text for _, text in items) + "]"
    return out


def payload_text(con: duckdb.DuckDBPyConnection, source: str, kind: str, key: str,
                 where: str = "") -> str | None:
    """The stored payload's JSON text of one record (:func:`payload_texts`); None when the record is
    absent or holds nothing.  ``where``: a further condition on the ``raw_payloads`` row."""
    row = con.execute(f"SELECT payload FROM raw_payloads WHERE source = ? AND kind = ? AND natural_key = ? {where}",
                      [source, kind, key]).fetchone()
    if row is None:
        return None
    return payload_texts(con, [((source, kind, key), row[0])])[(source, kind, key)]


def items_with_ids(con: duckdb.DuckDBPyConnection, key: Key, ids: Iterable[str]) -> list[Any] | None:
    """Of a 200 list held as items, the items whose id (``item_keys``) is among ``ids`` and every item
    stored without one, parsed, in the list's order: what a reader wanting a few items needs, without
    the rest of a long list.  None: the record does not hold a list as items (read it with
    :func:`payload_text`)."""
    row = con.execute("SELECT payload IS NULL AND status_code = 200 FROM raw_payloads WHERE source = ? AND kind = ? "
                      "AND natural_key = ?", list(key)).fetchone()
    if not (row and row[0]):
        return None
    rows = con.execute("SELECT ord, item FROM raw_list_items WHERE source = ? AND kind = ? AND natural_key = ? "
                       "AND (item_id IS NULL OR list_contains(?, item_id))", [*key, sorted(set(ids))]).fetchall()
    rows.sort(reverse=True)  # ord counts from the list's end
    return [None if item is None else json.loads(item) for _, item in rows]


class Accumulated(NamedTuple):
    """A record as the load stores it (:func:`accumulate`): ``rec.payload`` is the merged list but
    for its last ``kept`` items, stored already, unchanged and in place (not written again)."""

    rec: RawRecord
    kept: int = 0
    stored: int = 0  # items the key holds before this load (0: none, nothing to delete)
    clean: bool = False  # merged, and every stored item is in the merged list with its stored text
    length: int = -1  # the whole merged list's length (-1: rec.payload is the whole list)

    def size(self) -> int:
        """The whole list's length (0: not a list)."""
        if self.length >= 0:
            return self.length
        return len(self.rec.payload) if isinstance(self.rec.payload, list) else 0

    def held(self) -> bool:
        """Whether the load stores the list as items (see the module docstring)."""
        r = self.rec
        return accumulates(r.source, r.kind) and r.status_code == 200 and isinstance(r.payload, list) \
            and self.size() > 0


def accumulate(con: duckdb.DuckDBPyConnection, rec: RawRecord, *, whole: bool = False) -> Accumulated:
    """``rec`` with the stored list of the same object merged in: by item id, the fetched item
    winning, ordered newest first by the kind's sort key (stable: fetched first on ties).  A fetch
    holding every stored item is kept as fetched (the API's own order, its etag); a merged one
    keeps the fetch's url and time and drops its etag.

    Also says how many of the list's last items are stored as items already, unchanged and in
    place (their ``ord`` counts from the list's end), which the load need not write again and the
    result's payload leaves out: the longest such tail (the whole stored list on a night that only
    put newer items on top; less when a fetched item sorts among the stored ones, e.g. a merged
    branch's commit dated before the stored tip, or a fetched copy of a stored item changed); how
    many items the key holds, so that a key holding none (every list of a backfill) costs no delete
    (a delete scans the items table); and whether the merge left every stored item's text as it was
    (warehouse/appends.py).  The merge is computed from the stored items' ids and sort keys
    (:func:`_merge_by_keys`), reading only the items it compares or places, where every item allows
    it; else from the whole stored list, read and parsed.  ``whole``: always the latter, the result
    holding the whole merged list and ``kept`` 0 (the one-batch reference of the tests)."""
    if not accumulates(rec.source, rec.kind):
        return Accumulated(rec)
    key = (rec.source, rec.kind, rec.natural_key)
    row = con.execute("SELECT payload, status_code FROM raw_payloads WHERE source = ? AND kind = ? "
                      "AND natural_key = ?", list(key)).fetchone()
    in_items = row is not None and row[0] is None and row[1] == 200
    if rec.status_code != 200 or not isinstance(rec.payload, list) or row is None or row[1] != 200:
        stored = con.execute("SELECT count(*) FROM raw_list_items WHERE source = ? AND kind = ? AND natural_key = ?",
                             list(key)).fetchone()[0] if in_items else 0
        return Accumulated(rec, 0, stored)
    legacy = False  # items written before migration 13: written again, with their keys
    if in_items and not whole:
        fast = _merge_by_keys(con, rec, key)
        if isinstance(fast, Accumulated):
            return fast
        legacy = fast == _LEGACY
    text = payload_texts(con, [(key, row[0])])[key]
    stored = json.loads(text) if text is not None else None
    if not isinstance(stored, list):
        return Accumulated(rec)
    n_items = len(stored) if in_items else 0
    id_field, order = ACCUMULATING[(rec.source, rec.kind)]
    fetched = {item.get(id_field): item for item in rec.payload if isinstance(item, dict)}
    extra = [item for item in stored if isinstance(item, dict) and item.get(id_field) not in fetched]
    if not extra:
        return Accumulated(rec, 0, n_items)
    merged = sorted([*rec.payload, *extra], key=order, reverse=True)  # stable: fetched first on ties
    if whole:
        return Accumulated(replace(rec, payload=merged, etag=None), 0, n_items)
    clean = len(extra) == len(stored) - sum(  # every stored item an object, a fetched copy's text the stored one
        1 for item in stored if isinstance(item, dict) and (copy := fetched.get(item.get(id_field))) is not None
        and _text(copy) == _text(item))
    kept = 0
    if in_items and not legacy:  # the stored list again at its end: its own objects, or fetched copies with the same text
        for a, b in zip(reversed(merged), reversed(stored), strict=False):  # merged may be the shorter
            if not (a is b or _text(a) == _text(b)):
                break
            kept += 1
    return Accumulated(replace(rec, payload=merged[:len(merged) - kept], etag=None), kept, n_items, clean, len(merged))


_LEGACY = "legacy"


def item_keys(kind: tuple[str, str], item: Any) -> tuple[str | None, str, str | None]:
    """(item_id, sort_text, sort_num) of an item as ``raw_list_items`` stores them (migration 13):
    the kind's sort key computed here, in Python; ``item_id`` None unless the item is an object
    whose id and sort fields are plain (a string sha, an integer id of at most 64 bits, a string or
    absent date), for which the key read back equals the key of the item read back."""
    id_field, order = ACCUMULATING[kind]
    if not isinstance(item, dict):
        return None, "", None
    try:
        k = order(item)
    except (TypeError, ValueError, AttributeError):
        return None, "", None
    text, num = (k, None) if isinstance(k, str) else (k[0], str(k[1]))
    return (_plain_id(kind, item), text, num)


def _plain_id(kind: tuple[str, str], item: dict[str, Any]) -> str | None:
    if kind == ("github", "commits"):
        commit = item.get("commit")
        committer = commit.get("committer") if isinstance(commit, dict) else None
        date = committer.get("date") if isinstance(committer, dict) else None
        plain = isinstance(item.get("sha"), str) and (commit is None or isinstance(commit, dict)) \
            and (committer is None or isinstance(committer, dict)) and (date is None or isinstance(date, str))
        return item["sha"] if plain else None
    i, at = item.get("id"), item.get("created_at" if kind == ("github", "deployments") else "timestamp")
    plain = type(i) is int and -2**63 <= i < 2**64 and (at is None or isinstance(at, str))
    return str(i) if plain else None


def _merge_by_keys(con: duckdb.DuckDBPyConnection, rec: RawRecord, key: Key) -> Accumulated | str | None:
    """:func:`accumulate`'s result computed from the stored items' ids and sort keys, reading only
    the items it compares (the fetched copies of stored ones) or places in the result (stored items
    above the kept tail): the same result, item for item, as the whole stored list parsed and merged
    (tests/unit/warehouse/test_raw_lists.py compares them on random and hostile lists).  None when
    a fetched or stored item is not plain (:func:`item_keys`) or ids repeat; ``_LEGACY`` when items
    were written before migration 13."""
    kind = (rec.source, rec.kind)
    fetched: dict[str, int] = {}  # id -> place in the fetched list
    keys: list[Any] = []
    for i, item in enumerate(rec.payload):
        iid, text, num = item_keys(kind, item)
        if iid is None or iid in fetched:
            return None
        fetched[iid] = i
        keys.append(text if num is None else (text, int(num)))
    rows = con.execute("SELECT ord, item_id, sort_text, sort_num FROM raw_list_items WHERE source = ? AND kind = ? "
                       "AND natural_key = ?", list(key)).fetchall()
    if any(text is None for _, _, text, _ in rows):
        return _LEGACY
    rows.sort(reverse=True)  # the list's order: ord counts from its end
    n = len(rows)
    ids = [iid for _, iid, _, _ in rows]
    if not n or None in ids or len(set(ids)) != n or [o for o, _, _, _ in rows] != list(range(n - 1, -1, -1)):
        return None
    extra = [(o, text if num is None else (text, int(num))) for o, iid, text, num in rows if iid not in fetched]
    if not extra:
        return Accumulated(rec, 0, n)
    entries = sorted([*((k, i, -1) for i, k in enumerate(keys)), *((k, -1, o) for o, k in extra)],
                     key=lambda e: e[0], reverse=True)  # stable, fetched first on ties: as the items sort
    copies = {o: fetched[iid] for o, iid, _, _ in rows if iid in fetched}  # stored ord -> fetched place
    stored_text = _items_by_ord(con, key, list(copies))
    same = {o: _text(rec.payload[i]) == _text(json.loads(stored_text[o])) for o, i in copies.items()}
    kept = 0
    for entry in reversed(entries):  # ord kept is the stored item at ord kept
        _, i, o = entry
        if not (o == kept or (i >= 0 and copies.get(kept) == i and same[kept])):
            break
        kept += 1
        if kept == n:
            break
    head = entries[:len(entries) - kept]
    placed = _items_by_ord(con, key, [o for _, i, o in head if i < 0])
    payload = [rec.payload[i] if i >= 0 else json.loads(placed[o]) for _, i, o in head]
    return Accumulated(replace(rec, payload=payload, etag=None), kept, n, all(same.values()), len(entries))


def _items_by_ord(con: duckdb.DuckDBPyConnection, key: Key, ords: list[int]) -> dict[int, str]:
    """The stored items' JSON text at these ``ord`` of one list."""
    if not ords:
        return {}
    return dict(con.execute("SELECT ord, item FROM raw_list_items WHERE source = ? AND kind = ? AND natural_key = ? "
                            "AND list_contains(?, ord)", [*key, ords]).fetchall())


def stored_merge(con: duckdb.DuckDBPyConnection, rec: RawRecord) -> RawRecord:
    """An accumulating record as the load stored it (merged with the stored list, no etag)."""
    return replace(rec, payload=json.loads(payload_text(con, rec.source, rec.kind, rec.natural_key) or "null"), etag=None)


def _text(item: Any) -> str:
    return json.dumps(item, default=json_default)


class ListItems:
    """Writes the items of the lists a load stores (``raw_list_items``), in bounded documents: each
    key's rows replaced by its list, in order, each with its id and sort key (:func:`item_keys`)."""

    COLS = ["source", "kind", "natural_key", "ord", "item_id", "sort_text", "sort_num", "item"]

    def __init__(self, con: duckdb.DuckDBPyConnection, cache: SchemaCache) -> None:
        self.con = con
        self.sql = (f'INSERT INTO raw_list_items ({", ".join(self.COLS)}) '
                    f'{json_rows_sql(con, "raw_list_items", self.COLS, cache)}')

    def replace(self, acc: Accumulated) -> None:
        """Store the record's list as its key's items (an empty list, or none: drop them), but for
        its last ``kept`` items, stored already in place (:func:`accumulate`)."""
        rec, kept = acc.rec, acc.kept
        held = acc.held()
        items, n = (rec.payload, acc.size()) if held else ([], 0)
        if len(items) != n - kept:
            raise ValueError(f"{rec.source} {rec.kind} {rec.natural_key}: {len(items)} items to write, not {n - kept}")
        if acc.stored > kept:  # no primary key: the stored rows written again, or dropped, go first
            self.con.execute("DELETE FROM raw_list_items WHERE source = ? AND kind = ? AND natural_key = ? "
                             "AND ord >= ?", [rec.source, rec.kind, rec.natural_key, kept])
        head = json.dumps({"source": rec.source, "kind": rec.kind, "natural_key": rec.natural_key})[:-1]
        kind = (rec.source, rec.kind)
        parts: list[str] = []
        size = 0
        for i, item in enumerate(items):
            iid, text, num = item_keys(kind, item)
            keys = json.dumps({"item_id": iid, "sort_text": text, "sort_num": num})[1:-1]
            text = f'{head}, "ord": {n - 1 - i}, {keys}, "item": {_text(item)}}}'
            parts.append(text)
            size += len(text)
            if size >= DOC_CHARS:
                self.con.execute(self.sql, ["[" + ",".join(parts) + "]"])
                parts, size = [], 0
        if parts:
            self.con.execute(self.sql, ["[" + ",".join(parts) + "]"])
