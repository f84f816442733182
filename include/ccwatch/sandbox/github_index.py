"""Per-repository lookup indexes of the GitHub double, so every route answers in O(page).

A scenario repository holds flat lists (``commits``, ``pulls``, ``deployments``); at 100,000 PRs
a linear scan per request (or per rendered PR) makes a backfill quadratic. :class:`RepoIndex`
is built once per repository, lazily on its first request, and rebuilt when the lists it was
built from change size or identity (a test that appends to a served scenario stays correct).
Listing routes cache their filtered, sorted order per query and render only the requested
page through :class:`Rendered`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any


def _fingerprint(r: dict) -> tuple:
    lists = [r.get(k) or [] for k in ("commits", "pulls", "deployments")]
    return tuple((id(x), len(x)) for x in lists) + (id(r.get("branches")),)


class RepoIndex:
    """Lookups over one scenario repository (read-only views of the scenario's own objects)."""

    def __init__(self, r: dict):
        self.fingerprint = _fingerprint(r)
        commits = r.get("commits") or []
        self.commits: dict[str, dict] = {c["sha"]: c for c in commits}
        self.order: dict[str, int] = {c["sha"]: i for i, c in enumerate(commits)}
        #: the newest commit date of any branch: the scenario's stand-in for GitHub's ``pushed_at``
        self.last_push: str | None = max((c["date"] for c in commits if c.get("date")), default=None)
        self.pulls: dict[int, dict] = {}
        self.pulls_of_sha: dict[str, list[dict]] = {}
        self.head_of_ref: dict[str, str | None] = {}
        self.pull_of_head: dict[str, dict] = {}
        for p in r.get("pulls") or []:
            self.pulls.setdefault(int(p["number"]), p)
            shas = {p.get("merge_commit_sha"), p.get("head_sha"), *(p.get("commit_shas") or [])}
            for s in shas:
                if s:
                    self.pulls_of_sha.setdefault(s, []).append(p)
            if p.get("head_ref") is not None:
                self.head_of_ref.setdefault(p["head_ref"], p.get("head_sha"))
            if p.get("head_sha"):
                self.pull_of_head.setdefault(p["head_sha"], p)
        self.deployments: dict[int, dict] = {}
        for d in r.get("deployments") or []:
            self.deployments.setdefault(int(d["id"]), d)
        self.deployments_desc = sorted(r.get("deployments") or [], key=lambda d: (d["created_at"], int(d["id"])),
                                       reverse=True)
        self._cache: dict[tuple, list] = {}
        self._lock = threading.Lock()

    def cached(self, key: tuple, build: Callable[[], list]) -> list:
        """The result of ``build()`` memoised under ``key`` (a listing's filtered, sorted order)."""
        with self._lock:
            hit = self._cache.get(key)
        if hit is not None:
            return hit
        value = build()
        with self._lock:
            if len(self._cache) > 256:  # bounded: per-query orders, not per page
                self._cache.clear()
            self._cache[key] = value
        return value


class IndexRegistry:
    """One :class:`RepoIndex` per repository full name, built on first use (thread-safe)."""

    def __init__(self) -> None:
        self._indexes: dict[str, RepoIndex] = {}
        self._lock = threading.Lock()

    def get(self, full: str, r: dict) -> RepoIndex:
        key = full.lower()
        idx = self._indexes.get(key)
        if idx is not None and idx.fingerprint == _fingerprint(r):
            return idx
        with self._lock:
            idx = self._indexes.get(key)
            if idx is None or idx.fingerprint != _fingerprint(r):
                idx = RepoIndex(r)
                self._indexes[key] = idx
            return idx


class Rendered(Sequence):
    """A sequence of scenario objects rendered only when sliced: ``paginate`` renders one page."""

    def __init__(self, items: Sequence, render: Callable[[Any], Any]):
        self._items, self._render = items, render

    def __len__(self) -> int:
        return len(self._items)

    def __getitem__(self, i):  # type: ignore[override]
        if isinstance(i, slice):
            return [self._render(x) for x in self._items[i]]
        return self._render(self._items[i])
