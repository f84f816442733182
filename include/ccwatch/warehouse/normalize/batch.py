"""A batch of raw records -> the rows of every normalised table, and the scopes they replace.

:func:`normalize_batch` returns, per table, the rows to insert and the *scopes* (column
equality filters) whose existing rows they replace, so that loading the same payloads twice
yields the same rows.  Records of the batch are visible to the context lookups before the
caller's own lookup (the warehouse's ``raw_payloads``).  Pure: no I/O, no clock.

:func:`normalize_chunk` normalises one bounded chunk of a larger load (warehouse/store.py): the
caller's context already sees the whole load (its records are in ``raw_payloads``), and what a
normaliser asks about the rest of the load (is there a REST record of this piece, a commit list of
this repository) is answered by the caller's :class:`LoadView`, never by the chunk alone, so a
chunk boundary cannot change a row.  Each row is tagged with its record's position in the load,
so the caller can let the last row win on a duplicate key exactly as one batch does.
"""

from __future__ import annotations

from collections.abc import Container, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from ccwatch.ingest.records import RawRecord
from ccwatch.settings import Settings
from ccwatch.warehouse.normalize import graphql as ng
from ccwatch.warehouse.normalize import jira as nj
from ccwatch.warehouse.normalize.base import Context, NormalizeError, split_key
from ccwatch.warehouse.normalize.github import (
    activity_read_row,
    activity_rows,
    appended_commit_rows,
    check_rows,
    commit_rows,
    deployment_rows,
    deployment_status_rows,
    merged_pulls,
    pull_row,
    review_rows,
)
from ccwatch.warehouse.normalize.protection import classic_rule_rows, environment_row, ruleset_rule_rows


@dataclass
class Batch:
    rows: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    scopes: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    # commits whose PRs were asked again without their branch's commit list: (repo, sha) ->
    # [(number, base branch)] of the merged PRs; the load keeps those into the stored row's branch
    commit_pr_updates: dict[tuple[str, str], list[tuple[int, str | None]]] = field(default_factory=dict)
    # the same for commits of branches whose list the load appends to (warehouse/appends.py): the
    # PRs as the whole list normalised again would read them, for those branches' rows
    appended_pr_updates: dict[tuple[str, str], list[tuple[int, str | None]]] = field(default_factory=dict)
    # normalize_chunk only: per table, the load position of the record each row came from
    positions: dict[str, list[int]] = field(default_factory=dict)
    position: int | None = None

    def add(self, table: str, scope: dict[str, Any] | None, rows: Iterable[dict[str, Any]]) -> None:
        """``rows`` replace the stored rows of ``scope`` (None: replace nothing, rows added on top)."""
        if scope is not None:
            self.scopes.setdefault(table, []).append(scope)
        rows = list(rows)
        self.rows.setdefault(table, []).extend(rows)
        if self.position is not None:
            self.positions.setdefault(table, []).extend([self.position] * len(rows))


@dataclass(frozen=True)
class LoadView:
    """What a chunk sees of the whole load it belongs to.

    ``keys``: the (source, kind, natural_key) of every record the load normalises (its 304s
    excluded, as in one batch); ``commit_repos``: the repositories with a ``commits`` list in it;
    ``fields_payload``: Jira's field list as the context resolves it; ``appended``: the lists the
    load appends to (warehouse/appends.py), key -> the stored line under a branch's commits, None
    for the other lists: their records hold the new items only."""

    keys: Container[tuple[str, str, str]]
    commit_repos: set[str]
    fields_payload: Any = None
    appended: Mapping[tuple[str, str, str], Any] = field(default_factory=dict)


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
    commit_repos = commit_list_repos(latest)
    for rec in latest.values():
        _dispatch_one(b, rec, c, settings, fields_payload, latest, commit_repos, {}, set())
    return b


def commit_list_repos(keys: Iterable[tuple[str, str, str]]) -> set[str]:
    """The repositories with a ``commits`` list among these record keys."""
    return {split_key(k, ":")[0] for (s, kind, k) in keys if s == "github" and kind == "commits"}


def normalize_chunk(records: Iterable[tuple[int, RawRecord]], settings: Settings, ctx: Context,
                    view: LoadView) -> Batch:
    """Rows and scopes of one chunk of a load: ``records`` are (position in the load, record),
    one record per (source, kind, natural_key) of the load; ``ctx`` sees the whole load (its
    lookup and status categories); ``view`` answers what one batch would ask its own records.
    ``Batch.positions`` tags every row with its record's position."""
    b = Batch()
    appended_repos = set(appended_branches(view.appended))
    for position, rec in records:
        b.position = position
        _dispatch_one(b, rec, ctx, settings, view.fields_payload, view.keys, view.commit_repos, view.appended,
                      appended_repos)
    b.position = None
    return b


