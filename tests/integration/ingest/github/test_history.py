"""(r2) The production branch's history by push time, through the real client against the API double:
the activity log (``ingest/github/activity.py``) and the first-parent line completed with commits
fetched alone (``ingest/github/history.py``, ``fetch._complete_line``).

The scenario is the connector test's (tests/integration/ingest/github/test_fetch.py: window of 30
days from 2026-10-26, payments-api main: A (09-01) <- C (merge of #12, 11-02) <- D (direct push,
11-03)) with commits whose committer dates lie, and an activity log saying when they came.
"""

from __future__ import annotations

import copy

import pytest
from ccwatch.common.endpoints import Endpoint
from ccwatch.controls.evaluate import evaluate
from ccwatch.controls.facts import build_facts
from ccwatch.ingest.errors import SourceError
from ccwatch.ingest.github import fetch as gh_fetch
from ccwatch.sandbox import SandboxServer
from ccwatch.warehouse.connection import connect
from ccwatch.warehouse.sightings import record_sightings
from ccwatch.warehouse.store import load_records

from tests.helpers.github_fetch import fetch_github
from tests.integration.ingest.github.test_fetch import AS_OF, PAY, TOKEN, A, C, D, scenario, settings  # noqa: F401

P, Q = "5" * 40, "6" * 40  # backdated commits
OLD = [f"{i:x}" * 40 for i in range(7, 10)]  # history older than the window
NULL = "0" * 40


def entry(i, kind, at, actor, before, after):
    return {"id": 31_000_000_000 + i, "activity_type": kind, "ref": "refs/heads/main", "timestamp": at,
            "actor": actor, "before": before or NULL, "after": after}


def backdated() -> dict:
    """main: A <- C <- P (dated 2026-05-01, pushed 11-05 by mallory) <- Q (dated 2026-05-02, pushed with P)
    <- D (ops-dave, 11-10)."""
    s = scenario()
    pay = s["github"]["repos"][PAY]
    commits = {c["sha"]: c for c in pay["commits"]}
    pay["commits"] = [commits[A], commits["b" * 40], commits[C],
                      {"sha": P, "parents": [C], "author": "mallory", "committer": "mallory",
                       "date": "2026-05-01T10:00:00Z", "message": "tweak limits"},
                      {"sha": Q, "parents": [P], "author": "mallory", "committer": "mallory",
                       "date": "2026-05-02T10:00:00Z", "message": "tweak more"},
                      dict(commits[D], parents=[Q], date="2026-11-10T10:00:00Z")]
    pay["activity"] = [entry(1, "branch_creation", "2026-09-01T10:00:00Z", "carol-dev", None, A),
                       entry(2, "pr_merge", "2026-11-02T10:00:00Z", "bob-rev", A, C),
                       entry(3, "push", "2026-11-05T22:00:00Z", "mallory", C, Q),
                       entry(4, "push", "2026-11-10T10:00:00Z", "ops-dave", Q, D)]
    return s


def fetch(s, settings_, **kw):  # noqa: F811
    with SandboxServer(s) as srv:
        records = list(fetch_github(settings_, Endpoint(srv.url, token=TOKEN), AS_OF, **kw))
        return records, list(srv.requests)


def kinds(records, kind):
    return {r.natural_key: r for r in records if r.kind == kind}


def load_and_evaluate(records, settings_, tmp_path):  # noqa: F811
    con = connect(str(tmp_path / "wh.duckdb"))
    load_records(con, records, settings_)
    record_sightings(con, settings_, AS_OF)
    build_facts(con, settings_, AS_OF)
    evaluate(con, settings_, AS_OF)
    return con


def test_activity_log_is_fetched_as_evidence(settings):  # noqa: F811
    records, requests = fetch(backdated(), settings)
    rec = kinds(records, "activity")[f"{PAY}:main"]
    assert rec.status_code == 200 and "ref=main" in rec.url and "per_page=100" in rec.url
    assert [e["id"] for e in rec.payload] == [31_000_000_004, 31_000_000_003, 31_000_000_002]  # newest first,
    # the creation of 09-01 is older than the window start minus the overlap (10-24): dropped
    asked = [q for q in requests if q["path"] == f"/repos/{PAY}/activity"]
    assert len(asked) == 1 and asked[0]["query"]["ref"] == "main"


