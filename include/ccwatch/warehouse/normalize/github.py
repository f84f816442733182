"""Raw API payloads -> rows of the normalised tables (warehouse/schema.py).

Pure functions: no I/O, no clock.  A raw record sometimes needs another record to be
normalised (a commit list needs the branch tip and ``/commits/{sha}/pulls``; a branch's
rules need their rulesets; an issue needs the ``fields`` list).  Those come through a
:class:`Context` (records of the same batch first, then whatever the caller can look up,
e.g. the warehouse's ``raw_payloads``).

:func:`normalize_batch` returns, per table, the rows to insert and the *scopes* (column
equality filters) whose existing rows they replace, so that loading the same payloads
twice yields the same rows.

Shared pieces (:class:`Context`, natural keys, user helpers) are in ``normalize_base.py``;
branch protection, rules and environments in ``normalize_protection.py``; Jira in
``normalize_jira.py``; the GitHub GraphQL kinds (``gql_*``) in ``normalize_graphql.py``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from ccwatch.ingest.records import RawRecord
from ccwatch.settings import Settings
from ccwatch.warehouse.normalize import graphql as ng
from ccwatch.warehouse.normalize import jira as nj
from ccwatch.warehouse.normalize.base import GHOST_LOGIN, Context, Lookup, split_key
from ccwatch.warehouse.normalize.base import payload_dict as _as_dict
from ccwatch.warehouse.normalize.base import payload_list as _as_list
from ccwatch.warehouse.normalize.base import user_login as _login
from ccwatch.warehouse.normalize.base import user_type as _type
from ccwatch.warehouse.normalize.jira import NormalizeError, jira_person, parse_ts
from ccwatch.warehouse.normalize.protection import classic_rule_rows, environment_row, ruleset_rule_rows

__all__ = ["Batch", "Context", "NormalizeError", "normalize_batch", "people_rows", "parse_ts", "jira_person",
           "GHOST_LOGIN", "Lookup", "split_key", "classic_rule_rows", "ruleset_rule_rows", "environment_row"]


@dataclass
class Batch:
    rows: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    scopes: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    # commits whose pr_numbers changed without their commit list: (repo, sha) -> numbers
    commit_pr_updates: dict[tuple[str, str], list[int]] = field(default_factory=dict)

    def add(self, table: str, scope: dict[str, Any], rows: Iterable[dict[str, Any]]) -> None:
        self.scopes.setdefault(table, []).append(scope)
        self.rows.setdefault(table, []).extend(rows)


# --- GitHub ---------------------------------------------------------------------


def pull_row(rec: RawRecord) -> dict[str, Any]:
    repo, num = split_key(rec.natural_key, "#")
    p = _as_dict(rec)
    if "merged_at" not in p or (p.get("merged") and not p.get("merged_at")):
        # GitHub always sends merged_at (null when unmerged): without it a merged PR would silently
        # drop out of the population, so a malformed payload fails the load instead
        raise NormalizeError(f"{rec.source} {rec.kind} {rec.natural_key}: payload has no merged_at")
    return {
        "repo": repo,
        "number": int(p.get("number", num)),
        "title": p.get("title"),
        "author_login": _login(p.get("user")),
        "author_type": _type(p.get("user")),
        "labels": [lab["name"] for lab in p.get("labels") or [] if isinstance(lab, dict)],
        "base_branch": (p.get("base") or {}).get("ref"),
        "head_sha": (p.get("head") or {}).get("sha"),
        "merge_commit_sha": p.get("merge_commit_sha"),
        "merged_at": parse_ts(p.get("merged_at")),
        "merged_by_login": _login(p.get("merged_by")),
        "html_url": p.get("html_url"),
    }


def review_rows(rec: RawRecord) -> list[dict[str, Any]]:
    repo, num = split_key(rec.natural_key, "#")
    return [
        {
            "repo": repo,
            "pr_number": int(num),
            "review_id": r["id"],
            "reviewer_login": _login(r.get("user")),
            "reviewer_type": _type(r.get("user")),
            "state": r.get("state"),
            "commit_id": r.get("commit_id"),
            "submitted_at": parse_ts(r.get("submitted_at")),
        }
        for r in _as_list(rec)
    ]


def check_rows(rec: RawRecord) -> list[dict[str, Any]]:
    repo, sha = split_key(rec.natural_key, "@")
    rows = []
    for c in _as_list(rec):
        if rec.kind == "check_runs":
            rows.append(
                {"repo": repo, "sha": sha, "kind": "check_run", "check_id": c["id"], "name": c.get("name"),
                 "status": c.get("status"), "conclusion": c.get("conclusion"),
                 "started_at": parse_ts(c.get("started_at")), "completed_at": parse_ts(c.get("completed_at")),
                 "html_url": c.get("html_url")}
            )
        else:  # commit status: state is its conclusion, created_at its completion time
            rows.append(
                {"repo": repo, "sha": sha, "kind": "status", "check_id": c["id"], "name": c.get("context"),
                 "status": None, "conclusion": c.get("state"), "started_at": None,
                 "completed_at": parse_ts(c.get("created_at")), "html_url": c.get("target_url")}
            )
    return rows


def merged_pr_numbers(pulls: Any) -> list[int]:
    """Merged PRs among ``/commits/{sha}/pulls`` (open or closed-unmerged PRs do not count)."""
    return sorted({p["number"] for p in pulls or [] if isinstance(p, dict) and p.get("merged_at")})


def first_parent_chain(commits: list[dict[str, Any]], tip: str | None) -> list[dict[str, Any]]:
    """The first-parent line from ``tip`` (default: the first listed commit), oldest first,
    limited to the commits listed (the window)."""
    by_sha = {c["sha"]: c for c in commits}
    if tip not in by_sha:
        tip = commits[0]["sha"] if commits else None
    chain: list[dict[str, Any]] = []
    seen: set[str] = set()
    while tip in by_sha and tip not in seen:
        seen.add(tip)
        c = by_sha[tip]
        chain.append(c)
        parents = c.get("parents") or []
        tip = parents[0]["sha"] if parents else None
    chain.reverse()
    return chain


def commit_rows(rec: RawRecord, ctx: Context) -> list[dict[str, Any]]:
    repo, branch = split_key(rec.natural_key, ":")
    listed = _as_list(rec)
    branch_payload = ctx.lookup("github", "branch", rec.natural_key)
    tip = ((branch_payload or {}).get("commit") or {}).get("sha") if isinstance(branch_payload, dict) else None
    rows = []
    for pos, c in enumerate(first_parent_chain(listed, tip)):
        parents = c.get("parents") or []
        commit = c.get("commit") or {}
        rows.append(
            {
                "repo": repo,
                "branch": branch,
                "sha": c["sha"],
                "position": pos,
                "parent_sha": parents[0]["sha"] if parents else None,
                "author_login": _login(c.get("author")),
                "committer_login": _login(c.get("committer")),
                "committed_at": parse_ts((commit.get("committer") or {}).get("date")),
                "message": commit.get("message"),
                "pr_numbers": merged_pr_numbers(ctx.lookup("github", "commit_pulls", f"{repo}@{c['sha']}")),
                "html_url": c.get("html_url"),
            }
        )
    return rows


def deployment_rows(rec: RawRecord) -> list[dict[str, Any]]:
    repo, env = split_key(rec.natural_key, ":")
    return [
        {
            "repo": repo,
            "deployment_id": d["id"],
            "sha": d.get("sha"),
            "ref": d.get("ref"),
            "environment": d.get("environment", env),
            "creator_login": _login(d.get("creator")),
            "creator_type": _type(d.get("creator")),
            "created_at": parse_ts(d.get("created_at")),
        }
        for d in _as_list(rec)
    ]


def deployment_status_rows(rec: RawRecord) -> list[dict[str, Any]]:
    repo, dep_id = split_key(rec.natural_key, "/deployments/")
    for s in _as_list(rec):
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
            "creator_login": _login(s.get("creator")),
            "created_at": parse_ts(s.get("created_at")),
        }
        for s in _as_list(rec)
    ]


# --- dispatch -------------------------------------------------------------------


def people_rows(settings: Settings) -> list[dict[str, Any]]:
    return [{"person": i.name, "github": i.github, "jira": i.jira} for i in settings.people.identities]


def normalize_batch(records: Iterable[RawRecord], settings: Settings, ctx: Context | None = None) -> Batch:
    """Rows for every object in ``records`` and the scopes they replace.  Within the batch the
    last record of a (source, kind, natural_key) wins; records of the batch are visible to the
    context lookups before the caller's own lookup."""
    latest: dict[tuple[str, str, str], RawRecord] = {}
    for rec in records:
        latest[(rec.source, rec.kind, rec.natural_key)] = rec
    outer = ctx or Context()

    def batch_payload(source: str, kind: str, key: str) -> Any:
        rec = latest.get((source, kind, key))
        return rec.payload if rec is not None and rec.status_code == 200 else None

    def lookup(source: str, kind: str, key: str) -> Any:
        found = batch_payload(source, kind, key)
        if (source, kind) != ("github", "commit_pulls"):
            return found if found is not None else outer.lookup(source, kind, key)
        # a commit's PRs: REST of the batch, GraphQL of the batch, then the stored REST, stored GraphQL
        if found is None and (node := batch_payload(source, "gql_commit_pulls", key)) is not None:
            found = ng.commit_pulls_payload(node, key)
        if found is None:
            found = outer.lookup(source, kind, key)
        if found is None and (node := outer.lookup(source, "gql_commit_pulls", key)) is not None:
            found = ng.commit_pulls_payload(node, key)
        return found

    cats = dict(outer.status_categories)
    status_list = lookup("jira", "statuses", "statuses")  # GET /rest/api/2/status: every status
    if isinstance(status_list, list):
        cats.update(nj.status_categories({"fields": {"status": st}} for st in status_list))
    cats.update(nj.status_categories(r.payload for r in latest.values() if r.kind == "issue"))
    c = Context(lookup=lookup, status_categories=cats)
    b = Batch()
    fields_payload = lookup("jira", "fields", "fields")
    commit_repos = {split_key(k, ":")[0] for (s, kind, k) in latest if s == "github" and kind == "commits"}
    for (source, kind, key), rec in latest.items():
        try:
            _dispatch(b, rec, c, settings, fields_payload, latest, commit_repos)
        except NormalizeError:
            raise
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise NormalizeError(f"{source} {kind} {key}: cannot normalise payload: {exc!r}") from exc
    return b


