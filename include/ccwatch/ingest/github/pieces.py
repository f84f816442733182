"""Which pieces of a GraphQL ``PullRequest`` node are whole, and which must come through REST.

A ``gql_pull`` node holds four pieces, each the evidence of one REST kind: ``pull`` (labels),
``reviews``, ``check_runs`` and ``statuses`` of the head commit.  A piece the node does not hold
whole (a nested ``hasNextPage``, a ``null`` connection, a head commit other than ``headRefOid``,
a status context created after ``mergedAt``: GraphQL gives only each context's latest status)
is fetched through REST by the connector, and the normaliser takes it from that REST record.
Both decide with :func:`pull_incomplete`, so the load finds a REST record for exactly the
pieces it will not take from the node.
"""

from __future__ import annotations

from typing import Any

from ccwatch.common.times import parse_ts

PIECES = ("pull", "reviews", "check_runs", "statuses")  # the REST kinds a gql_pull replaces


def connection_nodes(node: Any, name: str) -> tuple[list[dict[str, Any]], bool]:
    """(nodes, complete) of a connection; a missing/null connection is not complete."""
    conn = node.get(name) if isinstance(node, dict) else None
    if not isinstance(conn, dict) or not isinstance(conn.get("nodes"), list):
        return [], False
    more = bool((conn.get("pageInfo") or {}).get("hasNextPage"))
    return [n for n in conn["nodes"] if isinstance(n, dict)], not more


def head_commit(node: dict[str, Any]) -> dict[str, Any] | None:
    """``commits(last: 1)``'s commit when it is the PR's ``headRefOid``."""
    commits, _ = connection_nodes(node, "commits")
    commit = commits[-1].get("commit") if commits else None
    ok = isinstance(commit, dict) and commit.get("oid") and commit.get("oid") == node.get("headRefOid")
    return commit if ok else None


def status_contexts(commit: dict[str, Any]) -> list[dict[str, Any]] | None:
    """``status.contexts`` (``status: null``: the commit has no statuses); None when malformed."""
    status = commit.get("status")
    if status is None:
        return []
    contexts = status.get("contexts") if isinstance(status, dict) else None
    return [c for c in contexts if isinstance(c, dict)] if isinstance(contexts, list) else None


def pull_incomplete(node: dict[str, Any]) -> dict[str, str]:
    """REST kind -> why, for each piece of a PullRequest node GraphQL did not give whole
    (the connector fetches exactly these through REST)."""
    out: dict[str, str] = {}
    if not connection_nodes(node, "labels")[1]:
        out["pull"] = "labels are not complete"
    if not connection_nodes(node, "reviews")[1]:
        out["reviews"] = "reviews are not complete"
    commit = head_commit(node)
    if commit is None:
        why = f"the last commit is not headRefOid {node.get('headRefOid')}"
        return {**out, "pull": why, "check_runs": why, "statuses": why}
    suites, complete = connection_nodes(commit, "checkSuites")
    if not complete or not all(connection_nodes(s, "checkRuns")[1] for s in suites):
        out["check_runs"] = "check suites or runs are not complete"
    merged = parse_ts(node.get("mergedAt"))
    contexts = status_contexts(commit)
    if contexts is None:
        out["statuses"] = "status contexts are missing"
    for ctx in contexts or []:
        created = parse_ts((ctx or {}).get("createdAt"))
        if merged is None or created is None or created > merged:
            out["statuses"] = f"context {(ctx or {}).get('context')!r} changed after the merge"
            break
    return out
