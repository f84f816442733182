"""Issue #15 (B): the nightly fetch as the benchmark runs it equals a full fetch of the same night.

A synthetic org (``sandbox.synthetic``, the scenario format ``benchmarks/bench_scale.py nightly``
measures) is backfilled, a quiet night runs, then a night with new merged PRs spread over some of
the repositories.  The population, the control results and the reconciliation of
that night equal those of a full fetch (``full=True``) of the same scenario into an empty home;
the night asks the reconciliation counts org-wide in batches, never one per repository, and its
merged PRs with one search per owner.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import duckdb
import pytest
from ccwatch import pipeline as p
from ccwatch.common.endpoints import Endpoint
from ccwatch.common.times import parse_as_of
from ccwatch.sandbox import PortHold, SandboxServer
from ccwatch.sandbox.synthetic import add_next_day, generate_org
from ccwatch.sandbox.synthetic_config import org_config
from ccwatch.settings import load_settings

REPOS = 8
AUTH = {"github_token": "ghp_night", "jira_user": "ccwatch@synth.example", "jira_token": "jira-night",
        "slack_token": "xoxb-night"}


def endpoints(server: SandboxServer, auth: dict) -> tuple[Endpoint, Endpoint]:
    return (Endpoint(server.url + "/api/v3", token=auth["github_token"]),
            Endpoint(server.url, login=auth["jira_user"], token=auth["jira_token"]))


def night(settings, server: SandboxServer, auth: dict, as_of, home: Path, *, full: bool = False) -> list[dict]:
    gh, jr = endpoints(server, auth)
    start = server.request_count()
    p.ingest_github(settings, gh, as_of, home, full=full, max_workers=3)
    p.ingest_jira(settings, jr, as_of, home, full=full)
    p.resolve_tickets(settings, jr, as_of, home)
    p.load_warehouse(settings, as_of, home)
    p.build_facts(settings, as_of, home)
    p.evaluate_controls(settings, as_of, home)
    return server.requests_since(start)


def snapshot(home: Path, as_of) -> dict[str, list]:
    t = as_of.replace(tzinfo=None)
    con = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)

    def rows(sql: str, *args) -> list[str]:
        return sorted(re.sub(r"127\.0\.0\.1:\d+", "sandbox", repr(r)) for r in con.execute(sql, list(args)).fetchall())

    try:
        # the population's rows (one per change of the window: its facts' inputs) and what was
        # concluded; whole warehouse tables differ by design: the incremental home keeps rows of
        # changes that left the window since the backfill
        snap = {}
        snap["population"] = rows("SELECT * EXCLUDE (as_of) FROM population WHERE as_of = ?", t)
        # ord: the creation rank among the deployments STORED (an incremental home also holds those
        # older than the window): compared as the order of each change's deployments instead
        snap["change_deployments"] = rows(
            "SELECT change_id, environment, env_kind, deployment_id, "
            "rank() OVER (PARTITION BY change_id, environment ORDER BY ord) FROM change_deployments WHERE as_of = ?", t)
        snap["control_results"] = rows("SELECT change_id, control_id, status, detail FROM control_results "
                                       "WHERE as_of = ?", t)
        snap["reconciliation"] = rows("SELECT * EXCLUDE (searched_at) FROM reconciliation WHERE as_of = ?", t)
    finally:
        con.close()
    return snap


@pytest.fixture(scope="module")
def org(tmp_path_factory):
    day1 = generate_org(repos=REPOS, prs=240, months=4, seed=11, as_of="2026-11-25T00:00:00Z")
    quiet = add_next_day(day1, changes=0)
    day2 = add_next_day(quiet, changes=8)
    for s in (day1, quiet, day2):
        s["auth"] = dict(AUTH)
    work = tmp_path_factory.mktemp("org")
    (work / "ccwatch.yaml").write_text(org_config(day1), encoding="utf-8")
    settings = load_settings(str(work / "ccwatch.yaml"))
    auth = AUTH
    home = work / "home"
    as_of = {k: parse_as_of(s["meta"]["as_of"]) for k, s in (("day1", day1), ("quiet", quiet), ("day2", day2))}
    # one port for every night's double, held between them: the stored ETags name it, and no
    # other process can be given it in between (sandbox.server.PortHold)
    with PortHold() as hold:
        with SandboxServer(day1, hold=hold) as server:
            night(settings, server, auth, as_of["day1"], home)
        with SandboxServer(quiet, hold=hold) as server:
            night(settings, server, auth, as_of["quiet"], home)
        shutil.copytree(home, work / "after_quiet")  # the lag tests' night starts from here
        with SandboxServer(day2, hold=hold) as server:
            requests = night(settings, server, auth, as_of["day2"], home)
        full_home = work / "full"
        with SandboxServer(day2, hold=hold) as server:
            full_requests = night(settings, server, auth, as_of["day2"], full_home, full=True)
        changed = sum(1 for n, r in day2["github"]["repos"].items() if r is not quiet["github"]["repos"].get(n))
        yield {"settings": settings, "as_of": as_of["day2"], "home": home, "full_home": full_home,
               "requests": requests, "full_requests": full_requests, "changed": changed,
               "quiet": quiet, "day2": day2, "after_quiet": work / "after_quiet", "hold": hold, "work": work}


def operations(requests: list[dict]) -> list[str]:
    return [(r.get("graphql") or {}).get("operationName") for r in requests if r["path"].endswith("/graphql")]


def test_the_night_equals_a_full_fetch_of_the_same_scenario(org):
    assert 0 < org["changed"] < REPOS, "some repositories changed, some did not"
    inc, full = snapshot(org["home"], org["as_of"]), snapshot(org["full_home"], org["as_of"])
    assert len(inc["population"]) > 240 and inc["control_results"]
    for table, rows in inc.items():
        assert rows == full[table], table
    assert all("they match" in r for r in inc["reconciliation"]), inc["reconciliation"]


def test_the_counts_are_asked_org_wide_in_one_batch(org):
    for requests in (org["requests"], org["full_requests"]):
        ops = operations(requests)
        assert ops.count("CcwatchMergedCounts") == 1, "8 repositories: one batch"
        assert "CcwatchMergedCount" not in ops, "no repository asks its own count"
    raw = duckdb.connect(str(org["home"] / "warehouse.duckdb"), read_only=True)
    try:
        urls = raw.execute("SELECT DISTINCT url FROM raw_payloads WHERE kind = 'merged_count'").fetchall()
    finally:
        raw.close()
    assert [u[0].rsplit("#", 1)[1] for u in urls] == ["CcwatchMergedCounts"]


def test_the_nights_prs_come_from_one_org_wide_search(org):
    """Issue #15 (B): the incremental night discovers its merged PRs with the owner's search (one
    page here) and asks no repository's pulls list or PR pages; the full fetch searches nothing."""
    ops = operations(org["requests"])
    assert ops.count("CcwatchMergedPullsSearch") == 1
    assert "CcwatchMergedPulls" not in ops
    assert not [r for r in org["requests"] if re.search(r"/repos/[^/]+/[^/]+/pulls$", r["path"])]
    full_ops = operations(org["full_requests"])
    assert "CcwatchMergedPullsSearch" not in full_ops and full_ops.count("CcwatchMergedPulls") >= REPOS
    con = duckdb.connect(str(org["home"] / "warehouse.duckdb"), read_only=True)
    try:
        (n,) = con.execute("SELECT count(*) FROM raw_payloads WHERE kind = 'gql_pull' "
                           "AND url LIKE '%#CcwatchMergedPullsSearch'").fetchone()
    finally:
        con.close()
    assert n >= 8, "the night's new PRs were stored from the search's nodes"