def _dispatch(b: Batch, rec: RawRecord, c: Context, settings: Settings, fields_payload: Any,
              latest: dict[tuple[str, str, str], RawRecord], commit_repos: set[str]) -> None:
    """``commit_repos``: repositories with a ``commits`` list in the batch (their commits' PRs
    are read there through the context)."""
    kind, key = rec.kind, rec.natural_key
    if rec.source == "github":
        if kind == "pull":
            row = pull_row(rec)
            b.add("pull_requests", {"repo": row["repo"], "number": row["number"]}, [row])
        elif kind == "reviews":
            repo, num = split_key(key, "#")
            b.add("reviews", {"repo": repo, "pr_number": int(num)}, review_rows(rec))
        elif kind in ("check_runs", "statuses"):
            repo, sha = split_key(key, "@")
            b.add("checks", {"repo": repo, "sha": sha, "kind": "check_run" if kind == "check_runs" else "status"},
                  check_rows(rec))
        elif kind == "commits":
            repo, branch = split_key(key, ":")
            b.add("commits", {"repo": repo, "branch": branch}, commit_rows(rec, c))
        elif kind == "commit_pulls":
            repo, sha = split_key(key, "@")
            if repo not in commit_repos:
                b.commit_pr_updates[(repo, sha)] = merged_pr_numbers(rec.payload)
        elif kind == "gql_commit_pulls":  # a REST commit_pulls of the same commit in the batch wins
            repo, sha = split_key(key, "@")
            if repo not in commit_repos and ("github", "commit_pulls", key) not in latest:
                b.commit_pr_updates[(repo, sha)] = merged_pr_numbers(ng.commit_pulls_payload(rec.payload, key))
        elif kind == "gql_pull":  # pieces the batch also has a REST record of come from that record
            for table, scope, rows in ng.gql_pull_parts(rec, lambda k, nk: ("github", k, nk) in latest):
                b.add(table, scope, rows)
        elif kind == "deployments":
            repo, env = split_key(key, ":")
            b.add("deployments", {"repo": repo, "environment": env}, deployment_rows(rec))
        elif kind == "deployment_statuses":
            repo, dep = split_key(key, "/deployments/")
            b.add("deployment_statuses", {"repo": repo, "deployment_id": int(dep)}, deployment_status_rows(rec))
        elif kind == "gql_deployment_statuses":  # a REST deployment_statuses of it in the batch wins
            repo, dep = split_key(key, "/deployments/")
            if ("github", "deployment_statuses", key) not in latest:
                b.add("deployment_statuses", {"repo": repo, "deployment_id": int(dep)},
                      ng.gql_deployment_status_rows(rec))
        elif kind == "branch_protection":
            repo, branch = split_key(key, ":")
            b.add("branch_rules", {"repo": repo, "branch": branch, "source": "classic"}, classic_rule_rows(rec))
        elif kind == "branch_rules":
            repo, branch = split_key(key, ":")
            b.add("branch_rules", {"repo": repo, "branch": branch, "source": "ruleset"}, ruleset_rule_rows(rec, c))
        elif kind == "environment":
            row = environment_row(rec)
            b.add("environments", {"repo": row["repo"], "name": split_key(key, ":")[1]}, [row])
        # repo, branch and ruleset payloads feed other rows (context) and stay raw evidence
    elif rec.source == "jira":
        if kind == "issue":
            b.add("tickets", {"key": key}, [nj.ticket_row(rec, settings, fields_payload)])
        elif kind == "issue_missing":
            if ("jira", "issue", key) not in latest:
                b.add("tickets", {"key": key}, [nj.missing_ticket_row(rec)])
        elif kind == "changelog":
            transitions, changes = nj.changelog_rows(rec, c.status_categories)
            b.add("ticket_transitions", {"key": key}, transitions)
            b.add("ticket_field_changes", {"key": key}, changes)
    else:
        raise NormalizeError(f"unknown source {rec.source!r} for {kind} {key}")
