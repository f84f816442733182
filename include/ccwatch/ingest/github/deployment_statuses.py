"""The statuses of deployments, looked up by node id in GraphQL (issue #15: across repositories too).

``CcwatchDeploymentStatuses`` (50 deployments a request, by node id; node ids are global, so
``batches.py`` asks those of every repository together after their fetches) replaces
``/deployments/{id}/statuses``: raw kind ``gql_deployment_statuses`` (the Deployment node).
``nodes(ids:)`` answers in the order asked; each node is matched to its REST deployment by that
position and checked on ``environment``, ``createdAt`` and (when the REST payload is known)
``commitOid``: GraphQL has no 64-bit deployment id, and node ids are opaque (GitHub may answer a
newer id format than the one asked for).  A node that does not match, does not resolve or has more
statuses than a page goes through REST from its repository's client.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from ccwatch.common.times import parse_ts_or_none
from ccwatch.ingest.errors import SourceError
from ccwatch.ingest.github.graphql import DEPLOYMENTS_OP, GraphQL, repos_named
from ccwatch.ingest.github.queries import DEPLOYMENT_NODES, DEPLOYMENT_STATUSES_PAGE
from ccwatch.ingest.records import RawRecord

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Wanted:
    """The deployments of one repository and environment whose statuses a fetch needs: ``ids`` in
    the order asked, ``known`` the REST deployment payloads (or stored entries) with ``id``,
    ``node_id``, ``created_at`` and optionally ``sha`` / ``environment`` to look them up and check them."""

    repo: str
    environment: str | None
    ids: tuple[int, ...]
    known: tuple[dict[str, Any], ...]


#: the fields of a deployment payload the lookup and its check (:func:`_matches`) read
WANTED_FIELDS = ("id", "node_id", "created_at", "sha", "environment")


def wanted(repo: str, ids: list[int], known: list[dict[str, Any]], environment: str | None) -> Wanted:
    return Wanted(repo, environment, tuple(int(i) for i in ids),
                  tuple({k: d[k] for k in WANTED_FIELDS if k in d} for d in known if isinstance(d, dict)))


def _rest_deployment_statuses(r: Any, dep_id: int) -> RawRecord:
    sts, url, etag = r.get_all(f"/deployments/{dep_id}/statuses")
    return r.record("deployment_statuses", f"{r.repo}/deployments/{dep_id}", url, sts, etag=etag)


def _matches(node: Any, d: dict[str, Any], environment: str | None) -> bool:
    """A ``nodes(ids:)`` answer is the REST deployment ``d`` asked for at its position: same
    environment and creation time, same commit when the REST payload names it; its statuses whole."""
    if not isinstance(node, dict) or not isinstance(node.get("statuses"), dict):
        return False
    if (node["statuses"].get("pageInfo") or {}).get("hasNextPage"):
        return False
    env = d.get("environment") or environment
    created = parse_ts_or_none(node.get("createdAt"))
    return (bool(env) and node.get("environment") == env
            and created is not None and created == parse_ts_or_none(d.get("created_at"))
            and (not d.get("sha") or node.get("commitOid") == d["sha"]))


def fetch_deployment_statuses(r: Any, ids: list[int], known: list[dict[str, Any]], environment: str | None = None
                              ) -> Iterator[RawRecord]:
    """Statuses of deployments ``ids`` of ``environment`` of ONE repository (``r``): see
    :func:`deployment_statuses`."""
    yield from deployment_statuses(lambda name: GraphQL(r), {r.repo: r}, [wanted(r.repo, ids, known, environment)])


def deployment_statuses(graphql: Any, clients: dict[str, Any], asked: list[Wanted], *,
                        pool: Any = None) -> Iterator[RawRecord]:
    """Statuses of the deployments of ``asked`` (one entry per repository and environment, in any
    number of repositories): ``gql_deployment_statuses`` for those whose ``node_id`` is known,
    looked up ``DEPLOYMENT_NODES`` a request across repositories (node ids are global) and matched
    by position (:func:`_matches`); then REST ``deployment_statuses`` through the repository's client
    (``clients[repo]``, a ``client.RepoClient``) for the rest and for any node that overflows, does
    not resolve or does not match (never guessed).  ``graphql(name)``: the :class:`GraphQL` to ask
    one batch with (called in the thread that asks it), ``name`` naming the batch's repositories
    for its messages.  ``pool``: an executor whose ``map`` asks the batches at the same time (their
    answers are taken in order, so the records are the same whatever the pool)."""
    payloads: dict[tuple[str, int], dict[str, Any]] = {}
    for w in asked:
        for d in w.known:
            if d.get("id") is not None and d.get("node_id"):
                payloads.setdefault((w.repo, int(d["id"])), d)
    batch = list(dict.fromkeys((w.repo, i, w.environment) for w in asked for i in w.ids if (w.repo, i) in payloads))
    chunks = [batch[k:k + DEPLOYMENT_NODES] for k in range(0, len(batch), DEPLOYMENT_NODES)]

    def ask(chunk: list[tuple[str, int, str | None]]) -> tuple[str, list[Any]]:
        g = graphql(repos_named([repo for repo, _, _ in chunk], "deployment statuses"))
        data = g.query(DEPLOYMENTS_OP, {"ids": [str(payloads[(repo, i)]["node_id"]) for repo, i, _ in chunk],
                                        "first": DEPLOYMENT_STATUSES_PAGE})
        nodes = data.get("nodes")
        if not isinstance(nodes, list) or len(nodes) != len(chunk):
            raise SourceError(f"GitHub {g.repo}: POST {g.shown} ({DEPLOYMENTS_OP}): asked for {len(chunk)} "
                              f"node(s), got {len(nodes) if isinstance(nodes, list) else 'none'}")
        return g.record_url(DEPLOYMENTS_OP), nodes

    done: set[tuple[str, int]] = set()
    for chunk, (url, nodes) in zip(chunks, (pool.map if pool is not None else map)(ask, chunks), strict=True):
        for (repo, dep_id, env), node in zip(chunk, nodes, strict=True):
            if _matches(node, payloads[(repo, dep_id)], env):
                done.add((repo, dep_id))
                yield clients[repo].record("gql_deployment_statuses", f"{repo}/deployments/{dep_id}", url, node)
    rest = 0
    for w in asked:
        for dep_id in w.ids:
            if (w.repo, dep_id) in done:
                continue
            done.add((w.repo, dep_id))
            rest += 1
            log.debug("GitHub %s: statuses of deployment %s through REST (%s)", w.repo, dep_id,
                      "no node_id known" if (w.repo, dep_id) not in payloads
                      else "unresolved, not matching the REST deployment, or more statuses than one page")
            yield _rest_deployment_statuses(clients[w.repo], dep_id)
    total = sum(len(w.ids) for w in asked)
    if total:
        log.info("GitHub %s: statuses of %d deployment(s) in %d GraphQL request(s), %d through REST",
                 repos_named([w.repo for w in asked], "deployments"), total, len(chunks), rest)