def appended_branches(appended: Iterable[tuple[str, str, str]]) -> dict[str, set[str]]:
    """repository -> its branches whose commits the load appends to (``LoadView.appended``)."""
    out: dict[str, set[str]] = {}
    for source, kind, key in appended:
        if (source, kind) == ("github", "commits"):
            repo, branch = split_key(key, ":")
            out.setdefault(repo, set()).add(branch)
    return out


def _dispatch_one(b: Batch, rec: RawRecord, c: Context, settings: Settings, fields_payload: Any,
                  latest: Container[tuple[str, str, str]], commit_repos: set[str],
                  appended: Mapping[tuple[str, str, str], Any], appended_repos: Container[str]) -> None:
    try:
        _dispatch(b, rec, c, settings, fields_payload, latest, commit_repos, appended, appended_repos)
    except NormalizeError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise NormalizeError(f"{rec.source} {rec.kind} {rec.natural_key}: cannot normalise payload: {exc!r}") from exc


def _dispatch(b: Batch, rec: RawRecord, c: Context, settings: Settings, fields_payload: Any,
              latest: Container[tuple[str, str, str]], commit_repos: set[str],
              appended: Mapping[tuple[str, str, str], Any], appended_repos: Container[str]) -> None:
    """``commit_repos``: repositories with a ``commits`` list in the batch (their commits' PRs
    are read there through the context); ``appended``: ``LoadView.appended``, ``appended_repos``
    the repositories of its commits lists."""
    kind, key = rec.kind, rec.natural_key
    on_top = (rec.source, kind, key) in appended  # rows added to the stored ones, none replaced
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
            rows = appended_commit_rows(rec, c, appended[(rec.source, kind, key)]) if on_top else None
            if rows is not None:
                b.add("commits", None, rows)
            else:  # the line from scratch, over the whole merged list
                whole = replace(rec, payload=c.lookup(rec.source, kind, key)) if on_top else rec
                b.add("commits", {"repo": repo, "branch": branch}, commit_rows(whole, c))
        elif kind in ("commit_pulls", "gql_commit_pulls"):
            repo, sha = split_key(key, "@")
            if repo not in commit_repos:
                if kind == "commit_pulls":
                    b.commit_pr_updates[(repo, sha)] = merged_pulls(rec.payload)
                elif ("github", "commit_pulls", key) not in latest:  # a REST commit_pulls of it in the batch wins
                    b.commit_pr_updates[(repo, sha)] = merged_pulls(ng.commit_pulls_payload(rec.payload, key))
            elif repo in appended_repos:  # as the whole list's rows read the commit's PRs
                b.appended_pr_updates[(repo, sha)] = merged_pulls(c.lookup("github", "commit_pulls", key))
        elif kind == "gql_pull":  # pieces the batch also has a REST record of come from that record
            for table, scope, rows in ng.gql_pull_parts(rec, lambda k, nk: ("github", k, nk) in latest):
                b.add(table, scope, rows)
            queued = ng.gql_queue_event_rows(rec)  # (r2) who added it to the merge queue: the node only
            if queued is not None:
                repo, num = split_key(key, "#")
                b.add("merge_queue_events", {"repo": repo, "pr_number": int(num)}, queued)
        elif kind == "deployments":
            repo, env = split_key(key, ":")
            b.add("deployments", None if on_top else {"repo": repo, "environment": env}, deployment_rows(rec))
        elif kind == "deployment_statuses":
            repo, dep = split_key(key, "/deployments/")
            b.add("deployment_statuses", {"repo": repo, "deployment_id": int(dep)}, deployment_status_rows(rec))
        elif kind == "gql_deployment_statuses":  # a REST deployment_statuses of it in the batch wins
            repo, dep = split_key(key, "/deployments/")
            if ("github", "deployment_statuses", key) not in latest:
                b.add("deployment_statuses", {"repo": repo, "deployment_id": int(dep)},
                      ng.gql_deployment_status_rows(rec))
        elif kind == "activity":  # (r2) 403/404: unreadable, the stored entries stay as evidence
            repo, branch = split_key(key, ":")
            if rec.status_code == 200:
                b.add("branch_activity", None if on_top else {"repo": repo, "branch": branch}, activity_rows(rec))
            b.add("branch_activity_reads", {"repo": repo, "branch": branch}, [activity_read_row(rec)])
        elif kind == "branch_protection":
            repo, branch = split_key(key, ":")
            b.add("branch_rules", {"repo": repo, "branch": branch, "source": "classic"}, classic_rule_rows(rec))
        elif kind == "branch_rules":
            repo, branch = split_key(key, ":")
            b.add("branch_rules", {"repo": repo, "branch": branch, "source": "ruleset"}, ruleset_rule_rows(rec, c))
        elif kind == "environment":
            row = environment_row(rec)
            b.add("environments", {"repo": row["repo"], "name": split_key(key, ":")[1]}, [row])
        # repo, branch, ruleset and single commit payloads feed other rows (context) and stay raw evidence
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
