"""Per-repository fan-out of the GitHub fetch (issue #7, design item 4).

The pipeline's stages are called directly against the API double serving the demo org grown
to six repositories (the two demo repositories and copies of them under other names, served
in the real REST shapes by the double).  Covered: the thread pool stages exactly the records a
serial fetch stages; repositories really are fetched at the same time, each worker with its own
client; one failing repository fails the date, names the repository and stops the others; the
load refuses a configured repository without staging or plan, and does not need (or load) a
repository removed from the config; the per-repository plans combine into what the ingest
state needs; ``github.concurrency`` is validated.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import threading
import time
from pathlib import Path

import pytest
import yaml
from ccwatch import pipeline as p
from ccwatch.common.endpoints import Endpoint
from ccwatch.common.errors import StageError
from ccwatch.common.paths import staging_dir, warehouse_path
from ccwatch.common.times import iso_z, parse_as_of
from ccwatch.demo_env import DEMO_AUTH
from ccwatch.ingest import plan as wm
from ccwatch.ingest import staging
from ccwatch.ingest.errors import SourceError
from ccwatch.ingest.github import fanout as gi
from ccwatch.ingest.github.fetch import fetch_github_repo
from ccwatch.ingest.staging import PENDING, failed_ingest
from ccwatch.ingest.state import read_state, state_digest
from ccwatch.sandbox import SandboxServer
from ccwatch.settings import ConfigError, load_settings
from ccwatch.warehouse import connection
from ccwatch.warehouse.ingest_state import missing_basis
from ccwatch.warehouse.state_anchor import anchor_problem

from tests.helpers.paths import CONFIG, DEMO_SCENARIO

DEMO = json.loads(DEMO_SCENARIO.read_text(encoding="utf-8"))
D1 = parse_as_of("2026-11-25")
PAY, WEB = "acme/payments-api", "acme/web-frontend"
COPIES = {"acme/billing": PAY, "acme/ledger": PAY, "acme/storefront": WEB, "acme/admin-ui": WEB}


def _scenario() -> dict:
    s = copy.deepcopy(DEMO)
    s["auth"] = dict(DEMO_AUTH)
    for name, src in COPIES.items():
        s["github"]["repos"][name] = copy.deepcopy(DEMO["github"]["repos"][src])
    return s


SCENARIO = _scenario()


@pytest.fixture(scope="module")
def demo_settings():
    return load_settings(str(CONFIG))


def with_repos(settings, names: list[str]):
    by_name = {rc.repo: rc for rc in settings.github.repositories}
    repos = tuple(by_name[n] if n in by_name else dataclasses.replace(by_name[COPIES[n]], repo=n) for n in names)
    return dataclasses.replace(settings, github=dataclasses.replace(settings.github, repositories=repos))


ALL = [PAY, WEB, *COPIES]


@pytest.fixture(scope="module")
def settings(demo_settings):
    return with_repos(demo_settings, ALL)


def endpoints(server: SandboxServer) -> tuple[Endpoint, Endpoint]:
    return (Endpoint(server.url + "/api/v3", token=DEMO_AUTH["github_token"]),
            Endpoint(server.url, login=DEMO_AUTH["jira_user"], token=DEMO_AUTH["jira_token"]))


def staged(home: Path) -> set[tuple]:
    """Every staged GitHub record of D1 without its fetch time, as a set."""
    out = set()
    for path in [*sorted(staging.github_dir(home, D1).glob("*.jsonl")), staging.batches_files(home, D1)[0]]:
        for line in path.read_text(encoding="utf-8").splitlines():
            rec = json.loads(line)
            rec.pop("fetched_at")
            out.add((path.name, json.dumps(rec, sort_keys=True)))
    return out


def finish_ingest(settings, server, home) -> None:
    _, jr = endpoints(server)
    p.ingest_jira(settings, jr, D1, home)
    p.resolve_tickets(settings, jr, D1, home)


def repos_in_warehouse(home: Path) -> set[str]:
    con = connection.connect(warehouse_path(home), read_only=True)
    try:
        return {r for (r,) in con.execute("SELECT DISTINCT repo FROM pull_requests").fetchall()}
    finally:
        con.close()


# --- the pool ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def serial_and_concurrent(settings, tmp_path_factory):
    homes = {w: tmp_path_factory.mktemp(f"workers{w}") for w in (1, 4)}
    out = {}
    with SandboxServer(SCENARIO) as server:
        gh, _ = endpoints(server)
        for w, home in homes.items():
            out[w] = gi.ingest_github(settings, gh, D1, home, max_workers=w)
    return homes, out


def test_concurrent_fetch_stages_what_a_serial_fetch_stages(serial_and_concurrent):
    homes, out = serial_and_concurrent
    serial, concurrent = staged(homes[1]), staged(homes[4])
    assert serial == concurrent
    assert {name for name, _ in concurrent} == {f"{staging.repo_slug(r)}.jsonl" for r in ALL} | {"github_batches.jsonl"}
    assert out[4]["workers"] == 4 and out[1]["workers"] == 1
    assert out[1]["repos"] == out[4]["repos"] and set(out[4]["repos"]) == set(ALL)
    assert out[4]["records"] == sum(out[4]["repos"].values()) + out[4]["batches"] == len(concurrent)
    assert out[4]["batches"] == out[1]["batches"] > 0
    assert out[4]["repos"]["acme/billing"] == out[4]["repos"][PAY], "a copy stages as many records as its source"
    assert set(out[4]["modes"].values()) == {"full"}


def test_each_repository_has_its_plan_and_the_plans_combine(serial_and_concurrent, settings):
    homes, _ = serial_and_concurrent
    for repo in ALL:
        path, plan = staging.repo_files(homes[4], D1, repo)
        meta = json.loads(plan.read_text(encoding="utf-8"))
        assert path.is_file() and list(meta["repos"]) == [repo] and meta["repos"][repo]["mode"] == "full"
    files, combined = staging.staged_github(settings, homes[4], D1)
    assert [f.name for f in files] == [f"{staging.repo_slug(r)}.jsonl" for r in ALL] + ["github_batches.jsonl"], \
        "config order, then the org-wide statuses"
    assert set(combined["repos"]) == set(ALL) and combined["basis"] is None and combined["bases"] == []
    assert not list(staging_dir(homes[4], D1).glob("*.failed.json"))


def test_repositories_are_fetched_at_the_same_time_each_worker_with_its_own_client(settings, tmp_path,
                                                                                   monkeypatch):
    real = fetch_github_repo
    barrier = threading.Barrier(3, timeout=20)  # three fetches must be running at once to pass it
    clients: dict[int, set[int]] = {}
    lock = threading.Lock()

    def fetch(settings_, endpoint, as_of, rc, plan=None, *, client=None, budget=None, **kw):
        assert client is not None, "the pool hands each fetch its worker's client"
        with lock:
            clients.setdefault(threading.get_ident(), set()).add(id(client))
        if rc.repo in (PAY, WEB, "acme/billing"):
            barrier.wait()
        yield from real(settings_, endpoint, as_of, rc, plan, client=client, budget=budget, **kw)

    monkeypatch.setattr(gi, "fetch_github_repo", fetch)  # as the pool calls it
    with SandboxServer(SCENARIO) as server:
        gh, _ = endpoints(server)
        out = gi.ingest_github(settings, gh, D1, tmp_path, max_workers=3)
    assert out["workers"] == 3 and set(out["repos"]) == set(ALL)
    assert len(clients) == 3 and all(len(ids) == 1 for ids in clients.values()), clients
    assert len({i for ids in clients.values() for i in ids}) == 3, "no client is shared between threads"


def test_a_serial_fetch_would_not_pass_the_barrier(settings, tmp_path, monkeypatch):
    """Meta-test: the barrier above really needs concurrent fetches."""
    real = fetch_github_repo
    barrier = threading.Barrier(2, timeout=0.5)

    def fetch(*a, **k):
        barrier.wait()
        yield from real(*a, **k)

    monkeypatch.setattr(gi, "fetch_github_repo", fetch)  # as the pool calls it
    with SandboxServer(SCENARIO) as server, pytest.raises(StageError, match="BrokenBarrierError"):
        gi.ingest_github(settings, endpoints(server)[0], D1, tmp_path, max_workers=1)


def test_default_workers_come_from_the_config(settings, tmp_path):
    two = dataclasses.replace(settings, github=dataclasses.replace(settings.github, concurrency=2))
    with SandboxServer(SCENARIO) as server:
        assert gi.ingest_github(two, endpoints(server)[0], D1, tmp_path)["workers"] == 2


# --- failures ----------------------------------------------------------------------------


def test_one_failing_repository_fails_the_date_and_names_it(settings, tmp_path):
    with SandboxServer(SCENARIO) as server:
        # (stop 29: the settings are asked org-wide, so the repository's own branch fails)
        server.add_fault({"service": "github", "path": r"/repos/acme/storefront/rules/branches/main$", "mode": "status",
                          "status": 404, "body": {"message": "Not Found"}})
        gh, _ = endpoints(server)
        with pytest.raises(SourceError, match=r"acme/storefront.*HTTP 404"):
            gi.ingest_github(settings, gh, D1, tmp_path, max_workers=4)
        assert not [t for t in threading.enumerate() if t.name.startswith("ccwatch-github")], \
            "the error is raised after every worker stopped"
        _, jr = endpoints(server)
        p.ingest_jira(settings, jr, D1, tmp_path)
        with pytest.raises(StageError, match=r"missing the GitHub staging of .*acme/storefront"):
            p.resolve_tickets(settings, jr, D1, tmp_path)
    marker = staging.failure_marker(tmp_path, D1, "acme/storefront")
    assert marker.name == "ingest_github[acme__storefront].failed.json" and marker.is_file()
    failed = failed_ingest(tmp_path, D1)
    assert any(f.startswith("ingest_github[acme/storefront]: SourceError") for f in failed), failed
    assert not staging.repo_files(tmp_path, D1, "acme/storefront")[0].exists()
    with pytest.raises(StageError, match=r"ingest_github\[acme/storefront\].*refusing to load"):
        p.load_warehouse(settings, D1, tmp_path)
    with pytest.raises(StageError):
        p.build_facts(settings, D1, tmp_path)
    assert not (tmp_path / "evidence").exists()


def test_a_failure_stops_the_other_workers(settings, tmp_path, monkeypatch):
    """A repository that fails while others run: the running ones stop at their next record
    (their failure marker says why), the ones not started are not fetched at all."""
    real = fetch_github_repo
    started: list[str] = []
    failed_once = threading.Event()

    def fetch(settings_, endpoint, as_of, rc, plan=None, **kw):
        started.append(rc.repo)
        if rc.repo == PAY:
            raise RuntimeError("disk full")  # an error that does not name the repository
        for i, rec in enumerate(real(settings_, endpoint, as_of, rc, plan, **kw)):
            if i == 1:
                failed_once.wait(5)  # let the failure happen while this fetch runs
                time.sleep(0.3)
            yield rec

    monkeypatch.setattr(gi, "fetch_github_repo", fetch)  # as the pool calls it
    real_stage = gi._stage_repo

    def stage(*a, **k):
        try:
            return real_stage(*a, **k)
        except RuntimeError as exc:
            if "disk full" in str(exc):
                failed_once.set()
            raise

    monkeypatch.setattr(gi, "_stage_repo", stage)
    with SandboxServer(SCENARIO) as server:
        with pytest.raises(StageError, match=r"GitHub acme/payments-api: RuntimeError: disk full"):
            gi.ingest_github(settings, endpoints(server)[0], D1, tmp_path, max_workers=2)
    assert started[:1] == [PAY] or PAY in started[:2]
    assert len(started) == 2, f"only the two running fetches ran: {started}"
    other = next(r for r in started if r != PAY)
    info = json.loads(staging.failure_marker(tmp_path, D1, other).read_text())
    assert "stopped because another repository failed" in info["error"]
    assert not list(staging.github_dir(tmp_path, D1).glob("*.jsonl")), "nothing half-fetched under a final name"


def test_single_repository_task(settings, tmp_path):
    with SandboxServer(SCENARIO) as server:
        gh, _ = endpoints(server)
        out = p.ingest_github_repo(settings, gh, D1, tmp_path, WEB)
        with pytest.raises(StageError, match="acme/unknown: not a repository of the config"):
            p.ingest_github_repo(settings, gh, D1, tmp_path, "acme/unknown")
    assert out["repo"] == WEB and out["mode"] == "full" and out["records"] > 10
    assert [f.name for f in staging.github_dir(tmp_path, D1).glob("*.jsonl")] == ["acme__web-frontend.jsonl"]
    assert (staging_dir(tmp_path, D1) / PENDING).exists()
    with pytest.raises(StageError, match=r"missing .*GitHub staging of acme/payments-api \(acme__payments-api"):
        p.load_warehouse(settings, D1, tmp_path)


# --- what the load needs -------------------------------------------------------------------


@pytest.fixture(scope="module")
def ingested(settings, tmp_path_factory):
    """A complete ingest of D1 (not loaded): copied by each test that changes it."""
    home = tmp_path_factory.mktemp("ingested")
    with SandboxServer(SCENARIO) as server:
        gi.ingest_github(settings, endpoints(server)[0], D1, home)
        finish_ingest(settings, server, home)
    return home


def _copy(src: Path, dst: Path) -> Path:
    import shutil

    shutil.copytree(src, dst)
    return dst


def test_load_refuses_a_configured_repository_without_staging_or_plan(settings, ingested, tmp_path):
    home = _copy(ingested, tmp_path / "a")
    path, plan = staging.repo_files(home, D1, "acme/ledger")
    path.unlink()
    with pytest.raises(StageError, match=r"missing the GitHub staging of acme/ledger \(acme__ledger\.jsonl\)"):
        p.load_warehouse(settings, D1, home)
    home = _copy(ingested, tmp_path / "b")
    staging.repo_files(home, D1, "acme/ledger")[1].unlink()
    with pytest.raises(StageError, match=r"acme/ledger \(acme__ledger\.plan\.json\)"):
        p.load_warehouse(settings, D1, home)
    home = _copy(ingested, tmp_path / "c")
    plan = staging.repo_files(home, D1, "acme/ledger")[1]
    plan.write_text(json.dumps({**json.loads(plan.read_text()), "repos": {}}))
    with pytest.raises(StageError, match="does not cover acme/ledger"):
        p.load_warehouse(settings, D1, home)
    assert not warehouse_path(home).exists() or repos_in_warehouse(home) == set()


def test_resolve_tickets_refuses_missing_github_staging(settings, ingested, tmp_path):
    home = _copy(ingested, tmp_path / "h")
    staging.repo_files(home, D1, WEB)[0].unlink()
    with SandboxServer(SCENARIO) as server, pytest.raises(StageError, match="acme/web-frontend"):
        p.resolve_tickets(settings, endpoints(server)[1], D1, home)


def test_a_repository_removed_from_the_config_is_neither_required_nor_loaded(settings, ingested, tmp_path):
    home = _copy(ingested, tmp_path / "h")
    fewer = with_repos(settings, [PAY, WEB, "acme/billing"])
    staging.repo_files(home, D1, "acme/admin-ui")[0].unlink()  # gone with its config entry
    p.load_warehouse(fewer, D1, home)
    assert repos_in_warehouse(home) == {PAY, WEB, "acme/billing"}
    state = read_state(home, warehouse_path(home))
    assert set(state["github"]) == {PAY, WEB, "acme/billing"}


def test_a_removed_repositorys_failure_does_not_fail_the_date(settings, tmp_path):
    with SandboxServer(SCENARIO) as server:
        server.add_fault({"service": "github", "path": r"/repos/acme/admin-ui/rules/branches/main$", "mode": "status",
                          "status": 404, "body": {"message": "Not Found"}})
        gh, _ = endpoints(server)
        with pytest.raises(SourceError, match="acme/admin-ui"):
            gi.ingest_github(settings, gh, D1, tmp_path)
        fewer = with_repos(settings, [PAY, WEB])
        out = gi.ingest_github(fewer, gh, D1, tmp_path)  # the repository left the config: rerun
        finish_ingest(fewer, server, tmp_path)
    assert set(out["repos"]) == {PAY, WEB}
    assert not staging.failure_marker(tmp_path, D1, "acme/admin-ui").exists()
    assert failed_ingest(tmp_path, D1) == []
    p.load_warehouse(fewer, D1, tmp_path)
    assert repos_in_warehouse(tmp_path) == {PAY, WEB}


def test_incremental_plans_combine_and_every_basis_is_checked(settings, ingested, tmp_path):
    home = _copy(ingested, tmp_path / "h")
    p.load_warehouse(settings, D1, home)
    d2 = parse_as_of("2026-11-26")
    with SandboxServer(SCENARIO) as server:
        out = gi.ingest_github(settings, endpoints(server)[0], d2, home)
    assert set(out["modes"].values()) == {"incremental"}
    _, combined = staging.staged_github(settings, home, d2)
    assert combined["basis"] == iso_z(D1) and combined["bases"] == [iso_z(D1)]
    metas = [json.loads(staging.repo_files(home, d2, r)[1].read_text()) for r in ALL]
    assert combined["fetched_through"] == min(m["fetched_through"] for m in metas)
    # a repository planned on another (unknown) load: the load must refuse the batch
    odd = {**metas[0], "basis": "2026-10-01T00:00:00Z"}
    both = wm.combine_github_metas([odd, *metas[1:]])
    assert both["bases"] == ["2026-10-01T00:00:00Z", iso_z(D1)]
    # (stop 30) each repository's plan carries the digest of the state it planned from, all checked
    digest = state_digest(read_state(home, warehouse_path(home)))
    assert {m["state_sha256"] for m in metas} == {digest}
    assert combined["anchors"] == [{"basis": iso_z(D1), "state_sha256": digest}]
    forged = wm.combine_github_metas([{**metas[0], "state_sha256": "0" * 64}, *metas[1:]])
    assert len(forged["anchors"]) == 2
    con = connection.connect(warehouse_path(home))
    try:
        assert missing_basis(con, {"github": combined}) is None
        assert "2026-10-01T00:00:00Z" in missing_basis(con, {"github": both})
        assert anchor_problem(con, {"github": combined}, None, "S") is None
        assert "not the one the last load (of 2026-11-25T00:00:00Z) wrote" in anchor_problem(con, {"github": forged}, None, "S")
    finally:
        con.close()


# --- config --------------------------------------------------------------------------------


def _config(tmp_path: Path, value) -> Path:
    doc = yaml.safe_load(CONFIG.read_text(encoding="utf-8"))
    doc["github"]["concurrency"] = value
    path = tmp_path / "ccwatch.yaml"
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    return path


def test_concurrency_config_key(tmp_path, demo_settings):
    assert demo_settings.github.concurrency == 4, "the default"
    assert load_settings(str(_config(tmp_path, 12))).github.concurrency == 12
    for bad, why in ((0, "between 1 and 32"), (33, "between 1 and 32"), ("four", "must be an integer"),
                     (True, "must be an integer"), (2.5, "must be an integer")):
        with pytest.raises(ConfigError, match=rf"github\.concurrency: .*{why}"):
            load_settings(str(_config(tmp_path, bad)))
