"""GitHub REST payloads -> rows of the normalised tables (warehouse/schema.py).

Pure functions: no I/O, no clock.  A raw record sometimes needs another record to be
normalised (a commit list needs the branch tip and ``/commits/{sha}/pulls``): those come through
the :class:`~ccwatch.warehouse.normalize.base.Context` the batch builds (``batch.py``).
Branch protection, rules and environments are in ``protection.py``; the GraphQL kinds in
``graphql.py``; Jira in ``jira.py``.
"""

from __future__ import annotations

from typing import Any

from ccwatch.common.times import parse_ts
from ccwatch.ingest.github.history import first_parent, first_parent_chain
from ccwatch.ingest.github.repositories import branch_tip
from ccwatch.ingest.records import RawRecord
from ccwatch.warehouse.normalize.base import (
    Context,
    NormalizeError,
    payload_dict,
    payload_list,
    split_key,
    user_login,
    user_type,
)

# --- GitHub ---------------------------------------------------------------------


def pull_row(rec: RawRecord) -> dict[str, Any]:
    repo, num = split_key(rec.natural_key, "#")
    p = payload_dict(rec)
    if "merged_at" not in p or (p.get("merged") and not p.get("merged_at")):
        # GitHub always sends merged_at (null when unmerged): without it a merged PR would silently
        # drop out of the population, so a malformed payload fails the load instead
        raise NormalizeError(f"{rec.source} {rec.kind} {rec.natural_key}: payload has no merged_at")
    return {
        "repo": repo,
        "number": int(p.get("number", num)),
        "title": p.get("title"),
        "author_login": user_login(p.get("user")),
        "author_type": user_type(p.get("user")),
        "labels": [lab["name"] for lab in p.get("labels") or [] if isinstance(lab, dict)],
        "base_branch": (p.get("base") or {}).get("ref"),
        "head_sha": (p.get("head") or {}).get("sha"),
        "merge_commit_sha": p.get("merge_commit_sha"),
        "merged_at": parse_ts(p.get("merged_at")),
        "merged_by_login": user_login(p.get("merged_by")),
        "html_url": p.get("html_url"),
    }


def review_rows(rec: RawRecord) -> list[dict[str, Any]]:
    repo, num = split_key(rec.natural_key, "#")
    return [
        {
            "repo": repo,
            "pr_number": int(num),
            "review_id": r["id"],
            "reviewer_login": user_login(r.get("user")),
            "reviewer_type": user_type(r.get("user")),
            "state": r.get("state"),
            "commit_id": r.get("commit_id"),
            "submitted_at": parse_ts(r.get("submitted_at")),
        }
        for r in payload_list(rec)
    ]


def check_rows(rec: RawRecord) -> list[dict[str, Any]]:
    """Check runs (with the GitHub App that reported each: ``app.id``/``app.slug``) or commit
    statuses (with their creator's login: an app posts as its bot, any pusher may post a context)."""
    repo, sha = split_key(rec.natural_key, "@")
    rows = []
    for c in payload_list(rec):
        if rec.kind == "check_runs":
            app = c.get("app") if isinstance(c.get("app"), dict) else {}
            rows.append(
                {"repo": repo, "sha": sha, "kind": "check_run", "check_id": c["id"], "name": c.get("name"),
                 "status": c.get("status"), "conclusion": c.get("conclusion"),
                 "started_at": parse_ts(c.get("started_at")), "completed_at": parse_ts(c.get("completed_at")),
                 "html_url": c.get("html_url"), "app_id": app.get("id"), "app_slug": app.get("slug"),
                 "creator_login": None}
            )
        else:  # commit status: state is its conclusion, created_at its completion time
            rows.append(
                {"repo": repo, "sha": sha, "kind": "status", "check_id": c["id"], "name": c.get("context"),
                 "status": None, "conclusion": c.get("state"), "started_at": None,
                 "completed_at": parse_ts(c.get("created_at")), "html_url": c.get("target_url"),
                 "app_id": None, "app_slug": None, "creator_login": user_login(c.get("creator"))}
            )
    return rows


