"""The commits' PRs and the deployments' statuses asked org-wide after the repositories' fetches
(issue #15, ``ingest/github/batches.py``).

Through the API double and the real clients, on the demo org (two repositories with production and
staging deployments): one ``CcwatchBranchHistories`` request and one ``CcwatchDeploymentStatuses``
lookup hold both repositories; the staged records are those each repository asked alone before;
the load refuses batches that do not answer the repositories' current fetch, or none at all; a
failing lookup fails the ingest with its marker, naming the repositories, and nothing is loaded.
(The search-lag guard, which now runs in the batches: tests/integration/pipeline/test_nightly_equals_full.py.)
"""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path

import pytest
from ccwatch import pipeline as p
from ccwatch.common.endpoints import Endpoint
from ccwatch.common.errors import StageError
from ccwatch.common.paths import staging_dir
from ccwatch.common.times import parse_as_of
from ccwatch.demo_env import DEMO_AUTH
from ccwatch.ingest import staging
from ccwatch.ingest.errors import SourceError
from ccwatch.ingest.github.batches import read_deferred
from ccwatch.ingest.records import read_staging
from ccwatch.sandbox import SandboxServer
from ccwatch.settings import load_settings

from tests.helpers import harness
from tests.helpers.github_fetch import fetch_github
from tests.helpers.paths import CONFIG, DEMO_SCENARIO

D1 = parse_as_of("2026-11-25")
PAY, WEB = "acme/payments-api", "acme/web-frontend"
OP, HISTORIES = "CcwatchDeploymentStatuses", "CcwatchBranchHistories"
KINDS = ("gql_deployment_statuses", "deployment_statuses", "gql_commit_pulls", "commit_pulls")


def scenario() -> dict:
    s = json.loads(DEMO_SCENARIO.read_text(encoding="utf-8"))
    s["auth"] = dict(DEMO_AUTH)
    return s


@pytest.fixture(scope="module")
def settings():
    return load_settings(str(CONFIG))


def endpoints(server: SandboxServer) -> tuple[Endpoint, Endpoint]:
    ep = harness.endpoints(server)
    return ep["github"], ep["jira"]


def comparable(records) -> set[tuple]:
    return {(r.kind, r.natural_key, r.status_code, json.dumps(r.payload, sort_keys=True)) for r in records
            if r.kind in KINDS}


@pytest.fixture(scope="module")
def night(settings, tmp_path_factory):
    """The demo org's first night through ``ingest_github``, and the same night fetched one
    repository at a time as before (each asking its own statuses)."""
    home = tmp_path_factory.mktemp("org-wide")
    with SandboxServer(scenario()) as server:
        gh, _ = endpoints(server)
        p.ingest_github(settings, gh, D1, home)
        requests = list(server.requests)
        server.requests.clear()
        alone = list(fetch_github(settings, gh, D1))
        alone_requests = list(server.requests)
    return home, requests, alone, alone_requests


def posts(requests, op=OP) -> list[dict]:
    return [q for q in requests if (q.get("graphql") or {}).get("operationName") == op]


def test_one_lookup_holds_the_deployments_of_every_repository(night, settings):
    home, requests, _, alone_requests = night
    asked = {}
    for rc in settings.github.repositories:
        deferred, _ = read_deferred(staging.deferred_file(home, D1, rc.repo), rc.repo)
        asked[rc.repo] = {d["node_id"] for w in deferred.statuses for d in w.known if d.get("node_id")}
    assert asked[PAY] and asked[WEB], "the demo org has deployments in both repositories"
    lookups = posts(requests)
    every = asked[PAY] | asked[WEB]
    assert len(lookups) == math.ceil(len(every) / 50)  # 50 a request, whatever the repository
    assert sorted(i for q in lookups for i in q["graphql"]["ids"]) == sorted(every)
    assert any(set(q["graphql"]["ids"]) & asked[PAY] and set(q["graphql"]["ids"]) & asked[WEB] for q in lookups)
    # one repository at a time: a lookup per repository and environment with deployments, at least
    assert len(posts(alone_requests)) > len(lookups)


def test_one_request_holds_the_history_of_every_repository(night, settings):
    home, requests, _, alone_requests = night
    (page,) = posts(requests, HISTORIES)
    assert sorted(page["graphql"]["repos"]) == sorted(rc.repo for rc in settings.github.repositories)
    assert not posts(requests, "CcwatchBranchHistory"), "no repository asks its own history"
    assert len(posts(alone_requests, "CcwatchBranchHistory")) == 2  # one repository at a time: one each
    for rc in settings.github.repositories:
        deferred, _ = read_deferred(staging.deferred_file(home, D1, rc.repo), rc.repo)
        assert deferred.links is not None and deferred.links.commits and deferred.links.branch == rc.production_branch