# ---------------------------------------------------------------------- the search index's lag
def lagged_night(org, name: str, repo_keys: dict, pull_keys: dict | None = None, *, full: bool = False
                 ) -> tuple[Path, list[dict], int]:
    """The day-2 night again from the quiet night's home, with GitHub's search index lagging behind
    one new merged PR of repository ``name`` (the double's ``search_lag``, docs/SANDBOX.md):
    (its home, its requests, the PR's number)."""
    day2, quiet = org["day2"], org["quiet"]
    old = {int(p["number"]) for p in quiet["github"]["repos"][name]["pulls"]}
    r = day2["github"]["repos"][name]
    new = max(int(p["number"]) for p in r["pulls"] if int(p["number"]) not in old)
    pulls = [dict(p, **(pull_keys or {})) if int(p["number"]) == new else p for p in r["pulls"]]
    scenario = dict(day2, github=dict(day2["github"], repos=dict(
        day2["github"]["repos"], **{name: dict(r, pulls=pulls, search_lag=[new], **repo_keys)})))
    home = org["work"] / f"lag-{len(list(org['work'].glob('lag-*')))}"
    if not full:
        shutil.copytree(org["after_quiet"], home)
    with SandboxServer(scenario, hold=org["hold"]) as server:
        requests = night(org["settings"], server, AUTH, org["as_of"], home, full=full)
    return home, requests, new


