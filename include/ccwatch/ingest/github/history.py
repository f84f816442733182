"""The production branch's first-parent line: the one walker every stage uses.

A branch's history as CONTROLS.md sees it is the first-parent line from the tip: each merge or
squash commit of a PR, each direct push.  The REST commits listing gives commits in ``git log``
order (all parents); the fetch walks the line to know which commits' PRs to ask for and whether
an incremental listing reached the stored tip; the load walks it to number the commits
(``position``).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any


def walk_first_parents(by_sha: dict[Any, dict[str, Any]], tip: str | None) -> Iterator[str]:
    """Shas from ``tip`` down the first-parent line: every listed commit (``by_sha``), then the
    first parent that is not listed, if any; a loop ends the walk."""
    seen: set[str] = set()
    sha = tip
    while sha and sha not in seen:
        yield sha
        seen.add(sha)
        commit = by_sha.get(sha)
        if commit is None:
            return
        parents = commit.get("parents") or []
        sha = parents[0].get("sha") if parents else None


def _by_sha(commits: list[dict[str, Any]]) -> dict[Any, dict[str, Any]]:
    return {c.get("sha"): c for c in commits}


def first_parent_chain(commits: list[dict[str, Any]], tip: str | None) -> list[dict[str, Any]]:
    """The first-parent line from ``tip`` (default: the first listed commit), oldest first,
    limited to the commits listed (the window)."""
    by_sha = _by_sha(commits)
    if tip not in by_sha:
        tip = commits[0]["sha"] if commits else None
    return [by_sha[s] for s in walk_first_parents(by_sha, tip) if s in by_sha][::-1]


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