def test_the_staged_batches_are_those_each_repository_asked_alone(night):
    home, _, alone, _ = night
    path, meta = staging.batches_files(home, D1)
    staged = list(read_staging(path))
    own = [r for f in staging.github_dir(home, D1).glob("*.jsonl") for r in read_staging(f)]
    assert comparable(staged + own) == comparable(alone)
    assert {r.natural_key.split("/deployments/")[0] for r in staged if "/deployments/" in r.natural_key} == {PAY, WEB}
    assert {r.natural_key.split("@")[0] for r in staged if r.kind == "gql_commit_pulls"} == {PAY, WEB}
    assert all(r.url.endswith(f"/graphql#{OP}") for r in staged if r.kind == "gql_deployment_statuses")
    assert all(r.url.endswith(f"/graphql#{HISTORIES}") for r in staged if r.kind == "gql_commit_pulls")
    assert json.loads(meta.read_text(encoding="utf-8"))["records"] == len(staged)
    # the repositories' own files hold none of what the batches ask (the PRs of a commit fetched
    # alone, older than the listing, are still asked through REST by its repository)
    assert {r.kind for r in own if r.kind in KINDS} <= {"commit_pulls"}
    assert not comparable(staged) & comparable(own)


def _finish(settings, server, home) -> None:
    _, jr = endpoints(server)
    p.ingest_jira(settings, jr, D1, home)
    p.resolve_tickets(settings, jr, D1, home)


def test_the_load_refuses_batches_that_answer_an_earlier_fetch(settings, tmp_path):
    s = scenario()
    with SandboxServer(s) as server:
        gh, _ = endpoints(server)
        p.ingest_github(settings, gh, D1, tmp_path)
        _finish(settings, server, tmp_path)
        # a new deployment, and payments-api fetched again (a cleared mapped task) after the statuses
        deps = server.scenario["github"]["repos"][PAY]["deployments"]
        new = copy.deepcopy(deps[-1])
        new["id"] = max(int(d["id"]) for d in deps) + 1
        deps.append(new)
        p.ingest_github_repo(settings, gh, D1, tmp_path, PAY)
        with pytest.raises(StageError, match=rf"do not answer the current fetch of {PAY}.*rerun "
                                             r"github_batches"):
            p.load_warehouse(settings, D1, tmp_path)
        # the statuses file removed: refused as well, naming the stage
        path, meta = staging.batches_files(tmp_path, D1)
        meta.rename(meta.with_suffix(".bak"))
        with pytest.raises(StageError, match="github_batches.*did not complete"):
            p.load_warehouse(settings, D1, tmp_path)
        p.ingest_github_batches(settings, gh, D1, tmp_path)
        p.load_warehouse(settings, D1, tmp_path)
    import duckdb

    con = duckdb.connect(str(tmp_path / "warehouse.duckdb"), read_only=True)
    try:
        got = con.execute("SELECT count(*) FROM deployment_statuses WHERE repo = ? AND deployment_id = ?",
                          [PAY, new["id"]]).fetchone()[0]
    finally:
        con.close()
    assert got == len(new.get("statuses") or []) > 0


def test_a_repository_without_its_batches_file_fails_the_stage_naming_it(settings, tmp_path):
    with SandboxServer(scenario()) as server:
        gh, _ = endpoints(server)
        p.ingest_github(settings, gh, D1, tmp_path)
        staging.deferred_file(tmp_path, D1, WEB).unlink()
        with pytest.raises(StageError, match=rf"acme__web-frontend.batches.json: missing: the fetch of {WEB}"):
            p.ingest_github_batches(settings, gh, D1, tmp_path)
    assert (staging_dir(tmp_path, D1) / "github_batches.failed.json").is_file()
    assert not staging.batches_files(tmp_path, D1)[0].exists()


def test_a_failing_lookup_fails_the_ingest_naming_the_repositories(settings, tmp_path):
    with SandboxServer(scenario()) as server:
        gh, _ = endpoints(server)
        server.add_fault({"service": "github", "path": r"/graphql$", "mode": "status", "status": 502,
                          "graphql": {"operationName": OP}})
        with pytest.raises(SourceError, match=rf"GitHub {PAY}[a-z/, -]* \(deployment statuses of \d+ repositor(y|ies)\): "
                                              rf"POST .*graphql \({OP}\) answered HTTP 502"):
            p.ingest_github(settings, gh, D1, tmp_path)
        _, jr = endpoints(server)
        p.ingest_jira(settings, jr, D1, tmp_path)
    marker = staging_dir(tmp_path, D1) / "github_batches.failed.json"
    assert PAY in json.loads(marker.read_text(encoding="utf-8"))["error"]
    with pytest.raises(StageError, match=r"the ingest of 2026-11-25 failed \(github_batches: SourceError"):
        p.load_warehouse(settings, D1, tmp_path)
    assert not (tmp_path / "warehouse.duckdb").exists() or _no_runs(tmp_path)


def _no_runs(home: Path) -> bool:
    import duckdb

    con = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
    try:
        return con.execute("SELECT count(*) FROM runs WHERE stage = 'loaded'").fetchone()[0] == 0
    finally:
        con.close()