def changed_repo(org) -> str:
    day2, quiet = org["day2"], org["quiet"]
    return sorted(n for n, r in day2["github"]["repos"].items() if r is not quiet["github"]["repos"].get(n))[0]


def test_a_pr_the_search_has_not_indexed_yet_comes_from_the_history(org):
    """Issue #15: the search only is the fast path, the first-parent history is authoritative.  The
    search index lags behind one new merged PR (left out of the org-wide PR search AND of the count):
    the history links it to a first-parent commit of the night, so its repository's PRs are asked
    per repository and the night's population and control results equal a full fetch's."""
    name = changed_repo(org)
    repo = name
    home, requests, number = lagged_night(org, name, {"search_lag_count": True})
    inc, full = snapshot(home, org["as_of"]), snapshot(org["full_home"], org["as_of"])
    for table in ("population", "change_deployments", "control_results"):
        assert inc[table] == full[table], table
    assert any(f"'{repo}#{number}'" in row for row in inc["population"]), "the lagging PR is in the population"
    ops = operations(requests)
    assert ops.count("CcwatchMergedPullsSearch") == 1
    assert ops.count("CcwatchMergedPulls") == 1, "only the repository whose PR the search missed asks its own PRs"
    # the count lags too: the reconciliation names the difference (as it would on a full fetch)
    lagging = [row for row in inc["reconciliation"] if repo in row]
    assert lagging and "they match" not in lagging[0], lagging


def test_a_pr_the_search_hides_and_the_history_cannot_link_is_reported(org):
    """Issue #15: a merged PR the org-wide search leaves out, that no first-parent commit of the
    night links (its commits not on the line any more) and whose merge the activity log does not
    record cannot be found by the night: it is never passed silently, the population reconciliation
    (the independent count, CONTROLS.md) names the repository's difference and fails the run's
    reconciliation check."""
    name = changed_repo(org)
    repo = name
    fake = {"merge_commit_sha": "f" * 40, "head_sha": "e" * 40, "commit_shas": []}
    home, requests, number = lagged_night(org, name, {}, fake)
    inc = snapshot(home, org["as_of"])
    assert not any(f"'{repo}#{number}'" in row for row in inc["population"])
    assert "CcwatchMergedPulls" not in operations(requests), "no history link: nothing tells the night to ask"
    row = [row for row in inc["reconciliation"] if repo in row]
    assert row and "they match" not in row[0] and "False" in row[0], row


def test_a_merge_the_activity_log_records_but_the_search_and_history_miss_is_fetched(org):
    """Issue #15: the search (PRs and count) lags behind a merged PR the history cannot link, but the
    branch's activity log (REST, not search) records its merge: more merges logged since ``since``
    than the search gave, so the repository asks its own PRs and the night equals a full fetch of
    the same scenario."""
    name = changed_repo(org)
    repo = name
    with SandboxServer(org["day2"]) as server:  # the log as GitHub kept it when the PR merged
        activity = server.github.derived_activity(org["day2"]["github"]["repos"][name], "main")
    fake = {"merge_commit_sha": "f" * 40, "head_sha": "e" * 40, "commit_shas": []}
    keys = {"search_lag_count": True, "activity": activity}
    home, requests, number = lagged_night(org, name, keys, fake)
    full_home, _, _ = lagged_night(org, name, keys, fake, full=True)
    inc, full = snapshot(home, org["as_of"]), snapshot(full_home, org["as_of"])
    assert any(f"'{repo}#{number}'" in row for row in inc["population"]), "the PR the log names is in the population"
    for table in inc:
        assert inc[table] == full[table], table
    assert operations(requests).count("CcwatchMergedPulls") == 1