def merged_pulls(pulls: Any) -> list[tuple[int, str | None]]:
    """(number, base branch) of the merged PRs among ``/commits/{sha}/pulls`` (open or
    closed-unmerged PRs do not count), sorted."""
    return sorted({(p["number"], (p.get("base") or {}).get("ref")) for p in pulls or []
                   if isinstance(p, dict) and p.get("merged_at")}, key=lambda x: (x[0], x[1] or ""))


def merged_pr_numbers(pulls: Any, branch: str) -> list[int]:
    """Merged PRs among ``/commits/{sha}/pulls`` whose base is ``branch``.  (r2) A PR merged into
    any other branch does not cover the commit, even when the same commit later reaches
    ``branch``; a PR without a base (never in GitHub's answers) covers nothing (fail closed)."""
    return sorted({n for n, base in merged_pulls(pulls) if base == branch})


def commit_rows(rec: RawRecord, ctx: Context) -> list[dict[str, Any]]:
    """The first-parent chain of the branch from its tip through the (accumulated) listing and the
    commits the fetch added alone (raw kind ``commit``, r2: dated before the listing, pushed in
    the window), numbered oldest first."""
    repo, branch = split_key(rec.natural_key, ":")
    listed = payload_list(rec)

    def single(sha: str) -> dict[str, Any] | None:
        return _single(ctx, repo, sha)

    return [_commit_row(repo, branch, c, pos, ctx)
            for pos, c in enumerate(first_parent_chain(listed, _branch_tip(rec, ctx), single))]


def appended_commit_rows(rec: RawRecord, ctx: Context, base: tuple[str, int, str | None]) -> list[dict[str, Any]] | None:
    """The rows :func:`commit_rows` of the whole merged list would add to the stored line ``base``
    (its tip's sha, that tip's position, the first parent of its oldest commit), ``rec`` holding
    the list's new items only (warehouse/appends.py): the first-parent line from the branch's tip
    through those items down to the stored tip, numbered on.  None when tonight's line does not
    continue the stored one that way (the whole list must be normalised): the tip is neither a
    new item nor the stored tip, the walk leaves the new items before the stored tip, or the
    commit below the stored line's oldest is now known (the line reaches further down)."""
    repo, branch = split_key(rec.natural_key, ":")
    stored_tip, tip_position, below = base
    by_sha = {c.get("sha"): c for c in payload_list(rec)}
    if below is not None and (below in by_sha or _single(ctx, repo, below) is not None):
        return None
    sha, line = _branch_tip(rec, ctx), []
    if sha is None:  # the whole list's line then starts at its newest commit
        return None
    while sha != stored_tip:
        c = by_sha.pop(sha, None)  # popped: a loop is not a line
        if c is None:
            return None
        line.append(c)
        sha = first_parent(c)
    return [_commit_row(repo, branch, c, tip_position + 1 + i, ctx) for i, c in enumerate(reversed(line))]


def _branch_tip(rec: RawRecord, ctx: Context) -> str | None:
    """The production branch's tip: the repository's GraphQL node (stop 31, asked every night), else
    REST's branch (a warehouse from before; REST's branch is now asked only for its flag, where GitHub
    would not give the flag in the node)."""
    repo, branch = split_key(rec.natural_key, ":")
    tip = branch_tip(ctx.lookup("github", "gql_repository", repo), branch)
    if tip is not None:
        return tip
    branch_payload = ctx.lookup("github", "branch", rec.natural_key)
    return ((branch_payload or {}).get("commit") or {}).get("sha") if isinstance(branch_payload, dict) else None


def _single(ctx: Context, repo: str, sha: str) -> dict[str, Any] | None:
    found = ctx.lookup("github", "commit", f"{repo}@{sha}")
    return found if isinstance(found, dict) else None