def test_backdated_push_is_fetched_alone_and_enters_the_population(settings, tmp_path):  # noqa: F811
    records, requests = fetch(backdated(), settings)
    listing = kinds(records, "commits")[f"{PAY}:main"]
    assert P not in {c["sha"] for c in listing.payload}, "the listing's since= hides a backdated commit"
    assert set(kinds(records, "commit")) == {f"{PAY}@{P}", f"{PAY}@{Q}"}
    assert {f"{PAY}@{P}", f"{PAY}@{Q}"} <= set(kinds(records, "commit_pulls"))  # their PRs through REST
    assert not [q for q in requests if f"/repos/{PAY}/commits/{A}" == q["path"]], "the walk stops at the boundary"
    con = load_and_evaluate(records, settings, tmp_path)
    chain = [s for (s,) in con.execute("SELECT sha FROM commits WHERE repo = ? ORDER BY position", [PAY]).fetchall()]
    assert chain == [C, P, Q, D]
    pushes = dict(con.execute("SELECT change_id, merged_at || ' ' || merged_by || ' ' || push_time_source "
                              "FROM change_facts WHERE change_kind = 'direct_push' AND repo = ?", [PAY]).fetchall())
    assert pushes == {f"{PAY}@{P}": "2026-11-05 22:00:00 mallory activity log",
                      f"{PAY}@{Q}": "2026-11-05 22:00:00 mallory activity log",
                      f"{PAY}@{D}": "2026-11-10 10:00:00 ops-dave activity log"}
    (detail,) = con.execute("SELECT detail FROM control_results WHERE change_id = ? AND control_id = 'CC8.1-10'",
                            [f"{PAY}@{P}"]).fetchone()
    assert detail == (f"commit {P[:7]} pushed to main by mallory at 2026-11-05T22:00Z (activity log) without a "
                      "pull request: 'tweak limits'")
    con.close()


def test_unreadable_log_is_evidence_and_keeps_the_committer_date_window(settings, tmp_path):  # noqa: F811
    s = backdated()
    s["github"]["repos"][PAY]["activity_status"] = 403
    records, requests = fetch(s, settings)
    rec = kinds(records, "activity")[f"{PAY}:main"]
    assert (rec.status_code, rec.payload["message"]) == (403, "Resource not accessible by integration")
    assert not kinds(records, "commit"), "no boundary on a first run without a log: only the listing"
    con = load_and_evaluate(records, settings, tmp_path)
    assert con.execute("SELECT status, detail FROM control_results WHERE change_id = ? AND control_id = 'CC8.1-14'",
                       [PAY]).fetchone() == (
        "fail", "the activity log of main could not be read (HTTP 403: Resource not accessible by integration): "
                "force pushes and deletions cannot be ruled out")
    (src,) = con.execute("SELECT push_time_source FROM change_facts WHERE change_id = ?", [f"{PAY}@{D}"]).fetchone()
    assert src == "committer date: no activity log on the first run"
    con.close()


def test_a_line_longer_than_the_cap_fails_loudly(settings, monkeypatch):  # noqa: F811
    monkeypatch.setattr(gh_fetch, "SINGLE_COMMITS_CAP", 1)
    with pytest.raises(SourceError, match=rf"GitHub {PAY}: the first-parent line of main from {D} does not reach "
                                          r"the branch's state at the window start within 1 commits"):
        fetch(backdated(), settings)


