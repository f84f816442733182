"""The GraphQL double's per-repository index and value helpers: times and enums as GitHub spells
them (shared by the API and its node resolvers; cursors are in ``github_graphql_exec``)."""

from __future__ import annotations

import bisect
from datetime import UTC, datetime
from functools import cached_property

from ccwatch.sandbox.render import check_suite_id


def iso(t: str | None) -> str | None:
    """GitHub's DateTime: ISO-8601 UTC, seconds, ``Z``."""
    if not t or (len(t) == 20 and t.endswith("Z")):
        return t
    return datetime.fromisoformat(t.replace("Z", "+00:00")).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def upper(v: str | None) -> str | None:
    return v.upper() if isinstance(v, str) else v


def pull_updated(p: dict) -> str:
    return p.get("updated_at") or max(x for x in (p["created_at"], p.get("closed_at"), p.get("merged_at")) if x)


def pull_state(p: dict) -> str:
    if p.get("merged_at"):
        return "MERGED"
    state = p.get("state") or ("closed" if p.get("closed_at") else "open")
    return state.upper()


def fingerprint(r: dict) -> tuple:
    """Identity and size of the lists an index is built from: a changed scenario is re-indexed."""
    return tuple((id(x), len(x)) for x in (r.get(k) or () for k in ("commits", "pulls", "deployments",
                                                                        "reviews", "check_runs", "statuses")))


class RepoIndex:
    """Lookups over one scenario repository, each built once on first use."""

    def __init__(self, full: str, r: dict, gh):
        self.full, self.r, self.gh = full, r, gh
        self.fingerprint = fingerprint(r)
        self._cache: dict = {}

    def _memo(self, key, build):
        found = self._cache.get(key)
        if found is None:
            found = self._cache.setdefault(key, build())
        return found

    @cached_property
    def commits(self) -> dict[str, dict]:
        return {c["sha"]: c for c in self.r.get("commits") or []}

    @cached_property
    def order(self) -> dict[str, int]:
        return {c["sha"]: i for i, c in enumerate(self.r.get("commits") or [])}

    @cached_property
    def pull_groups(self) -> dict[tuple[str, str], list[dict]]:
        groups: dict[tuple[str, str], list[dict]] = {}
        default = self.r.get("default_branch", "main")
        for p in self.r.get("pulls") or []:
            groups.setdefault((pull_state(p), p.get("base", default)), []).append(p)
        return groups

    @cached_property
    def prs_by_sha(self) -> dict[str, list[dict]]:
        """Per API-NOTES: a merge/squash commit lists its PR, each commit of a rebase merge lists its PR."""
        out: dict[str, list[dict]] = {}
        for p in self.r.get("pulls") or []:
            shas = {p.get("merge_commit_sha"), p.get("head_sha"), *(p.get("commit_shas") or [])}
            for sha in shas - {None}:
                out.setdefault(sha, []).append(p)
        for prs in out.values():
            prs.sort(key=lambda p: (p["created_at"], int(p["number"])))
        return out

    def pulls(self, states: tuple, base: str | None, order: tuple[str, str]) -> tuple[list[dict], dict[int, int]]:
        def build():
            rows = [p for (st, b), ps in self.pull_groups.items() for p in ps
                    if (not states or st in states) and (base is None or b == base)]
            key = pull_updated if order[0] == "UPDATED_AT" else (lambda p: p["created_at"])
            rows.sort(key=lambda p: (key(p), int(p["number"])), reverse=order[1] == "DESC")
            return rows, {int(p["number"]): i for i, p in enumerate(rows)}
        return self._memo(("pulls", states, base, order), build)

    def commit(self, sha: str) -> dict | None:
        c = self.commits.get(sha)
        if c is None:
            c = self._memo(("synthetic", sha), lambda: self.gh._synthetic_commit(self.r, sha) or False) or None
        return c

    def head(self, branch: str) -> str | None:
        return self._memo(("head", branch), lambda: self.gh.branch_head(self.r, branch) or False) or None

    def history(self, start: str) -> tuple[list[str], list[str]]:
        """All commits reachable from ``start`` in the REST ``/commits`` order (newest first), and
        their committed dates ascending (for ``since``/``until`` by bisection)."""
        def build():
            seen, stack = set(), [start]
            while stack:
                sha = stack.pop()
                if sha in seen or sha not in self.commits:
                    continue
                seen.add(sha)
                stack.extend(self.commits[sha].get("parents", []))
            rows = sorted(seen, key=lambda s: (self.committed(self.commits[s]), self.order[s]), reverse=True)
            return rows, [self.committed(self.commits[s]) for s in reversed(rows)]
        return self._memo(("history", start), build)

    @staticmethod
    def committed(c: dict) -> str:
        return iso(c.get("committer_date") or c["date"])

    def suites(self, sha: str) -> list[tuple[int, object, list[dict]]]:
        def build():
            suites: dict[int, tuple[int, object, list[dict]]] = {}
            for cr in (self.r.get("check_runs") or {}).get(sha, []):
                sid = check_suite_id(self.full, sha, cr)
                suites.setdefault(sid, (sid, cr.get("app", "github-actions"), []))[2].append(cr)
            for _, _, runs in suites.values():
                runs.sort(key=lambda c: int(c["id"]))
            return list(suites.values())
        return self._memo(("suites", sha), build)

    def latest_statuses(self, sha: str) -> list[dict]:
        def build():
            rows = sorted((self.r.get("statuses") or {}).get(sha, []), key=lambda s: (s["created_at"], int(s["id"])),
                          reverse=True)
            latest: dict[str, dict] = {}
            for s in rows:
                latest.setdefault(s.get("context", "default"), s)
            return list(latest.values())
        return self._memo(("statuses", sha), build)

    def merged_count(self, base: str, lo: str, hi: str) -> int:
        """PRs merged into ``base`` with ``lo <= merged_at <= hi`` (ISO-8601 UTC strings), by bisection."""
        times = self._memo(("merged", base), lambda: sorted(
            iso(p["merged_at"]) for p in self.pull_groups.get(("MERGED", base), [])))
        return bisect.bisect_right(times, hi) - bisect.bisect_left(times, lo)

    def reviews(self, n: int) -> list[dict]:
        return self._memo(("reviews", n), lambda: sorted(
            (self.r.get("reviews") or {}).get(str(n), []), key=lambda rv: (rv.get("submitted_at") or "9999", int(rv["id"]))))
