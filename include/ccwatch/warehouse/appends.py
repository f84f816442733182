"""A night that only put newer items on top of a stored list: the load normalises those items alone
(warehouse/store.py runs the load; docs/PERFORMANCE.md, "The accumulating lists over the years").

The three accumulating lists (warehouse/raw_lists.py) are merged with their stored items before
anything is normalised.  When the merge left every stored item's text as it was
(``Accumulated.clean``: the fetch's copies of stored items have the stored text) and some of them
in place at the list's end (``kept``), the rows of the stored items are already in the tables,
normalised by an earlier load from those same items.  The load then normalises only the fetched
items above that kept tail (the new items, and any copies of stored ones there, whose rows come out
as stored: e.g. when a merged branch's commit dated before the stored tip sorted among the stored
items), and replaces none of the stored rows:

* an environment's ``deployments``, a branch's ``activity`` log: one row per item, so the head's
  rows are the rows the whole list would add;
* a branch's ``commits``: the first-parent line from the new tip down to the stored line's tip,
  numbered on from that tip's ``position``, when tonight's line continues the stored one: the walk
  from the branch's tip through the new items reaches the stored tip, and the first parent of the
  stored line's oldest commit is still unknown (else the whole line reaches further down and every
  position moves).  Anything else (a force push, a reset to an older commit, a walk that needs a
  commit fetched alone, an unknown tip) is normalised from the whole merged list, as before
  (``normalize.github.appended_commit_rows`` says None);
* a commit's PRs asked again tonight (raw ``commit_pulls`` / ``gql_commit_pulls``) update the rows
  of that commit on the appended branches, with what the whole list normalised again would give.

The warehouse left is, table by table, the one of the whole list normalised again (the reference:
tests/helpers/one_batch.py; tests/unit/warehouse/test_appended_lists.py,
tests/integration/pipeline/test_load_chunks.py).  Nothing prunes the stored rows either way.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import duckdb

from ccwatch.ingest.records import RawRecord
from ccwatch.warehouse.normalize.base import split_key
from ccwatch.warehouse.raw_lists import ACCUMULATING, Accumulated, Key

# the stored line under a branch's commits: its tip's sha, the tip's position, and the first parent
# of its oldest commit (None: a root commit)
LineBase = tuple[str, int, "str | None"]


class Appends:
    """The records of a load that only put new items on top of their stored list (noted while the
    raw payloads are merged, :meth:`note`), and what their normalisation needs."""

    def __init__(self) -> None:
        self.heads: dict[Key, frozenset[Any]] = {}

    def note(self, fetched: RawRecord, acc: Accumulated) -> None:
        """Keep ``fetched``'s key when its merge ``acc`` left the stored items in place."""
        merged = acc.rec
        if merged is fetched or not acc.kept or not acc.clean:
            return
        id_field = ACCUMULATING[(fetched.source, fetched.kind)][0]

        def item_id(item: Any) -> Any:
            i = item.get(id_field) if isinstance(item, dict) else None
            return i if isinstance(i, (str, int)) and not isinstance(i, bool) else None

        # the head (the merged list but for its kept tail) is found again among the fetched items
        # by id: every id must name one item
        ids, head = [item_id(i) for i in fetched.payload], [item_id(i) for i in merged.payload]
        if None in ids or None in head or len(set(ids)) != len(ids):
            return
        self.heads[(fetched.source, fetched.kind, fetched.natural_key)] = frozenset(head)

    def view(self, con: duckdb.DuckDBPyConnection) -> dict[Key, LineBase | None]:
        """The appended keys for the normalisers: a branch's commits with the stored line under them
        (a branch without stored rows is normalised whole), the other lists with None."""
        out: dict[Key, LineBase | None] = {}
        for key in self.heads:
            if key[1] != "commits":
                out[key] = None
                continue
            repo, branch = split_key(key[2], ":")
            top = con.execute("SELECT sha, position FROM commits WHERE repo = ? AND branch = ? "
                              "ORDER BY position DESC LIMIT 1", [repo, branch]).fetchone()
            if top is None:
                continue
            (below,) = con.execute("SELECT parent_sha FROM commits WHERE repo = ? AND branch = ? "
                                   "ORDER BY position LIMIT 1", [repo, branch]).fetchone()
            out[key] = (top[0], int(top[1]), below)
        return out

    def head_record(self, rec: RawRecord) -> RawRecord:
        """``rec`` (as fetched) with its items above the kept tail only, in the merged list's order."""
        head = self.heads[(rec.source, rec.kind, rec.natural_key)]
        id_field, order = ACCUMULATING[(rec.source, rec.kind)]
        items = sorted((i for i in rec.payload if i[id_field] in head), key=order, reverse=True)  # stable, as the merge
        return replace(rec, payload=items, etag=None)