def rewritten() -> dict:
    """Before the window main went A <- O7 <- O8 <- O9; on 11-20 mallory force-pushed N (dated
    2026-01-01) <- D onto O7: O8, O9 left the branch.  Without the merge base the walk below N would
    go down to the root."""
    s = scenario()
    pay = s["github"]["repos"][PAY]
    a = next(c for c in pay["commits"] if c["sha"] == A)
    old = [{"sha": OLD[0], "parents": [A], "author": "carol-dev", "committer": "carol-dev",
            "date": "2026-09-10T10:00:00Z", "message": "o7"},
           {"sha": OLD[1], "parents": [OLD[0]], "author": "carol-dev", "committer": "carol-dev",
            "date": "2026-09-11T10:00:00Z", "message": "o8"},
           {"sha": OLD[2], "parents": [OLD[1]], "author": "carol-dev", "committer": "carol-dev",
            "date": "2026-09-12T10:00:00Z", "message": "o9"}]
    new = [{"sha": P, "parents": [OLD[0]], "author": "mallory", "committer": "mallory",
            "date": "2026-01-01T10:00:00Z", "message": "rewrite"},
           {"sha": D, "parents": [P], "author": "mallory", "committer": "mallory", "date": "2026-11-20T10:05:00Z",
            "message": "on top"}]
    pay["commits"] = [a, *old, *new]
    pay["pulls"] = [p for p in pay["pulls"] if p["number"] != 12]
    pay["branches"]["main"]["sha"] = D
    pay["activity"] = [entry(1, "branch_creation", "2026-09-01T10:00:00Z", "carol-dev", None, A),
                       entry(2, "push", "2026-09-12T10:00:00Z", "carol-dev", A, OLD[2]),
                       entry(3, "force_push", "2026-11-20T10:05:00Z", "mallory", OLD[2], D)]
    pay["deployments"] = []
    return s


def test_force_push_below_the_window_start_stops_at_the_merge_base(settings, monkeypatch, tmp_path):  # noqa: F811
    monkeypatch.setattr(gh_fetch, "SINGLE_COMMITS_CAP", 1)  # only P may be fetched alone
    s = rewritten()
    with SandboxServer(s) as srv:
        ep = Endpoint(srv.url, token=TOKEN)
        records = list(fetch_github(settings, ep, AS_OF, plans={PAY: None}))
        compares = [q for q in srv.requests if "/compare/" in q["path"]]
    assert set(kinds(records, "commit")) == {f"{PAY}@{P}"}
    assert [q["path"] for q in compares] == [f"/repos/{PAY}/compare/{OLD[2]}...{D}"]
    con = load_and_evaluate(records, settings, tmp_path)
    assert [s for (s,) in con.execute("SELECT sha FROM commits WHERE repo = ? ORDER BY position", [PAY]).fetchall()] \
        == [P, D]
    status, detail = con.execute("SELECT status, detail FROM control_results WHERE change_id = ? "
                                 "AND control_id = 'CC8.1-14'", [PAY]).fetchone()
    assert status == "fail" and f"force push by mallory at 2026-11-20T10:05Z ({OLD[2][:7]} -> {D[:7]})" in detail
    pushed = dict(con.execute("SELECT sha, merged_at FROM change_facts WHERE repo = ?", [PAY]).fetchall())
    assert set(pushed) == {P, D}, "the rewritten commits entered the branch with the force push"
    con.close()


def test_deployment_of_a_feature_branch_fails_cc15(settings, tmp_path):  # noqa: F811
    s = backdated()
    pay = s["github"]["repos"][PAY]
    pay["deployments"].append({"id": 3003, "sha": "b" * 40, "ref": "feat/login", "environment": "production",
                               "creator": "carol-dev", "created_at": "2026-11-01T13:00:00Z", "statuses": [
                                   {"id": 4004, "state": "success", "creator": "carol-dev",
                                    "created_at": "2026-11-01T13:05:00Z"}]})
    records, _ = fetch(s, settings)
    con = load_and_evaluate(records, settings, tmp_path)
    status, detail = con.execute("SELECT status, detail FROM control_results WHERE change_id = ? "
                                 "AND control_id = 'CC8.1-15'", [PAY]).fetchone()
    # B is PR #12's head, approved by bob-rev at 11-01 12:00, before the deployment was created: it passes
    assert status == "pass" and "1 the approved head of a pull request before its merge" in detail, detail
    pay["reviews"]["12"] = [r for r in pay["reviews"]["12"] if r["state"] != "APPROVED"]
    records, _ = fetch(s, settings)
    (tmp_path / "again").mkdir()
    con2 = load_and_evaluate(records, settings, tmp_path / "again")
    status, detail = con2.execute("SELECT status, detail FROM control_results WHERE change_id = ? "
                                  "AND control_id = 'CC8.1-15'", [PAY]).fetchone()
    assert status == "fail" and (f"deployment 3003 of {'b' * 7} by carol-dev at 2026-11-01T13:05Z to production "
                                 "(head of PR #12 without an APPROVED review on it before the deployment)") in detail
    con.close()
    con2.close()


