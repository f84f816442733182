"""The statuses of deployments by node id (ingest/github/deployment_statuses.py): the position check
against the REST deployment, REST for the rest, and lookups across repositories (issue #15).
Canned answers through a fake requester (tests/helpers/github_graphql_fake.py)."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
from ccwatch.common.endpoints import Endpoint
from ccwatch.ingest.github import deployment_statuses as ds
from ccwatch.ingest.github import graphql as gql
from ccwatch.ingest.github.client import RepoClient
from ccwatch.ingest.github.queries import DEPLOYMENT_NODES

from tests.helpers.github_graphql_fake import BASE, RATE, REPO, FakeRequester, repo_of


# -------------------------------------------------------------------------------- deployments
def dep_node(i: int, more: bool = False, **over) -> dict:
    return {"id": f"DE_kwDO{i}", "commitOid": "d" * 40, "environment": "production",
            "createdAt": "2026-11-03T12:00:00Z",
            "statuses": {"pageInfo": {"hasNextPage": more}, "nodes": [
                {"id": f"DES_kwDO{i}", "state": "SUCCESS", "description": "", "environmentUrl": None,
                 "logUrl": None, "createdAt": "2026-11-03T12:05:00Z", "updatedAt": "2026-11-03T12:05:00Z",
                 "creator": {"__typename": "Bot", "login": "github-actions", "id": "BOT_kgDOactions"}}]}, **over}


def rest_dep(i: int) -> dict:
    """A REST deployment as listed (ids past 2**31, as on github.com)."""
    return {"id": 4_100_000_000 + i, "node_id": f"DE_kwDO{i}", "sha": "d" * 40, "environment": "production",
            "created_at": "2026-11-03T12:00:00Z"}


def test_deployment_statuses_are_batched_by_node_id_with_rest_for_the_rest():
    deps = [rest_dep(i) for i in range(1, DEPLOYMENT_NODES + 6)]
    stored_only = {"id": 999, "created_at": "2026-11-01T00:00:00Z", "state": "in_progress"}  # no node_id
    ids = [d["id"] for d in deps] + [999]

    def answer(op, v):
        nodes = []
        for nid in v["ids"]:
            i = int(nid.removeprefix("DE_kwDO"))
            nodes.append(None if i == 3 else dep_node(i, more=(i == 4)))
        return 200, {}, {"data": {"rateLimit": RATE, "nodes": nodes}}

    rest = {f"/repos/{REPO}/deployments/{i}/statuses": [{"id": i, "state": "success"}]
            for i in (rest_dep(3)["id"], rest_dep(4)["id"], 999)}
    req = FakeRequester(answer, rest)
    recs = list(ds.fetch_deployment_statuses(repo_of(req), ids, deps + [stored_only], "production"))
    posts = req.posts("CcwatchDeploymentStatuses")
    assert [len(p["ids"]) for p in posts] == [DEPLOYMENT_NODES, 5]
    kinds = {int(r.natural_key.rsplit("/", 1)[1]): r.kind for r in recs}
    rest_ids = [rest_dep(3)["id"], rest_dep(4)["id"], 999]
    # the answers as they come, in the order asked, then the REST ones in the order asked
    assert [int(r.natural_key.rsplit("/", 1)[1]) for r in recs] == [i for i in ids if i not in rest_ids] + rest_ids
    assert kinds[rest_dep(3)["id"]] == kinds[rest_dep(4)["id"]] == kinds[999] == "deployment_statuses"
    assert kinds[rest_dep(1)["id"]] == "gql_deployment_statuses" and recs[0].payload == dep_node(1)
    assert sorted(req.gets()) == sorted(rest)


def test_one_lookup_holds_the_deployments_of_several_repositories_and_a_pool_changes_nothing():
    """(issue #15) Node ids are global: the statuses of every repository are asked 50 a request;
    each answer is matched to its repository's REST deployment, a mismatch goes through REST to
    ITS repository; asked at the same time (a pool), the records are the same, in the same order."""
    from concurrent.futures import ThreadPoolExecutor

    other = "acme/web-frontend"
    deps = {REPO: [rest_dep(i) for i in range(1, 31)], other: [rest_dep(i) for i in range(31, 61)]}

    def answer(op, v):
        nodes = []
        for nid in v["ids"]:
            i = int(nid.removeprefix("DE_kwDO"))
            nodes.append(dep_node(i, environment="staging") if i == 45 else dep_node(i))
        return 200, {}, {"data": {"rateLimit": RATE, "nodes": nodes}}

    rest = {f"/repos/{other}/deployments/{rest_dep(45)['id']}/statuses": [{"id": 45, "state": "success"}]}
    runs = []
    for pool in (None, ThreadPoolExecutor(max_workers=3)):
        req = FakeRequester(answer, rest)
        clients = {name: RepoClient(SimpleNamespace(requester=req), Endpoint(BASE, token="ghp_secret"), name)
                   for name in deps}
        asked = [ds.wanted(name, [d["id"] for d in dd], dd, "production") for name, dd in deps.items()]
        named = []

        def graphql(name, req=req, named=named):
            named.append(name)
            return gql.GraphQL(gql.Named(req, None, name))

        recs = list(ds.deployment_statuses(graphql, clients, asked, pool=pool))
        if pool is not None:
            pool.shutdown()
        assert [len(p["ids"]) for p in req.posts("CcwatchDeploymentStatuses")] == [DEPLOYMENT_NODES, 10]
        assert named[0] == f"{REPO}, {other} (deployment statuses of 2 repositories)"
        assert req.gets() == [f"/repos/{other}/deployments/{rest_dep(45)['id']}/statuses"]
        runs.append([(r.kind, r.natural_key, json.dumps(r.payload)) for r in recs])
    assert runs[0] == runs[1]
    keys = [k for _, k, _ in runs[0]]
    assert len(keys) == 60 and keys[-1] == f"{other}/deployments/{rest_dep(45)['id']}"
    assert runs[0][-1][0] == "deployment_statuses" and {kind for kind, _, _ in runs[0][:-1]} == {"gql_deployment_statuses"}
    assert keys[0] == f"{REPO}/deployments/{rest_dep(1)['id']}" and keys[30] == f"{other}/deployments/{rest_dep(31)['id']}"


@pytest.mark.parametrize("over, matches", [
    ({}, True),
    ({"id": "DE_kwDOnewFormatId"}, True),            # GitHub may answer another node-id format: by position
    ({"environment": "staging"}, False),
    ({"createdAt": "2026-11-03T12:00:01Z"}, False),
    ({"commitOid": "e" * 40}, False),
    ({"createdAt": None}, False),
])
def test_a_deployment_node_is_checked_against_the_rest_deployment_it_stands_for(over, matches):
    dep = rest_dep(1)
    req = FakeRequester(lambda op, v: (200, {}, {"data": {"rateLimit": RATE, "nodes": [dep_node(1, **over)]}}),
                        {f"/repos/{REPO}/deployments/{dep['id']}/statuses": []})
    (rec,) = ds.fetch_deployment_statuses(repo_of(req), [dep["id"]], [dep], "production")
    assert rec.kind == ("gql_deployment_statuses" if matches else "deployment_statuses")
    assert rec.natural_key == f"{REPO}/deployments/{dep['id']}"


def test_a_stored_open_deployment_is_checked_on_its_environment_time_and_commit():
    """An open deployment of the ingest state (no REST payload this run): the environment comes from
    the fetch, created_at and sha from the stored row."""
    stored = {"id": 4_100_000_001, "node_id": "DE_kwDO1", "created_at": "2026-11-03T12:00:00Z", "state": "in_progress",
              "sha": "d" * 40}
    for env, sha, kind in (("production", "d" * 40, "gql_deployment_statuses"), (None, "d" * 40, "deployment_statuses"),
                           ("production", "e" * 40, "deployment_statuses")):
        req = FakeRequester(lambda op, v: (200, {}, {"data": {"rateLimit": RATE, "nodes": [dep_node(1)]}}),
                            {f"/repos/{REPO}/deployments/{stored['id']}/statuses": []})
        (rec,) = ds.fetch_deployment_statuses(repo_of(req), [stored["id"]], [{**stored, "sha": sha}], env)
        assert rec.kind == kind, (env, sha)
