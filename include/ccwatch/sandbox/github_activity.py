"""GitHub REST v3 double, branch history routes: the repository activity log and commit comparison.

A mixin of :class:`ccwatch.sandbox.github.GithubApi` (it relies on ``index``, ``branch_head``,
``resolve_ref`` and ``paginate``).

``GET /repos/{o}/{r}/activity`` (GitHub's ``repos/list-activities``; the ``Activity`` item of the
published OpenAPI description: ``id``, ``node_id``, ``before``, ``after``, ``ref``, ``timestamp``,
``activity_type``, ``actor`` as a simple user or null).  Filters ``ref`` (``refs/heads/B`` or
``B``), ``activity_type``, ``actor``, ``time_period`` (relative to the scenario's ``meta.as_of``),
``direction`` (default ``desc``); paged with opaque ``before``/``after`` cursors in the ``Link``
header (``rel="next"`` carries ``after``), never a ``page`` number.  The log is the repository's
optional scenario key ``activity`` (a list of ``{id, activity_type, ref, timestamp, actor, before,
after}``); without it one is derived from each branch's first-parent history: a
``branch_creation`` for the oldest commit, a ``pr_merge`` per PR merged into the branch (one for
the rebased commits of a rebase merge; ``merge_queue_merge`` when the merge queue's bot merged
it) at its ``merged_at`` by its merger, a ``push`` per other commit at its committer date by its
committer (its author when GitHub's ``web-flow`` committed it).  ``activity_status: 403`` (or
404) makes the log unreadable.

``GET /repos/{o}/{r}/compare/{base}...{head}`` (``repos/compare-commits``): ``status`` (identical,
ahead, behind, diverged), ``ahead_by``/``behind_by``/``total_commits``, ``merge_base_commit`` (the
newest common ancestor in scenario order), ``base_commit``, ``commits`` (head's commits the base
lacks, oldest first, paged with ``page``/``per_page``), ``files`` empty; an unknown ref is 404.
"""

from __future__ import annotations

import base64
from datetime import datetime, timedelta

from ccwatch.sandbox.github_http import DOCS, gh_error, not_found
from ccwatch.sandbox.http import json_response
from ccwatch.sandbox.render import node_id

NULL_SHA = "0" * 40
ACTIVITY_ID_BASE = 21_474_836_480  # 2**31 * 10: realistic 11-digit ids, past the 32-bit range
MERGE_QUEUE_BOT = "github-merge-queue[bot]"
PERIODS = {"day": 1, "week": 7, "month": 30, "quarter": 90, "year": 365}
_ACTIVITY_DOC = f"{DOCS}/repos/repos#list-repository-activities"


def _ts(text: str | None) -> datetime | None:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ") if text else None


def _cursor(i: int) -> str:
    return base64.b64encode(f"cursor:v2:{i}".encode()).decode().rstrip("=")


def _uncursor(text: str) -> int | None:
    try:
        raw = base64.b64decode(text + "=" * (-len(text) % 4)).decode()
        return int(raw.rsplit(":", 1)[1]) if raw.startswith("cursor:v2:") else None
    except (ValueError, UnicodeDecodeError):
        return None


