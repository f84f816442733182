"""The bounded load's index of its records' keys (warehouse/store.py, pass 1; issue #15).

One pass over the load's records before anything is written says which record of each
(source, kind, natural_key) wins (the last) and where one batch would see it (at the key's first
occurrence), which records are 304s, and the little a normaliser asks about the whole load.  It is
held for the whole load, so it keeps ~24 bytes a record: a 128-bit digest of the key and a
position, in numpy arrays (tuples of the keys' strings cost ~1 KB a key and grew 0.3 -> 0.9 GB
from 50k to 200k PRs).
"""

from __future__ import annotations

import hashlib
import json
from array import array
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from ccwatch.ingest.records import RawRecord


def _status_shape(payload: Any) -> Any:
    """The part of an issue payload that status categories read (the payload itself if that part
    cannot be taken: normalize/jira.status_categories then fails on it as it would on the whole)."""
    if not isinstance(payload, dict):
        return payload
    try:
        return {"fields": {"status": (payload.get("fields") or {}).get("status")}}
    except AttributeError:
        return payload


def key_digest(source: Any, kind: Any, natural_key: Any) -> bytes:
    """A 128-bit digest of a record's (source, kind, natural_key): what the index keeps of a key
    (two distinct keys of one load share a digest with a probability below 1e-26)."""
    try:
        text = json.dumps([source, kind, natural_key])
    except (TypeError, ValueError):
        text = repr((source, kind, natural_key))
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest()


class LoadIndex:
    """One pass over the load's records, before anything is written: which record of each
    (source, kind, natural_key) wins (the last) and where one batch would see it (at the key's
    first occurrence), the 304s, and the little a normaliser asks about the whole load.  Held for
    the whole load, compactly: per record a 16-byte digest of its key and an 8-byte position
    (numpy arrays, ~24 bytes a record, never a key's strings nor a payload, except the 304s' empty
    ones and the issues' status parts, each distinct one once)."""

    def __init__(self, read: Callable[[], Iterator[RawRecord]]) -> None:
        digests = bytearray()
        is_304 = bytearray()
        kinds: list[tuple[int, int, str, str]] = []  # records of kinds asked about: (index, status, kind, key)
        issues = array("q")  # kind issue: record index, status code, index of its status part
        shapes: list[Any] = []
        shape_ids: dict[str, int] = {}
        not_modified: dict[int, RawRecord] = {}  # the 304 records by index (those that stay last are kept)
        i = -1
        for i, rec in enumerate(read()):
            digests += key_digest(rec.source, rec.kind, rec.natural_key)
            is_304.append(rec.status_code == 304)
            if rec.status_code == 304:
                not_modified[i] = rec
            if rec.kind == "issue":
                shape = _status_shape(rec.payload)
                try:
                    text = json.dumps(shape)
                except (TypeError, ValueError):
                    text = None
                sid = shape_ids.get(text) if text is not None else None
                if sid is None:
                    sid = len(shapes)
                    shapes.append(shape)
                    if text is not None:
                        shape_ids[text] = sid
                issues.extend((i, int(rec.status_code), sid))
            if rec.source == "github" and rec.kind in ("commit_pulls", "gql_commit_pulls", "commits"):
                kinds.append((i, int(rec.status_code), rec.kind, rec.natural_key))
        self.count = n = i + 1
        self._digests = np.frombuffer(bytes(digests), dtype="S16") if n else np.empty(0, dtype="S16")
        del digests
        flags = np.frombuffer(bytes(is_304), dtype=np.uint8).astype(bool) if n else np.empty(0, dtype=bool)
        # group the records by key: sorted by digest, then by index (stable)
        order = np.argsort(self._digests, kind="stable")
        sorted_digests = self._digests[order]
        starts = np.ones(n, dtype=bool)
        starts[1:] = sorted_digests[1:] != sorted_digests[:-1]
        group_first = order[starts]  # index of each key's first record (sorted within a group)
        ends = np.ones(n, dtype=bool)
        ends[:-1] = starts[1:]
        group_last = order[ends]  # index of each key's last record
        rank = np.empty(len(group_first), dtype=np.int64)  # a key's position: order of first occurrence
        rank[np.argsort(group_first, kind="stable")] = np.arange(len(group_first), dtype=np.int64)
        # per record: its key's position if it is the key's last record, else -1
        self._last = np.full(n, -1, dtype=np.int64)
        self._last[group_last] = rank
        self._304 = flags
        live = group_last[~flags[group_last]]  # keys whose last record is not a 304: the load's keys
        self._keys = np.sort(self._digests[live])
        self.not_modified = {i: r for i, r in not_modified.items() if self._last[i] >= 0}
        # kind issue, last record of its key, in the order of the keys' first occurrence
        rows = np.frombuffer(issues.tobytes(), dtype=np.int64).reshape(-1, 3)
        rows = rows[self._last[rows[:, 0]] >= 0]
        rows = rows[np.argsort(self._last[rows[:, 0]], kind="stable")]
        self.issues = [(int(code), shapes[int(sid)]) for _, code, sid in rows]
        commit_pulls_200 = []
        self.commit_keys: list[tuple[str, str, str]] = []  # the load's github commits lists
        for idx, code, kind, key in kinds:
            if self._last[idx] < 0:
                continue
            if kind == "commits" and code != 304:
                self.commit_keys.append(("github", kind, key))
            elif kind != "commits" and code == 200:
                commit_pulls_200.append(self._digests[idx])
        self._commit_pulls_200 = np.sort(np.array(commit_pulls_200, dtype="S16"))

    @staticmethod
    def _member(sorted_digests: np.ndarray, key: object) -> bool:
        if not (isinstance(key, tuple) and len(key) == 3) or not len(sorted_digests):
            return False
        d = np.array(key_digest(*key), dtype="S16")
        at = int(np.searchsorted(sorted_digests, d))
        return at < len(sorted_digests) and sorted_digests[at] == d

    def __contains__(self, key: object) -> bool:
        """A key the load normalises (one batch's records: the 304s are not among them)."""
        return self._member(self._keys, key)

    def commit_pulls_200(self, key: tuple[str, str, str]) -> bool:
        """The last record of this REST / GraphQL commit-PRs key answered 200."""
        return self._member(self._commit_pulls_200, key)

    def unchanged(self) -> list[RawRecord]:
        """The 304 records, in the order one batch holds them."""
        return [self.not_modified[i] for i in sorted(self.not_modified, key=lambda i: self._last[i])]

    def winners(self, read: Callable[[], Iterator[RawRecord]]) -> Iterator[tuple[int, RawRecord]]:
        """(position, record) of the last record of every key but the 304s, in stream order."""
        n = 0  # no enumerate(): its reused result tuple would hold the last record
        for rec in read():
            i, n = n, n + 1
            if i >= self.count or self._digests[i:i + 1].tobytes() != key_digest(rec.source, rec.kind, rec.natural_key):
                raise RuntimeError(f"{rec.source} {rec.kind} {rec.natural_key}: the records changed while loading")
            position = int(self._last[i])
            if position >= 0 and not self._304[i]:
                out = [(position, rec)]
                del rec
                yield out.pop()  # not held here while the load uses it (a busy list is hundreds of MB parsed)
            else:
                del rec
        if n != self.count:
            raise RuntimeError(f"the records changed while loading ({self.count} read first, {n} now)")