def _commit_row(repo: str, branch: str, c: dict[str, Any], position: int, ctx: Context) -> dict[str, Any]:
    parents = c.get("parents") or []
    commit = c.get("commit") or {}
    return {
        "repo": repo,
        "branch": branch,
        "sha": c["sha"],
        "position": position,
        "parent_sha": parents[0]["sha"] if parents else None,
        "author_login": user_login(c.get("author")),
        "committer_login": user_login(c.get("committer")),
        "committed_at": parse_ts((commit.get("committer") or {}).get("date")),
        "message": commit.get("message"),
        "pr_numbers": merged_pr_numbers(ctx.lookup("github", "commit_pulls", f"{repo}@{c['sha']}"), branch),
        "html_url": c.get("html_url"),
    }


def deployment_rows(rec: RawRecord) -> list[dict[str, Any]]:
    repo, env = split_key(rec.natural_key, ":")
    return [
        {
            "repo": repo,
            "deployment_id": d["id"],
            "sha": d.get("sha"),
            "ref": d.get("ref"),
            "environment": d.get("environment", env),
            "creator_login": user_login(d.get("creator")),
            "creator_type": user_type(d.get("creator")),
            "created_at": parse_ts(d.get("created_at")),
        }
        for d in payload_list(rec)
    ]


def deployment_status_rows(rec: RawRecord) -> list[dict[str, Any]]:
    repo, dep_id = split_key(rec.natural_key, "/deployments/")
    for s in payload_list(rec):
        if not (isinstance(s, dict) and s.get("state")):
            # a status without a state would make a deployment look never-deployed (and e.g. an
            # approval given after it look timely): fail the load rather than guess
            raise NormalizeError(f"{rec.source} {rec.kind} {rec.natural_key}: a status has no state")
    return [
        {
            "repo": repo,
            "deployment_id": int(dep_id),
            "status_id": s["id"],
            "state": s["state"],
            "creator_login": user_login(s.get("creator")),
            "created_at": parse_ts(s.get("created_at")),
        }
        for s in payload_list(rec)
    ]


NULL_SHA = "0" * 40


def _sha(value: Any) -> str | None:
    return value if isinstance(value, str) and value and value != NULL_SHA else None


def activity_rows(rec: RawRecord) -> list[dict[str, Any]]:
    """(r2) The entries of ``GET /activity?ref=<branch>`` that are about the branch (a server that
    ignored ``ref`` cannot attribute another branch's force push to it)."""
    repo, branch = split_key(rec.natural_key, ":")
    rows = []
    for e in payload_list(rec):
        if not isinstance(e, dict) or e.get("ref") not in (f"refs/heads/{branch}", branch):
            continue
        if e.get("id") is None or not e.get("activity_type") or parse_ts(e.get("timestamp")) is None:
            # an entry without id, type or time cannot place a commit in time nor name an event
            raise NormalizeError(f"{rec.source} {rec.kind} {rec.natural_key}: an entry has no id, activity_type "
                                 f"or timestamp")
        rows.append({"repo": repo, "branch": branch, "activity_id": int(e["id"]), "activity_type": e["activity_type"],
                     "at": parse_ts(e.get("timestamp")), "actor_login": user_login(e.get("actor")),
                     "actor_type": user_type(e.get("actor")), "before_sha": _sha(e.get("before")),
                     "after_sha": _sha(e.get("after"))})
    return rows


def activity_read_row(rec: RawRecord) -> dict[str, Any]:
    """Whether the activity log could be read: its HTTP status and, when not, GitHub's message."""
    repo, branch = split_key(rec.natural_key, ":")
    msg = rec.payload.get("message") if isinstance(rec.payload, dict) else None
    return {"repo": repo, "branch": branch, "status_code": int(rec.status_code),
            "detail": None if rec.status_code == 200 else f"HTTP {rec.status_code}" + (f": {msg}" if msg else "")}
