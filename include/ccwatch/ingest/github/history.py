"""The production branch's first-parent line: the one walker every stage uses.

A branch's history as CONTROLS.md sees it is the first-parent line from the tip: each merge or
squash commit of a PR, each direct push.  The REST commits listing gives commits in ``git log``
order (all parents); the fetch walks the line to know which commits' PRs to ask for and whether
an incremental listing reached the stored tip; the load walks it to number the commits
(``position``).

(r2) The listing is bounded by the committer date (``since``), which whoever made the commit
writes: a commit dated before the window but pushed inside it is not listed.  The fetch
therefore completes the line by push time (:func:`complete_line`): a first parent missing from
the listing is fetched alone (raw kind ``commit``) until the walk reaches the branch's state at
the window start as the activity log shows it (``boundary``, see ``ingest/github/activity.py``),
and the load walks the listing and those single commits alike (:func:`first_parent_chain` with a
``lookup``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

Lookup = Callable[[str], "dict[str, Any] | None"]


def walk_first_parents(by_sha: dict[Any, dict[str, Any]], tip: str | None,
                       lookup: Lookup | None = None) -> Iterator[str]:
    """Shas from ``tip`` down the first-parent line: every commit known (``by_sha``, else
    ``lookup(sha)``), then the first parent that is not known, if any; a loop ends the walk."""
    seen: set[str] = set()
    sha = tip
    while sha and sha not in seen:
        yield sha
        seen.add(sha)
        commit = by_sha.get(sha)
        if commit is None and lookup is not None:
            commit = lookup(sha)
        if commit is None:
            return
        sha = first_parent(commit)


def first_parent(commit: dict[str, Any]) -> str | None:
    parents = commit.get("parents") or []
    first = parents[0] if parents else None
    return first.get("sha") if isinstance(first, dict) else None


def _by_sha(commits: list[dict[str, Any]]) -> dict[Any, dict[str, Any]]:
    return {c.get("sha"): c for c in commits}


def first_parent_chain(commits: list[dict[str, Any]], tip: str | None,
                       lookup: Lookup | None = None) -> list[dict[str, Any]]:
    """The first-parent line from ``tip`` (default: the first listed commit), oldest first,
    limited to the commits listed and those ``lookup`` knows (the single commits the fetch
    added to the listing)."""
    by_sha = _by_sha(commits)
    known: dict[str, dict[str, Any]] = {}

    def find(sha: str) -> dict[str, Any] | None:
        found = by_sha.get(sha)
        if found is None and lookup is not None:
            found = lookup(sha)
            if isinstance(found, dict) and found.get("sha") == sha:
                known[sha] = found
            else:
                found = None
        return found

    if tip is None or find(tip) is None:
        tip = commits[0]["sha"] if commits else None
    shas = list(walk_first_parents(by_sha, tip, find))  # the walk looks each sha up after yielding it
    return [by_sha.get(s) or known[s] for s in shas if s in by_sha or s in known][::-1]


def reaches(commits: list[dict[str, Any]], tip: str | None, target: str | None) -> bool:
    """The first-parent line from ``tip`` through ``commits`` reaches ``target``."""
    return bool(target) and target in walk_first_parents(_by_sha(commits), tip)


def line_down_to(commits: list[dict[str, Any]], tip: str | None, target: str | None) -> list[str]:
    """The first-parent shas from ``tip`` down to ``target`` (inclusive), listed commits only."""
    by_sha, out = _by_sha(commits), []
    for sha in walk_first_parents(by_sha, tip):
        if sha not in by_sha:
            break
        out.append(sha)
        if sha == target:
            break
    return out


class LineTooLong(Exception):
    """The walk needed more single commits than allowed (the fetch turns it into a SourceError)."""

    def __init__(self, fetched: int, at: str) -> None:
        super().__init__(f"{fetched} single commits fetched, still not at the boundary (next: {at})")
        self.fetched, self.at = fetched, at


def complete_line(listed: list[dict[str, Any]], tip: str | None, boundary: set[str],
                  fetch_one: Callable[[str], dict[str, Any] | None] | None, cap: int,
                  before_first_fetch: Callable[[], None] | None = None) -> tuple[list[dict[str, Any]], list[str]]:
    """The first-parent line from ``tip``, oldest first, and the shas fetched alone for it.

    The walk takes every listed commit.  A first parent missing from the listing is fetched alone
    (``fetch_one``) until the walk has passed a sha of ``boundary`` (the branch held it at the
    window start, or the last load stored it): below that the listing's committer-date window is
    kept.  Without any boundary (no activity log and no stored tip: a first run) only the tip is
    fetched alone.  The walk ends at a root commit, a loop, or a commit ``fetch_one`` cannot give.
    ``before_first_fetch`` runs once, before the first single fetch (it may add to ``boundary``,
    e.g. the merge base of the branch's state at the window start and the tip).  More than
    ``cap`` single fetches raise :class:`LineTooLong`."""
    by_sha = _by_sha(listed)
    line: list[dict[str, Any]] = []
    fetched: list[str] = []
    seen: set[str] = set()
    sha = tip
    prepared = passed = False
    while sha and sha not in seen:
        seen.add(sha)
        passed = passed or sha in boundary
        commit = by_sha.get(sha)
        if commit is None:
            if fetch_one is None or passed or (not boundary and sha != tip):
                break
            if not prepared:
                prepared = True
                if before_first_fetch is not None:
                    before_first_fetch()
                if sha in boundary:
                    break
            if len(fetched) >= cap:
                raise LineTooLong(len(fetched), sha)
            commit = fetch_one(sha)
            fetched.append(sha)
            if commit is None:
                break
        line.append(commit)
        sha = first_parent(commit)
    return line[::-1], fetched