def test_the_derived_log_of_an_unchanged_scenario_changes_nothing(settings):  # noqa: F811
    """Every existing scenario gets a plausible log: the connector test's chain is the same as before."""
    records, _ = fetch(copy.deepcopy(scenario()), settings)
    assert not kinds(records, "commit") and [c["sha"] for c in kinds(records, "commits")[f"{PAY}:main"].payload] \
        == [D, C, "b" * 40]


# --- the nightly runs: incremental fetches, an unreadable log, a rewrite (demo org, pipeline stages) ----

def _demo_runs():
    import json

    from ccwatch.demo_env import DEMO_AUTH
    from ccwatch.sandbox.github import GithubApi

    from tests.helpers.paths import DEMO_SCENARIO

    base = json.loads(DEMO_SCENARIO.read_text(encoding="utf-8"))
    base["auth"] = dict(DEMO_AUTH)
    repo = base["github"]["repos"][PAY]
    repo["activity"] = GithubApi(base).derived_activity(repo, "main")  # the log the double derives, made explicit
    return base


def _push(s, sha_, parent, date, pushed, who, message, kind="push"):
    """Append a commit to payments-api's main with its committer date ``date``, pushed at ``pushed``."""
    repo = s["github"]["repos"][PAY]
    repo["commits"].append({"sha": sha_, "parents": [parent], "author": who, "committer": who, "date": date,
                            "message": message})
    log = repo["activity"]
    log.append({"id": max(e["id"] for e in log) + 7919, "activity_type": kind, "ref": "refs/heads/main",
                "timestamp": pushed, "actor": who, "before": parent, "after": sha_})


def test_nightly_runs_date_pushes_by_the_log_then_by_sightings_and_see_a_rewrite(tmp_path):
    import json

    from ccwatch.common.paths import state_path
    from ccwatch.common.times import parse_as_of
    from ccwatch.settings import load_settings

    from tests.helpers.harness import query, run_pipeline
    from tests.helpers.paths import CONFIG

    cfg = load_settings(str(CONFIG))
    d1, d2, d3 = (parse_as_of(d) for d in ("2026-11-25", "2026-11-26", "2026-11-27"))
    s = _demo_runs()
    tip1 = s["github"]["repos"][PAY]["commits"][-1]["sha"]
    home = tmp_path / "home"

    def run(scn, as_of):
        with SandboxServer(scn) as srv:
            out = run_pipeline(cfg, srv, as_of, home, until="write_evidence")
            reqs = list(srv.requests)
        assert out.error is None, out.error
        return reqs

    run(s, d1)
    assert json.loads(state_path(home).read_text())["github"][PAY]["activity_complete"] is True

    # day 2: a commit dated in March, pushed on 11-25 06:00 on top of the stored tip, then a hotfix
    _push(s, P, tip1, "2026-03-01T10:00:00Z", "2026-11-25T06:00:00Z", "mallory", "limits")
    _push(s, Q, P, "2026-11-25T07:00:00Z", "2026-11-25T07:00:00Z", "ops-dave", "hotfix")
    reqs = run(s, d2)
    act = [q for q in reqs if q["path"].endswith(f"/repos/{PAY}/activity")]
    assert len(act) == 1, "incremental: one page of the log since the watermark minus the overlap"
    # (the incremental listing has no since=: paged down to the stored tip, it holds P whatever its date)
    assert query(home, "SELECT count(*) FROM commits WHERE repo = ? AND sha IN (?, ?)", [PAY, P, Q]) == [(2,)]
    rows = dict(query(home, "SELECT change_id, detail FROM control_results WHERE as_of = ? AND control_id = "
                            "'CC8.1-10' AND change_id LIKE '%@%'", [d2.replace(tzinfo=None)]))
    assert rows[f"{PAY}@{P}"] == (f"commit {P[:7]} pushed to main by mallory at 2026-11-25T06:00Z (activity log) "
                                  "without a pull request: 'limits'")

    # day 3: the log cannot be read any more, and main was reset under P and Q: R on the old tip
    R = "7" * 40
    repo = s["github"]["repos"][PAY]
    repo["commits"].append({"sha": R, "parents": [tip1], "author": "mallory", "committer": "mallory",
                            "date": "2026-02-01T10:00:00Z", "message": "quiet"})
    repo["branches"]["main"]["sha"] = R
    repo["activity_status"] = 403
    run(s, d3)
    got = dict(query(home, "SELECT change_id || ' ' || control_id, status || ': ' || detail FROM control_results "
                           "WHERE as_of = ? AND (control_id = 'CC8.1-14' AND change_id = ? OR change_id = ? AND "
                           "control_id = 'CC8.1-10')", [d3.replace(tzinfo=None), PAY, f"{PAY}@{R}"]))
    cc14 = got[f"{PAY} CC8.1-14"]
    assert cc14.startswith("fail: the activity log of main could not be read (HTTP 403") and (
        f"2 commits an earlier run saw on main disappeared from it: {P[:7]} (last seen by the run of "
        f"2026-11-26T00:00Z); {Q[:7]}") in cc14, cc14
    # R is dated in February: without a log its time is the first run that saw it
    assert got[f"{PAY}@{R} CC8.1-10"] == (f"fail: commit {R[:7]} pushed to main by mallory at 2026-11-27T00:00Z "
                                          "(first seen by the run of 2026-11-27T00:00Z) without a pull request: "
                                          "'quiet'")


