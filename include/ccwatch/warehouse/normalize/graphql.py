"""GitHub GraphQL raw kinds -> the rows their REST counterparts give (warehouse/schema.py).

Pure functions: no I/O, no clock.  The connector (``ingest/github/graphql.py``) stores
three GraphQL kinds, each the node exactly as returned for a document of
``ingest/github/queries.py``; they normalise into the SAME tables, scopes and keys as the
REST kinds they replace, so a rerun, or a later REST fetch of the same object, replaces
the rows cleanly:

* ``gql_pull`` (``owner/repo#N``, a ``CcwatchMergedPulls`` PullRequest node) -> the rows of
  ``pull`` (pull_requests), ``reviews`` and, for ``headRefOid``, ``check_runs`` and
  ``statuses`` (checks);
* ``gql_commit_pulls`` (``owner/repo@sha``, a ``CcwatchBranchHistory`` or ``CcwatchBranchHistories``
  history node) -> the ``pr_numbers`` of that commit, exactly as ``commit_pulls`` (merged PRs only);
* ``gql_deployment_statuses`` (``owner/repo/deployments/<id>``, a ``CcwatchDeploymentStatuses``
  Deployment node) -> the rows of ``deployment_statuses``.

Pieces.  A ``gql_pull`` holds four pieces: ``pull``, ``reviews``, ``check_runs``, ``statuses``.
A piece the node does not hold whole (:func:`pull_incomplete`: a nested ``hasNextPage``, a
``null`` connection, a head commit other than ``headRefOid``, a status context created after
``mergedAt``) is fetched by the connector through REST as that REST kind.  Whenever the batch
holds a REST record of a piece (any HTTP status: a 304 keeps the stored rows), the REST record
supplies it and this module neither adds nor deletes rows for it; an incomplete piece without
its REST record fails the load (:class:`NormalizeError`): a truncated list is never evidence.

GraphQL vs REST spelling (docs: GitHub GraphQL schema; API-NOTES.md):
* actors: a ``Bot``'s ``login`` lacks REST's ``[bot]`` suffix -> appended; the REST user
  ``type`` is the GraphQL ``__typename`` (User, Bot, Organization, Mannequin); ``null``
  (deleted account) and ``ghost`` give NULL exactly as REST's ``user: null``;
* enums are UPPERCASE: check run status/conclusion, commit status state and deployment status
  state are lowercased as REST has them; review state stays UPPERCASE (REST: ``APPROVED``).

Ids (issue #12: GraphQL ``Int`` is 32-bit, real ids are past 2**31; the documents select none).

* A review's ``review_id`` is ``int(fullDatabaseId)`` (``BigInt``, a string): the REST ``id``, so
  REST and GraphQL rows of one review agree.
* A commit status (``StatusContext``) and a deployment status have no id GraphQL gives as a
  number: :func:`derived_id` gives a stable positive BIGINT in ``[2**62, 2**63)`` (never a REST id:
  those are far below 2**62)::

    2**62 | (created_at epoch seconds mod 2**34) << 28 | state rank << 25 | sha256(identity)[:25 bits]

  ``identity`` is the status node ``id`` (deployment statuses) or ``<sha>/<context>`` (status
  contexts: GraphQL gives one status per context).
* A check run has only a 32-bit ``databaseId``: :func:`check_run_id` derives its key from its node
  ``id`` in the same space, ``2**62 | rank << 59 | sha256(node id)[:59 bits]``.  No time bits: the
  queries already order by the run's start first, and 59 hash bits make two runs of one repository
  sharing a key practically impossible (the primary key is ``(repo, kind, check_id)``; a 25-bit
  hash would collide about once a year in a 500-repository org).
* Payloads stored by contract revision 1 (``databaseId``, no node id) still normalise: the REST id
  they carry is used as before.

Ordering.  Warehouse queries order a commit's checks by ``(began, kind, check_id)``
(``controls/testing.py``) and a deployment's statuses by ``(created_at, status_id)``; within one
scope (a commit's check runs, its statuses, a deployment's statuses) every id comes from one
source, since the scope is replaced whole, so a derived id only breaks ties within one second.
There the rank stands in for REST's creation order: for statuses the lifecycle, pending < waiting <
queued < in_progress < success < failure = error < inactive; for check runs (two runs of one name
started in the same second: a re-run) finished green < unfinished < any other conclusion, so an
ambiguous tie never reads as a success (fail closed).  Statuses are immutable, so their ids never
change; a check run's id is stable once it has finished (an unfinished run's rank, and so its id,
changes when it finishes, and the next load replaces the commit's rows whole).

Who reported a check (``checks.app_id``/``app_slug``/``creator_login``, migration 5): a check run's
app is its check suite's ``app {databaseId slug}``; a status context's creator is its ``creator``
in REST spelling.  (r2) The PR's merge-queue events (``timelineItems``: ``AddedToMergeQueueEvent``s)
become ``merge_queue_events`` rows (migration 11), always from the node (REST has no counterpart).
"""