class ActivityRoutes:
    # ------------------------------------------------------------------ derived log
    def first_parent_line(self, r: dict, branch: str) -> list[dict]:
        """The branch's first-parent commits, oldest first."""
        commits = self.index(r).commits
        sha, line, seen = self.branch_head(r, branch), [], set()
        while sha and sha in commits and sha not in seen:
            seen.add(sha)
            line.append(commits[sha])
            parents = commits[sha].get("parents") or []
            sha = parents[0] if parents else None
        return line[::-1]

    def derived_activity(self, r: dict, branch: str) -> list[dict]:
        """A plausible activity log of ``branch`` from its first-parent history (module docstring)."""
        pull_of: dict[str, dict] = {}
        for p in r.get("pulls") or []:
            if p.get("merged_at") and p.get("base", r.get("default_branch", "main")) == branch:
                for s in [*(p.get("commit_shas") or []), p.get("merge_commit_sha")]:
                    if s:
                        pull_of.setdefault(s, p)
        groups: list[tuple[dict | None, list[dict]]] = []
        for c in self.first_parent_line(r, branch):
            p = pull_of.get(c["sha"])
            if p is not None and groups and groups[-1][0] is p:
                groups[-1][1].append(c)
            else:
                groups.append((p, [c]))
        out, before = [], NULL_SHA
        for i, (p, cs) in enumerate(groups):
            last = cs[-1]
            if p is not None:
                kind = "merge_queue_merge" if p.get("merged_by") == MERGE_QUEUE_BOT else "pr_merge"
                at, actor = p["merged_at"], p.get("merged_by")
            else:
                committer = last.get("committer", last.get("author"))
                kind = "branch_creation" if i == 0 else "push"
                at = last.get("committer_date", last.get("date"))
                actor = last.get("author") if committer in (None, "web-flow") else committer
            out.append({"activity_type": kind, "ref": f"refs/heads/{branch}", "timestamp": at, "actor": actor,
                        "before": before, "after": last["sha"]})
            before = last["sha"]
        for i, e in enumerate(sorted(out, key=lambda e: e["timestamp"] or "")):
            e["id"] = ACTIVITY_ID_BASE + i * 7919
        return out

    def activity_log(self, r: dict, branch: str | None) -> list[dict]:
        if "activity" in r:
            default = f"refs/heads/{r.get('default_branch', 'main')}"
            given = [dict(e, ref=e.get("ref") or default, id=e.get("id") or ACTIVITY_ID_BASE + i * 7919)
                     for i, e in enumerate(r.get("activity") or [])]
            return [e for e in given if branch is None or e["ref"] in (f"refs/heads/{branch}", branch)]
        if branch is None:
            branch = r.get("default_branch", "main")
        return self.index(r).cached(("activity", branch), lambda: self.derived_activity(r, branch))

    # ------------------------------------------------------------------ routes
    def r_activity(self, req, ctx, full, r):
        status = r.get("activity_status")
        if status == 403:
            return gh_error(403, "Resource not accessible by integration", _ACTIVITY_DOC)
        if status == 404:
            return gh_error(404, "Not Found", _ACTIVITY_DOC)
        ref = req.arg("ref")
        branch = ref[len("refs/heads/"):] if ref and ref.startswith("refs/heads/") else ref
        rows = list(self.activity_log(r, branch))
        if req.arg("activity_type"):
            rows = [e for e in rows if e.get("activity_type") == req.arg("activity_type")]
        if req.arg("actor"):
            rows = [e for e in rows if e.get("actor") == req.arg("actor")]
        period = PERIODS.get(req.arg("time_period") or "")
        now = _ts(getattr(self, "now", None))
        if period and now is not None:
            rows = [e for e in rows if (_ts(e.get("timestamp")) or now) >= now - timedelta(days=period)]
        if req.arg("direction", "desc") not in ("asc", "desc"):
            return gh_error(422, "Validation Failed", _ACTIVITY_DOC)
        rows.sort(key=lambda e: (e.get("timestamp") or "", int(e.get("id") or 0)),
                  reverse=req.arg("direction", "desc") == "desc")
        return self._cursor_page(req, [self._activity_item(ctx, full, e) for e in rows])

    def _activity_item(self, ctx, full: str, e: dict) -> dict:
        aid = int(e["id"])
        return {"id": aid, "node_id": node_id("RepositoryActivity", aid), "before": e.get("before") or NULL_SHA,
                "after": e.get("after") or NULL_SHA, "ref": e.get("ref") or "refs/heads/main",
                "timestamp": e.get("timestamp"), "activity_type": e.get("activity_type"),
                "actor": ctx.user(e.get("actor"))}

    def _cursor_page(self, req, items: list):
        """One page of ``items`` after the ``after`` (or before the ``before``) cursor, with GitHub's
        cursor ``Link`` header."""
        from urllib.parse import parse_qsl, urlencode, urlsplit

        try:
            per_page = min(max(int(req.arg("per_page", "30")), 1), 100)
        except ValueError:
            per_page = 30
        start = 0
        if req.arg("after"):
            at = _uncursor(req.arg("after"))
            if at is None:
                return gh_error(422, "Validation Failed: invalid cursor", _ACTIVITY_DOC)
            start = at + 1
        elif req.arg("before"):
            at = _uncursor(req.arg("before"))
            if at is None:
                return gh_error(422, "Validation Failed: invalid cursor", _ACTIVITY_DOC)
            start = max(at - per_page, 0)
        chunk = items[start:start + per_page]
        pairs = [(k, v) for k, v in parse_qsl(urlsplit(req.raw_target).query, keep_blank_values=True)
                 if k not in ("after", "before", "page")]

        def link(key: str, i: int) -> str:
            return f"{req.origin}{req.path}?{urlencode(pairs + [(key, _cursor(i))])}"

        rels = []
        if start > 0:
            rels.append(f'<{link("before", start)}>; rel="prev"')
        if start + per_page < len(items):
            rels.append(f'<{link("after", start + per_page - 1)}>; rel="next"')
        return json_response(chunk, headers={"Link": ", ".join(rels)} if rels else {})

    def r_compare(self, req, ctx, full, r, basehead):
        base_ref, sep, head_ref = basehead.partition("...")
        if not sep:
            base_ref, sep, head_ref = basehead.partition("..")
        base, head = self.resolve_ref(r, base_ref), self.resolve_ref(r, head_ref)
        commits = self.index(r).commits
        if not sep or base not in commits or head not in commits:
            return not_found()
        anc_base, anc_head = self._ancestors(commits, base), self._ancestors(commits, head)
        order = self.index(r).order
        common = anc_base & anc_head
        merge_base = max(common, key=lambda s: order.get(s, -1)) if common else None
        ahead = sorted(anc_head - anc_base, key=lambda s: order.get(s, -1))
        behind = anc_base - anc_head
        status = ("identical" if base == head else "ahead" if base in anc_head else
                  "behind" if head in anc_base else "diverged")
        try:
            per_page = min(max(int(req.arg("per_page", "250")), 1), 250)
            page = max(int(req.arg("page", "1")), 1)
        except ValueError:
            per_page, page = 250, 1
        url = f"{ctx.api}/repos/{full}/compare/{basehead}"
        html = f"{ctx.html}/{full}/compare/{basehead}"
        return json_response({
            "url": url, "html_url": html, "permalink_url": html, "diff_url": f"{html}.diff",
            "patch_url": f"{html}.patch", "base_commit": ctx.commit(full, commits[base]),
            "merge_base_commit": ctx.commit(full, commits[merge_base]) if merge_base else None,
            "status": status, "ahead_by": len(ahead), "behind_by": len(behind), "total_commits": len(ahead),
            "commits": [ctx.commit(full, commits[s]) for s in ahead[(page - 1) * per_page: page * per_page]],
            "files": [],
        })

    @staticmethod
    def _ancestors(commits: dict, sha: str) -> set[str]:
        seen, stack = set(), [sha]
        while stack:
            s = stack.pop()
            if s in seen or s not in commits:
                continue
            seen.add(s)
            stack.extend(commits[s].get("parents") or [])
        return seen