def test_incremental_fetch_completes_the_line_down_to_the_stored_tip(settings, monkeypatch):  # noqa: F811
    """The last load (fetched 11-05 18:00, watermark 11-06) stored C as the tip; then P and Q (dated
    in May) and D were pushed.  The plan reads since 11-04.  The incremental listing (2 a page here)
    stops at the page holding C and does not reach it from D; the window listing by date never shows
    P, Q: they are fetched alone down to the stored tip, and the log is read since the plan's
    ``since`` only (its stored copy is whole)."""
    from datetime import UTC, datetime

    from ccwatch.ingest.github import client
    from ccwatch.ingest.plan import RepoPlan

    monkeypatch.setattr(client, "PER_PAGE", 2)
    start, since = datetime(2026, 10, 26, tzinfo=UTC), datetime(2026, 11, 4, tzinfo=UTC)
    plans = {PAY: RepoPlan(PAY, "incremental", start, since, tip=C, activity_complete=True)}
    with SandboxServer(backdated()) as srv:
        records = list(fetch_github(settings, Endpoint(srv.url, token=TOKEN), AS_OF, plans=plans))
        reqs = list(srv.requests)
    assert set(kinds(records, "commit")) == {f"{PAY}@{P}", f"{PAY}@{Q}"}
    assert [e["id"] for e in kinds(records, "activity")[f"{PAY}:main"].payload] == [31_000_000_004, 31_000_000_003]
    assert len([q for q in reqs if q["path"] == f"/repos/{PAY}/activity"]) == 2  # until a page older than since
    assert not [q for q in reqs if q["path"] == f"/repos/{PAY}/commits/{C}"], "the stored tip bounds the walk"


def test_a_quiet_branch_costs_no_single_fetch(settings):  # noqa: F811
    """The log was read and holds nothing since its lower bound: the tip is older than the window."""
    s = scenario()
    s["github"]["repos"][PAY]["activity"] = [entry(1, "push", "2026-06-01T10:00:00Z", "carol-dev", None, D)]
    s["github"]["repos"][PAY]["commits"] = [dict(c, date="2026-06-01T10:00:00Z") for c in
                                            s["github"]["repos"][PAY]["commits"]]
    records, requests = fetch(s, settings)
    assert kinds(records, "activity")[f"{PAY}:main"].payload == []
    assert not kinds(records, "commit") and not [q for q in requests if "/compare/" in q["path"]]