from __future__ import annotations

import hashlib
from calendar import timegm
from collections.abc import Callable
from datetime import datetime
from typing import Any

from ccwatch.common.times import parse_ts
from ccwatch.ingest.github.pieces import connection_nodes, head_commit, pull_incomplete, status_contexts
from ccwatch.ingest.github.queries import ASSOCIATED_PULLS
from ccwatch.ingest.records import RawRecord
from ccwatch.warehouse.normalize.base import NormalizeError, split_key, user_login, user_type

KINDS = ("gql_pull", "gql_commit_pulls", "gql_deployment_statuses")

DERIVED_BASE = 1 << 62
_RANK = {"pending": 1, "expected": 1, "waiting": 2, "queued": 3, "in_progress": 4, "success": 5,
         "failure": 6, "error": 6, "inactive": 7}
# check runs: a finished green run < an unfinished one < any other conclusion (see the module docstring)
_RUN_RANK = {"success": 1, "neutral": 1, "skipped": 1, "requested": 2, "waiting": 2, "pending": 2, "queued": 2,
             "in_progress": 2}
_RUN_RANK_OTHER = 3

InBatch = Callable[[str, str], bool]  # (REST kind, natural key) -> a record of it is in the batch
Part = tuple[str, dict[str, Any], list[dict[str, Any]]]  # (table, scope, rows) for Batch.add


# --- spelling -------------------------------------------------------------------


def rest_user(actor: Any) -> dict[str, Any] | None:
    """A GraphQL Actor as the REST user object's ``login``/``type``."""
    if not isinstance(actor, dict) or not actor.get("login"):
        return None
    login, typename = str(actor["login"]), actor.get("__typename")
    if typename == "Bot" and not login.endswith("[bot]"):
        login += "[bot]"
    return {"login": login, "type": typename}


def lower(value: Any) -> str | None:
    return value.lower() if isinstance(value, str) else value


def derived_id(identity: str, created_at: datetime | None, state: str | None) -> int:
    """Stable BIGINT for a status GraphQL gives no REST id (see the module docstring)."""
    secs = timegm(created_at.timetuple()) if created_at is not None else 0
    h = int.from_bytes(hashlib.sha256(identity.encode()).digest()[:4], "big") >> 7  # 25 bits
    return DERIVED_BASE | (secs % (1 << 34)) << 28 | _RANK.get(lower(state) or "", 0) << 25 | h


def check_run_id(run: dict[str, Any]) -> int:
    """A GraphQL check run's ``check_id``, derived from its node id and outcome (module docstring);
    a revision-1 payload's ``databaseId`` (the REST id) when it has no node id."""
    if not run.get("id"):
        if run.get("databaseId") is None:
            raise NormalizeError("github gql_pull: a check run has neither an id nor a databaseId")
        return int(run["databaseId"])
    outcome = lower(run.get("conclusion")) or lower(run.get("status")) or ""
    h = int.from_bytes(hashlib.sha256(str(run["id"]).encode()).digest()[:8], "big") >> 5  # 59 bits
    return DERIVED_BASE | _RUN_RANK.get(outcome, _RUN_RANK_OTHER) << 59 | h


def review_id(review: dict[str, Any], where: str) -> int:
    """``int(fullDatabaseId)``, the REST id (a revision-1 payload: its ``databaseId``)."""
    value = review.get("fullDatabaseId", review.get("databaseId"))
    try:
        return int(value)
    except (TypeError, ValueError):
        raise NormalizeError(f"github gql_pull {where}: a review has no fullDatabaseId ({value!r})") from None


# --- completeness ----------------------------------------------------------------


def _payload(rec: RawRecord) -> dict[str, Any]:
    if rec.status_code != 200 or not isinstance(rec.payload, dict):
        raise NormalizeError(f"{rec.source} {rec.kind} {rec.natural_key}: payload is not an object "
                             f"(HTTP {rec.status_code})")
    return rec.payload


