"""Which deployments carry a change, answered per change in O(log n) instead of a scan.

A change's ``deployments.json`` lists, per environment and in creation order, the deployments
that contain it (its sha, or a later first-parent commit), up to the first whose latest status
as of the run is ``success`` (``evidence._deployments``). Scanning every deployment of the
repository for every change is quadratic: a busy repository of a 500-repository org has ~15k
changes and ~10k deployments. Here each (repository, environment) is prepared once per run:
deployments sorted, their first-parent positions in a max segment tree ("the next deployment
at or after index i whose position is >= p"), their statuses read with one query per
repository, and each deployment's latest state computed once. The answer is the same list the
scan gave (tests/test_evidence_deploy.py compares both).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

NEG = float("-inf")


class _MaxTree:
    """First index ``j >= i`` with ``values[j] >= p`` (iterative segment tree over maxima)."""

    def __init__(self, values: list[float]) -> None:
        self.n = len(values)
        self.size = 1
        while self.size < max(self.n, 1):
            self.size *= 2
        self.t = [NEG] * (2 * self.size)
        self.t[self.size:self.size + self.n] = values
        for k in range(self.size - 1, 0, -1):
            self.t[k] = max(self.t[2 * k], self.t[2 * k + 1])

    def first_at_least(self, i: int, p: float) -> int | None:
        return self._descend(1, 0, self.size, i, p)

    def _descend(self, node: int, lo: int, hi: int, i: int, p: float) -> int | None:
        if hi <= i or self.t[node] < p:
            return None
        if hi - lo == 1:
            return lo if lo < self.n else None
        mid = (lo + hi) // 2
        found = self._descend(2 * node, lo, mid, i, p)
        return found if found is not None else self._descend(2 * node + 1, mid, hi, i, p)


class EnvDeployments:
    """The deployments of one (repository, environment) as of the run, prepared for lookups."""

    def __init__(self, items: list[dict], pos: dict[str, int], keep: Callable[[dict], bool]) -> None:
        self.items = [d for d in sorted(items, key=lambda d: (str(d.get("created_at")), d.get("id") or 0)) if keep(d)]
        self.pos = pos
        self.tree = _MaxTree([float(pos[d.get("sha")]) if d.get("sha") in pos else NEG for d in self.items])
        self.by_sha: dict[Any, list[int]] = {}
        for i, d in enumerate(self.items):
            self.by_sha.setdefault(d.get("sha"), []).append(i)

    def containing(self, sha: Any) -> Iterator[dict]:
        """The deployments that contain ``sha``, in creation order (the caller stops at a success)."""
        if sha in self.pos:
            p, j = float(self.pos[sha]), self.tree.first_at_least(0, float(self.pos[sha]))
            while j is not None:
                yield self.items[j]
                j = self.tree.first_at_least(j + 1, p)
        else:
            for j in self.by_sha.get(sha, ()):
                yield self.items[j]
