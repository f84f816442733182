"""The synthetic org generator (ccwatch.sandbox.synthetic) and the double's scale features:
per-request latency, lazily built indexes that follow a served scenario, the memoised JQL."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
import urllib.request
from collections import Counter

import pytest
from ccwatch.sandbox import SandboxServer, load_scenario
from ccwatch.sandbox.synthetic import BOT, DEPENDABOT, add_next_day, generate_org, zipf_counts
from ccwatch.sandbox.synthetic_config import org_config
from ccwatch.settings import load_settings
from github import Auth, Github

from tests.helpers.paths import ROOT

AS_OF = "2026-11-25T00:00:00Z"


@pytest.fixture(scope="module")
def org():
    return generate_org(repos=30, prs=3000, months=12, seed=11, as_of=AS_OF)


def merged(scenario):
    return [(name, p) for name, r in scenario["github"]["repos"].items() for p in r["pulls"] if p["merged_at"]]


def test_zipf_counts_split_exactly_with_a_long_tail():
    counts = zipf_counts(100_000, 500)
    assert sum(counts) == 100_000 and min(counts) >= 1
    assert counts[0] > 10 * counts[250]  # a few busy repositories, a long tail
    assert zipf_counts(3, 5) == [1, 1, 1, 0, 0]
    tail = zipf_counts(500, 500, floor=False)
    assert sum(tail) == 500 and 100 < sum(c > 0 for c in tail) < 250  # most repositories unchanged


def test_deterministic_by_seed():
    a = generate_org(repos=5, prs=200, seed=3, as_of=AS_OF)
    b = generate_org(repos=5, prs=200, seed=3, as_of=AS_OF)
    c = generate_org(repos=5, prs=200, seed=4, as_of=AS_OF)
    assert json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)
    assert json.dumps(a, sort_keys=True) != json.dumps(c, sort_keys=True)


def test_counts_window_and_nothing_after_as_of(org):
    prs = merged(org)
    assert len(prs) == 3000 and len(org["github"]["repos"]) == 30
    per_repo = Counter(name for name, _ in prs)
    sizes = sorted(per_repo.values(), reverse=True)
    assert len(per_repo) == 30 and sizes[0] > 5 * sizes[15]
    assert all("2025-11-2" <= p["merged_at"] <= AS_OF for _, p in prs)
    stamps = [s["created_at"] for r in org["github"]["repos"].values() for d in r["deployments"] for s in d["statuses"]]
    stamps += [h["created"] for i in org["jira"]["issues"].values() for h in i["changelog"]]
    assert stamps and max(stamps) <= AS_OF
    load_scenario(org)  # the double accepts it


def test_realistic_review_merge_and_check_mix(org):
    prs = merged(org)
    repos = org["github"]["repos"]
    approved_on_head = self_merged = unreviewed = bots = reruns = 0
    for name, p in prs:
        reviews = repos[name]["reviews"].get(str(p["number"]), [])
        if any(rv["state"] == "APPROVED" and rv["user"] != p["user"] and rv["commit_id"] == p["head_sha"]
               and rv["submitted_at"] <= p["merged_at"] for rv in reviews):
            approved_on_head += 1
        unreviewed += not reviews
        self_merged += p["merged_by"] == p["user"]
        bots += p["user"] == DEPENDABOT
        names = [c["name"] for c in repos[name]["check_runs"][p["head_sha"]]]
        reruns += len(names) != len(set(names))
    assert approved_on_head > 0.85 * len(prs)
    assert unreviewed > 0 and self_merged > 0 and bots > 0 and reruns > 0
    styles = {r_prof["style"] for r_prof in org["meta"]["synthetic"]["repos"].values()}
    assert styles == {"squash", "merge", "rebase"}
    assert sum("emergency" in p["labels"] for _, p in prs) > 0


def test_merge_styles_shape_the_branch(org):
    repos, profiles = org["github"]["repos"], org["meta"]["synthetic"]["repos"]
    for name, r in repos.items():
        by_sha = {c["sha"]: c for c in r["commits"]}
        p = next(p for p in r["pulls"] if p["merged_at"])
        mc = by_sha[p["merge_commit_sha"]]
        style = profiles[name]["style"]
        assert len(mc["parents"]) == (2 if style == "merge" else 1), (name, style)
        if style == "merge":
            assert mc["parents"][1] == p["head_sha"]
        if style == "rebase":  # rebased copies on main, not the PR's head commits
            assert p["merge_commit_sha"] in p["commit_shas"] and p["merge_commit_sha"] != p["head_sha"]
        assert r["commits"][-1]["sha"] in by_sha


def test_deployments_and_tickets(org):
    repos, profiles = org["github"]["repos"], org["meta"]["synthetic"]["repos"]
    envs = Counter(d["environment"] for r in repos.values() for d in r["deployments"])
    assert envs["production"] > 0 and envs["staging"] > 0
    for name, r in repos.items():
        if not profiles[name]["staging"]:
            assert all(d["environment"] == "production" for d in r["deployments"])
    finals = Counter(d["statuses"][-1]["state"] for r in repos.values() for d in r["deployments"])
    assert finals["success"] > 0.9 * sum(finals.values()) and finals["failure"] > 0
    creators = Counter(d["creator"] for r in repos.values() for d in r["deployments"])
    assert creators[BOT] > 0.9 * sum(creators.values())
    issues = org["jira"]["issues"]
    keys = [p["title"].rsplit("[", 1)[1].rstrip("]") for _, p in merged(org) if p["title"].endswith("]")]
    assert len(keys) > 0.9 * 3000 and len(set(keys)) < len(keys)  # some tickets carry several PRs
    missing = [k for k in set(keys) if k not in issues]
    assert 0 < len(missing) < 0.02 * len(set(keys))
    approvals = [h for i in issues.values() for h in i["changelog"] if h["items"][0]["toString"] == "Approved"]
    assert len(approvals) > 0.8 * len(issues)
    assert any(i["fields"].get("Post-Mortem") for i in issues.values())


def test_config_lists_every_repository(org, tmp_path):
    path = tmp_path / "ccwatch.yaml"
    path.write_text(org_config(org), encoding="utf-8")
    settings = load_settings(str(path))
    assert {r.repo for r in settings.github.repositories} == set(org["github"]["repos"])
    assert settings.lookback_days >= 365
    staging = {r.repo for r in settings.github.repositories if r.staging_environments}
    assert staging == {n for n, prof in org["meta"]["synthetic"]["repos"].items() if prof["staging"]}


def test_next_day_adds_changes_without_touching_the_input(org):
    before = json.dumps(org, sort_keys=True)
    day2 = add_next_day(org, changes=50)
    assert json.dumps(org, sort_keys=True) == before
    assert day2["meta"]["as_of"] == "2026-11-26T00:00:00Z"
    new = [(n, p) for n, p in merged(day2) if p["merged_at"] > AS_OF]
    assert len(new) == 50 and all(p["merged_at"] <= day2["meta"]["as_of"] for _, p in new)
    touched = {n for n, _ in new}
    assert 0 < len(touched) < 30
    for name, r in day2["github"]["repos"].items():
        assert (r is org["github"]["repos"][name]) == (name not in touched)
        numbers = [p["number"] for p in r["pulls"]]
        assert len(numbers) == len(set(numbers))
    assert len(day2["jira"]["issues"]) > len(org["jira"]["issues"])


def test_double_serves_the_org_through_pygithub(org):
    name, r = next((n, r) for n, r in org["github"]["repos"].items()
                   if org["meta"]["synthetic"]["repos"][n]["style"] == "rebase")
    p = next(p for p in reversed(r["pulls"]) if p["merged_at"])
    with SandboxServer(org, copy_scenario=False) as server:
        gh = Github(auth=Auth.Token("any"), base_url=server.url + "/api/v3")
        repo = gh.get_repo(name)
        assert repo.get_pull(p["number"]).merge_commit_sha == p["merge_commit_sha"]
        assert [x.number for x in repo.get_commit(p["merge_commit_sha"]).get_pulls()] == [p["number"]]
        closed = repo.get_pulls(state="closed", sort="updated", direction="desc")
        assert closed.totalCount == len(r["pulls"])
        # a served scenario that grows is answered afresh (the lazy index follows the lists)
        r["pulls"].append({**p, "number": 99_999, "head_sha": "f" * 40, "commit_shas": ["f" * 40]})
        assert repo.get_pull(99_999).head.sha == "f" * 40
        r["pulls"].pop()


def test_jira_search_is_memoised_but_follows_new_issues():
    scenario = generate_org(repos=3, prs=60, seed=5, as_of=AS_OF)
    scenario["auth"] = {"jira_user": "u@x", "jira_token": "t"}
    with SandboxServer(scenario, copy_scenario=False) as server:
        jql = "project in (PLAT, PAY, WEB) ORDER BY key"
        first, _, _ = server.jira.run_jql(jql, strict=True)
        again, _, _ = server.jira.run_jql(jql, strict=True)
        assert first == again and first
        key = first[0].split("-")[0] + "-77777"
        server.jira.issues[key] = dict(server.jira.issues[first[0]])
        assert key in server.jira.run_jql(jql, strict=True)[0]


def _get(url: str) -> tuple[float, float]:
    """When the request started and when its answer was read (perf_counter seconds)."""
    t = time.perf_counter()
    req = urllib.request.Request(url, headers={"Authorization": "token x"})
    with urllib.request.urlopen(req) as resp:
        resp.read()
    return t, time.perf_counter()


def test_latency_is_per_request_and_does_not_serialise_clients():
    scenario = generate_org(repos=2, prs=20, seed=1, as_of=AS_OF)
    with SandboxServer(scenario, latency_ms=300) as server:
        waits: list[float] = []
        real_sleep = server.sleep
        server.sleep = lambda seconds: (waits.append(seconds), real_sleep(seconds))[1]
        url = f"{server.url}/api/v3/repos/{next(iter(scenario['github']['repos']))}"
        spans: list[tuple[float, float]] = []
        threads = [threading.Thread(target=lambda: spans.append(_get(url))) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(spans) == 6 and min(end - start for start, end in spans) >= 0.3  # each answer delayed
        # not serialised: some request was still waiting for its answer when another one started
        # (the double answering one at a time would give six disjoint spans)
        spans.sort()
        assert any(nxt[0] < cur[1] for cur, nxt in zip(spans, spans[1:], strict=False)), spans
        _get(f"{server.url}/_sandbox/health")
        assert waits == [0.3] * 6  # one wait per API answer; introspection is not delayed
    with pytest.raises(ValueError):
        SandboxServer(scenario, latency_ms=-1)


def test_cli_latency_flag(tmp_path):
    scenario = generate_org(repos=1, prs=5, seed=1, as_of=AS_OF)
    path, ready = tmp_path / "s.json", tmp_path / "ready"
    path.write_text(json.dumps(scenario), encoding="utf-8")
    proc = subprocess.Popen([sys.executable, "-m", "ccwatch.sandbox", "--scenario", str(path), "--latency-ms", "250",
                             "--ready-file", str(ready)], cwd=ROOT, env={"PYTHONPATH": str(ROOT / "include"),
                                                                        "PATH": "/usr/bin:/bin"},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 30
        while not ready.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        url = ready.read_text().strip()
        start, end = _get(f"{url}/api/v3/repos/{next(iter(scenario['github']['repos']))}")
        assert end - start >= 0.25
    finally:
        proc.terminate()
        proc.wait(timeout=10)