# --- gql_pull --------------------------------------------------------------------


def gql_pull_row(repo: str, num: str, p: dict[str, Any]) -> dict[str, Any]:
    if not p.get("mergedAt"):
        raise NormalizeError(f"github gql_pull {repo}#{num}: node has no mergedAt")
    author, merged_by = rest_user(p.get("author")), rest_user(p.get("mergedBy"))
    labels, _ = connection_nodes(p, "labels")
    return {
        "repo": repo,
        "number": int(p.get("number", num)),
        "title": p.get("title"),
        "author_login": user_login(author),
        "author_type": user_type(author),
        "labels": [lab["name"] for lab in labels if lab.get("name") is not None],
        "base_branch": p.get("baseRefName"),
        "head_sha": p.get("headRefOid"),
        "merge_commit_sha": (p.get("mergeCommit") or {}).get("oid"),
        "merged_at": parse_ts(p.get("mergedAt")),
        "merged_by_login": user_login(merged_by),
        "html_url": p.get("url"),
    }


def gql_review_rows(repo: str, num: int, p: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for r in connection_nodes(p, "reviews")[0]:
        reviewer = rest_user(r.get("author"))
        rows.append({"repo": repo, "pr_number": num, "review_id": review_id(r, f"{repo}#{num}"),
                     "reviewer_login": user_login(reviewer), "reviewer_type": user_type(reviewer),
                     "state": r.get("state"), "commit_id": (r.get("commit") or {}).get("oid"),
                     "submitted_at": parse_ts(r.get("submittedAt"))})
    return rows


def gql_check_run_rows(repo: str, commit: dict[str, Any]) -> list[dict[str, Any]]:
    """The head commit's check runs, each with its suite's app (the App id and slug)."""
    sha, rows, seen = commit["oid"], [], set()
    for suite in connection_nodes(commit, "checkSuites")[0]:
        app = suite.get("app") if isinstance(suite.get("app"), dict) else {}
        for c in connection_nodes(suite, "checkRuns")[0]:
            cid = check_run_id(c)
            if cid in seen:
                continue
            seen.add(cid)
            rows.append({"repo": repo, "sha": sha, "kind": "check_run", "check_id": cid, "name": c.get("name"),
                         "status": lower(c.get("status")), "conclusion": lower(c.get("conclusion")),
                         "started_at": parse_ts(c.get("startedAt")), "completed_at": parse_ts(c.get("completedAt")),
                         "html_url": c.get("url"), "app_id": app.get("databaseId"), "app_slug": app.get("slug"),
                         "creator_login": None})
    return rows


def gql_status_rows(repo: str, commit: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per context (GraphQL gives only each context's latest status), with its creator."""
    sha, rows = commit["oid"], []
    for ctx in status_contexts(commit) or []:
        created, state = parse_ts(ctx.get("createdAt")), lower(ctx.get("state"))
        rows.append({"repo": repo, "sha": sha, "kind": "status",
                     "check_id": derived_id(f"{sha}/{ctx.get('context')}", created, state),
                     "name": ctx.get("context"), "status": None, "conclusion": state, "started_at": None,
                     "completed_at": created, "html_url": ctx.get("targetUrl"), "app_id": None, "app_slug": None,
                     "creator_login": user_login(rest_user(ctx.get("creator")))})
    return rows


def gql_pull_parts(rec: RawRecord, in_batch: InBatch) -> list[Part]:
    """(table, scope, rows) of each piece of a ``gql_pull`` that the batch has no REST record for."""
    repo, num = split_key(rec.natural_key, "#")
    p = _payload(rec)
    sha, commit = p.get("headRefOid"), head_commit(p)
    rest_pull = in_batch("pull", f"{repo}#{num}")
    todo = [x for x in ("pull", "reviews") if not in_batch(x, f"{repo}#{num}")]
    for x in ("check_runs", "statuses"):
        # head moved since the query (commit is None): the REST pull names the head and the
        # connector fetched that head's checks through REST, whatever its sha
        if not (commit is None and rest_pull) and not (sha and in_batch(x, f"{repo}@{sha}")):
            todo.append(x)
    if "pull" in todo and not p.get("mergedAt"):  # first: the reason no REST piece can make up for
        raise NormalizeError(f"github gql_pull {repo}#{num}: node has no mergedAt")
    missing = {k: why for k, why in pull_incomplete(p).items() if k in todo}
    if missing:
        raise NormalizeError(f"github gql_pull {rec.natural_key}: "
                             + "; ".join(f"{k} ({why}) but no REST {k} record in the batch" for k, why in missing.items()))
    parts: list[Part] = []
    if "pull" in todo:
        row = gql_pull_row(repo, num, p)
        parts.append(("pull_requests", {"repo": repo, "number": row["number"]}, [row]))
    if "reviews" in todo:
        parts.append(("reviews", {"repo": repo, "pr_number": int(num)}, gql_review_rows(repo, int(num), p)))
    if commit is not None and "check_runs" in todo:
        parts.append(("checks", {"repo": repo, "sha": sha, "kind": "check_run"}, gql_check_run_rows(repo, commit)))
    if commit is not None and "statuses" in todo:
        parts.append(("checks", {"repo": repo, "sha": sha, "kind": "status"}, gql_status_rows(repo, commit)))
    return parts


def gql_queue_event_rows(rec: RawRecord) -> list[dict[str, Any]] | None:
    """(r2) The PR's ``AddedToMergeQueueEvent``s: who added it to the merge queue (``enqueuer``, a
    User; else the event's ``actor`` in REST spelling); None when the node selected no timeline
    (a revision-1 node)."""
    repo, num = split_key(rec.natural_key, "#")
    p = _payload(rec)
    if not isinstance(p.get("timelineItems"), dict):
        return None
    rows = []
    for e in p["timelineItems"].get("nodes") or []:
        if not isinstance(e, dict) or not e.get("id"):
            continue  # another event type (the query asks for this one only)
        who = rest_user(e.get("actor"))
        actor = user_login(who)
        enqueuer = user_login(e.get("enqueuer")) if isinstance(e.get("enqueuer"), dict) else None
        rows.append({"repo": repo, "pr_number": int(num), "event_id": str(e["id"]),
                     "at": parse_ts(e.get("createdAt")), "enqueuer_login": enqueuer or actor,
                     "actor_login": actor, "actor_type": user_type(who)})
    return rows


# --- gql_commit_pulls --------------------------------------------------------------


def commit_pulls_payload(node: Any, key: str) -> list[dict[str, Any]]:
    """A history node's associated PRs in the shape of REST ``/commits/{sha}/pulls`` items
    (``number``, ``merged_at``, ``base.ref``), so ``merged_pr_numbers`` reads both alike."""
    if not isinstance(node, dict):
        raise NormalizeError(f"github gql_commit_pulls {key}: payload is not an object")
    conn = node.get("associatedPullRequests")
    prs, complete = connection_nodes(node, "associatedPullRequests")
    if isinstance(conn, dict) and "pageInfo" not in conn and len(prs) >= ASSOCIATED_PULLS:
        complete = False  # the document selects no pageInfo: a full page may hide more PRs
    if not complete:
        raise NormalizeError(f"github gql_commit_pulls {key}: associated pull requests are not complete "
                             f"and there is no REST commit_pulls record for the commit")
    return [{"number": pr["number"], "merged_at": pr.get("mergedAt"), "base": {"ref": pr.get("baseRefName")}}
            for pr in prs if pr.get("number") is not None]


# --- gql_deployment_statuses --------------------------------------------------------


def gql_deployment_status_rows(rec: RawRecord) -> list[dict[str, Any]]:
    """The statuses of a Deployment node (the connector matched it to the REST deployment of the
    natural key by position and checked commitOid/environment/createdAt; a revision-1 node also
    carries that deployment's ``databaseId``, checked here)."""
    repo, dep = split_key(rec.natural_key, "/deployments/")
    d = _payload(rec)
    if d.get("databaseId") is not None and int(d["databaseId"]) != int(dep):
        raise NormalizeError(f"github {rec.kind} {rec.natural_key}: node is deployment {d['databaseId']}")
    statuses, complete = connection_nodes(d, "statuses")
    if not complete:
        raise NormalizeError(f"github {rec.kind} {rec.natural_key}: statuses are not complete and there is "
                             f"no REST deployment_statuses record for the deployment")
    rows = []
    for s in statuses:
        if not (s.get("state") and s.get("id")):
            raise NormalizeError(f"github {rec.kind} {rec.natural_key}: a status has no state or id")
        created, state, creator = parse_ts(s.get("createdAt")), lower(s["state"]), rest_user(s.get("creator"))
        rows.append({"repo": repo, "deployment_id": int(dep), "status_id": derived_id(str(s["id"]), created, state),
                     "state": state, "creator_login": user_login(creator), "created_at": created})
    return rows
