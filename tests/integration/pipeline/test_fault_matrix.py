"""Pipeline-level fault matrix: every stage of the nightly run, in process, against the API double.

A clean run of an earlier date (2026-11-24) gives the warehouse its prior state and one evidence
archive.  Each scenario then runs the next date (or reruns the earlier one) with one fault mode of
the double (docs/SANDBOX.md) on GitHub, Jira or Slack, driving the stage functions the DAG's tasks
call (``ccwatch.pipeline``), stopping at the first exception as Airflow would (the two fetch tasks
run side by side, so both are attempted before the run stops).  For each scenario it asserts:

* the retries are bounded (the faulted endpoint's request count from ``server.requests``, and every
  wait the retry layers asked for, recorded, never the wall clock: a far rate-limit reset fails at
  once instead of waiting);
* the stage raises naming the repository / project and the endpoint;
* the faulted date gets no ``control_results`` (a rerun keeps the earlier results unchanged);
* nothing that could read as "all clear" is posted to Slack (in process there is no
  pipeline-failure callback, so no message at all);
* the warehouse still opens with the earlier date's rows intact, and every earlier archive is
  byte-identical and verifies.

Some faults must be survived instead: items repeated across pages load once (the results equal a
clean run's), and fields missing from payloads are stored as NULL and fail the control closed,
never pass.  A Slack outage comes after the evidence is written: that date's results and archive
exist, but no message is recorded and nothing is remembered as alerted.

The retry policy and the request timeouts are shrunk (the behaviour is the production one, only
faster); ``RetryPolicy.retries`` = 2 gives three tries per request.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import time
from pathlib import Path

import duckdb
import pytest
from ccwatch import pipeline as p
from ccwatch.common.errors import StageError
from ccwatch.common.paths import warehouse_path
from ccwatch.common.times import parse_as_of
from ccwatch.demo_env import DEMO_AUTH
from ccwatch.ingest.errors import SourceError
from ccwatch.ingest.http.retry import RetryPolicy
from ccwatch.publish import slack as notify
from ccwatch.publish.evidence.verify import verify_archive
from ccwatch.publish.slack import SlackSendError
from ccwatch.sandbox import SandboxServer
from ccwatch.settings import load_settings
from ccwatch.warehouse.normalize.base import NormalizeError

from tests.helpers.clock import record_waits
from tests.helpers.harness import endpoints, query, run_pipeline
from tests.helpers.paths import CONFIG, DEMO_SCENARIO

SCENARIO = json.loads(DEMO_SCENARIO.read_text(encoding="utf-8"))
SCENARIO["auth"] = dict(DEMO_AUTH)
EARLIER, DAY = parse_as_of("2026-11-24"), parse_as_of("2026-11-25")
PAY, WEB = "acme/payments-api", "acme/web-frontend"
FAST = RetryPolicy(retries=2, max_wait=5.0, backoff=0.05, backoff_max=0.2, secondary_wait=0.2)
TRIES = 1 + FAST.retries
SLACK_RETRIES = 1
SLACK_MAX_WAIT = 2.0  # slack_sdk's default backoff before its one retry (0.5 s doubled, with jitter)
STAGES = ("ingest", "resolve_tickets", "load_warehouse", "build_facts", "evaluate_controls", "write_evidence",
          "alert_slack")


@pytest.fixture(scope="module")
def settings():
    return load_settings(str(CONFIG))


@pytest.fixture(autouse=True)
def waits(monkeypatch):
    """The retry waits of the test (seconds, in order); none may pass the shrunk policy's limits."""
    return record_waits(monkeypatch, max(FAST.backoff_max, FAST.secondary_wait, SLACK_MAX_WAIT))


@pytest.fixture(autouse=True)
def fast_policy(monkeypatch):
    import slack_sdk

    monkeypatch.setattr("ccwatch.ingest.github.client.RETRY_POLICY", FAST)
    monkeypatch.setattr("ccwatch.ingest.github.client.TIMEOUT_SECONDS", 1)  # PyGithub: whole seconds
    monkeypatch.setattr("ccwatch.ingest.jira.RETRY_POLICY", FAST)
    monkeypatch.setattr("ccwatch.ingest.jira.TIMEOUT_SECONDS", 0.5)
    # every changelog paged one at a time (the faults target /changelog; a search embeds short ones)
    monkeypatch.setattr("ccwatch.ingest.jira.EMBED_CAP", {"cloud": 0, "server": 0})
    monkeypatch.setattr("ccwatch.ingest.jira.CHANGELOG_WORKERS", 1)
    monkeypatch.setattr(notify, "MAX_RETRIES", SLACK_RETRIES)

    class QuickClient(slack_sdk.WebClient):  # send_slack imports WebClient from slack_sdk when it runs
        def __init__(self, *args, **kw):
            kw.setdefault("timeout", 1)
            super().__init__(*args, **kw)

    monkeypatch.setattr(slack_sdk, "WebClient", QuickClient)


# --- the harness ------------------------------------------------------------------------


def results(home: Path, as_of) -> list[tuple]:
    con = duckdb.connect(str(warehouse_path(home)), read_only=True)
    try:
        return con.execute("SELECT change_id, repo, control_id, status, detail FROM control_results "
                           "WHERE as_of = ? ORDER BY change_id, control_id", [as_of.replace(tzinfo=None)]).fetchall()
    finally:
        con.close()


def archive_hashes(home: Path) -> dict[str, str]:
    return {a.name: hashlib.sha256(a.read_bytes()).hexdigest()
            for a in sorted((home / "evidence").glob("ccwatch-evidence-*.tar.gz"))}


@pytest.fixture(scope="module")
def base(settings, tmp_path_factory):
    """A home after a clean run of EARLIER; and, for comparison, the clean results of DAY."""
    home = tmp_path_factory.mktemp("base")
    with SandboxServer(SCENARIO) as server:
        first = run_pipeline(settings, server, EARLIER, home)
        assert first.error is None, first.error
        assert len(server.slack_messages) == 1
    ref = tmp_path_factory.mktemp("ref") / "home"
    shutil.copytree(home, ref)
    with SandboxServer(SCENARIO) as server:  # DAY evaluated and archived, as before the alert_slack task
        clean = run_pipeline(settings, server, DAY, ref, until="alert_slack")
    assert clean.error is None and clean.completed[-1] == "write_evidence", clean.error
    return {"home": home, "earlier": results(home, EARLIER), "archives": archive_hashes(home),
            "day": results(ref, DAY), "alerts": query(home, "SELECT count(*) FROM slack_alerts")[0][0],
            "evaluated": ref, "evaluated_archives": archive_hashes(ref)}


def fresh_home(base, tmp_path, which: str = "home") -> Path:
    home = tmp_path / "home"
    shutil.copytree(base[which], home)
    return home


# --- the matrix -------------------------------------------------------------------------


def F(service, path, mode, **kw) -> dict:
    return {"service": service, "path": path, "mode": mode, **kw}


PULLS = rf"/repos/{PAY}/pulls$"
REVIEWS = r"/pulls/\d+/reviews$"
CHANGELOG = r"/issue/[A-Z]+-\d+/changelog$"
SEARCH = r"/search/jql$"
POST = r"/api/chat\.postMessage$"
GQL = r"/graphql$"
# (issue #15) the commits' PRs and the deployments' statuses are asked org-wide after the repositories
# (github_batches): those requests name no one repository, their errors name every repository of the batch
MERGED_PULLS, HISTORY, DEP_STATUSES = "CcwatchMergedPulls", "CcwatchBranchHistories", "CcwatchDeploymentStatuses"
PULL_NODES = "data.repository.pullRequests.nodes"


SEARCH_OP = "CcwatchMergedPullsSearch"
REPOS_OP = "CcwatchRepositories"
# (issue #15) an incremental night takes its merged PRs from the org-wide search: the cases on the
# per-repository PR fetch (still that of a full plan, an untrusted search and the search-lag
# fallback) run with the search staging nothing, so every repository asks its own PRs
PER_REPO_PRS = {"ccwatch.ingest.github.fanout.stage_pulls": lambda *a, **kw: {"repos": 0}}


def G(op, mode, repo=PAY, **kw) -> dict:
    """A fault on one GraphQL operation (of one repository when the operation names one)."""
    sel = {"operationName": op, **({"name": repo.split("/")[1]} if op not in (DEP_STATUSES, HISTORY) else {})}
    return F("github", GQL, mode, graphql=sel, **kw)


def hit(request: dict, faulted) -> bool:
    """``faulted``: a path regex, or a fault dict (path and, for GraphQL, operation / repository)."""
    if isinstance(faulted, str):
        return bool(re.search(faulted, request["path"]))
    want = faulted.get("graphql") or {}
    got = request.get("graphql") or {}
    return bool(re.search(faulted["path"], request["path"])) and all(got.get(k) == v for k, v in want.items())

# id -> (faults, stage that fails, regexes the error message must match, faulted path, max requests to it,
#        extra: tokens / date / attributes to patch)
FAILS = {
    # GitHub
    "github-rate-limit-403-far-reset": ([F("github", PULLS, "rate_limit", reset_in=3600)], "ingest_github",
                                        [PAY, rf"/repos/{PAY}/pulls", "rate limit", "resets at"], PULLS, 1, {"setattr": PER_REPO_PRS}),
    "github-rate-limit-429-far-reset": ([F("github", PULLS, "rate_limit", reset_in=3600, status=429)],
                                        "ingest_github", [PAY, rf"/repos/{PAY}/pulls", "rate limit"], PULLS, 1, {"setattr": PER_REPO_PRS}),
    "github-secondary-limit-long-retry-after": ([G(MERGED_PULLS, "secondary_limit", retry_after=3600)],
                                                "ingest_github", [PAY, rf"graphql \({MERGED_PULLS}\)", "rate limit",
                                                                  "retry after 3600s"], G(MERGED_PULLS, ""), 1, {"setattr": PER_REPO_PRS}),
    "github-graphql-rate-limit-far-reset": ([G(HISTORY, "rate_limit", repo=WEB, reset_in=3600)], "ingest_github",
                                            [WEB, rf"graphql \({HISTORY}\)", "rate limit", "resets at"],
                                            G(HISTORY, "", repo=WEB), 1, {}),
    **{f"github-persistent-{code}": ([G(op, "status", status=code)], "ingest_github",
                                     [PAY, rf"graphql \({op}\) answered HTTP {code}", "after the retries"],
                                     G(op, ""), TRIES, {"setattr": PER_REPO_PRS} if op == MERGED_PULLS else {})
       for code, op in ((500, MERGED_PULLS), (502, HISTORY), (503, MERGED_PULLS))},
    # (issue #15) the org-wide search of the night's merged PRs (github_repositories, before the fan-out)
    "github-search-persistent-500": ([F("github", GQL, "status", status=500, graphql={"operationName": SEARCH_OP})],
                                     "ingest_github", [r"acme", rf"graphql \({SEARCH_OP}\) answered HTTP 500",
                                                       "after the retries"],
                                     F("github", GQL, "", graphql={"operationName": SEARCH_OP}), TRIES, {}),
    "github-persistent-503-deployment-statuses": ([G(DEP_STATUSES, "status", status=503)], "ingest_github",
                                                  [r"GitHub acme/", rf"graphql \({DEP_STATUSES}\) answered HTTP 503",
                                                   "after the retries"], G(DEP_STATUSES, ""), 3 * TRIES, {}),
    "github-slow-past-timeout": ([F("github", rf"/repos/{WEB}/deployments$", "slow", seconds=1.2)], "ingest_github",
                                 [WEB, rf"/repos/{WEB}/deployments", "(?i)timed out"], rf"/repos/{WEB}/deployments$",
                                 TRIES, {}),
    "github-connection-reset": ([F("github", rf"/repos/{PAY}/commits$", "reset")], "ingest_github",
                                [PAY, rf"/repos/{PAY}/commits", "after the retries"], rf"/repos/{PAY}/commits$",
                                TRIES, {}),
    "github-truncated-json": ([G(MERGED_PULLS, "truncated_json")], "ingest_github",
                              [PAY, rf"graphql \({MERGED_PULLS}\): HTTP 200, body is not JSON"], G(MERGED_PULLS, ""),
                              1, {"setattr": PER_REPO_PRS}),
    "github-invalid-json": ([G(HISTORY, "invalid_json")], "ingest_github",
                            [PAY, rf"graphql \({HISTORY}\)", "not JSON"], G(HISTORY, ""), 1, {}),
    "github-link-loop": ([G(MERGED_PULLS, "link_loop")], "ingest_github",
                         [PAY, rf"graphql \({MERGED_PULLS}\)", "paging loop"], G(MERGED_PULLS, ""), 2,
                         {"setattr": {"ccwatch.ingest.github.graphql.PULLS_PAGE": 1, **PER_REPO_PRS}}),  # a 2nd page
    # (issue #15) the night's first GitHub request is the org-wide count batch, which names its repositories
    "github-401-revoked-token": ([], "ingest_github", [PAY, r"graphql \(CcwatchMergedCounts\)", "HTTP 401", "revoked"],
                                 GQL, 1, {"tokens": {"github_token": "ghp_revokedCCWATCH0123456789"}}),
    # (issue #15, stop 29) the repositories' settings are asked org-wide by GraphQL before the fan-out:
    # a repository the token cannot see is GraphQL's NOT_FOUND at its alias (r1: the config's second)
    "github-not-found-repository": ([F("github", GQL, "status", status=200, graphql={"operationName": REPOS_OP},
                                       body={"data": {"r1": None}, "errors": [
                                           {"type": "NOT_FOUND", "path": ["r1"], "locations": [{"line": 4, "column": 3}],
                                            "message": f"Could not resolve to a Repository with the name '{WEB}'."}]})],
                                    "ingest_github", [rf"graphql \({REPOS_OP}\)", "NOT_FOUND", rf"at r1: {WEB}",
                                                      f"{WEB} does not exist or the token cannot see it"],
                                    F("github", GQL, "", graphql={"operationName": REPOS_OP}), 1, {}),
    # Jira
    "jira-rate-limit-429-far-reset": ([F("jira", SEARCH, "rate_limit", retry_after=3600)], "ingest_jira",
                                      ["projects PAY, WEB, OPS", "search/jql", "HTTP 429", "retry after 3600s"],
                                      SEARCH, 1, {}),
    "jira-secondary-limit-long-retry-after": ([F("jira", CHANGELOG, "secondary_limit", retry_after=3600)],
                                              "ingest_jira", ["projects PAY, WEB, OPS", "/changelog", "HTTP 429"],
                                              CHANGELOG, 1, {}),
    **{f"jira-persistent-{code}": ([F("jira", CHANGELOG, "status", status=code)], "ingest_jira",
                                   ["projects PAY, WEB, OPS", r"[A-Z]+-\d+/changelog", f"HTTP {code}",
                                    "after the retries"], CHANGELOG, TRIES, {})
       for code in (500, 502, 503)},
    "jira-slow-past-timeout": ([F("jira", SEARCH, "slow", seconds=1.0)], "ingest_jira",
                               ["projects PAY, WEB, OPS", "search", "(?i)timed? ?out"], SEARCH, TRIES, {}),
    "jira-connection-reset": ([F("jira", r"/field$", "reset")], "ingest_jira",
                              ["projects PAY, WEB, OPS", "GET field", "after the retries"], r"/field$", TRIES, {}),
    "jira-truncated-json": ([F("jira", CHANGELOG, "truncated_json")], "ingest_jira",
                            ["projects PAY, WEB, OPS", r"[A-Z]+-\d+/changelog", "not JSON"], CHANGELOG, 1, {}),
    "jira-invalid-json": ([F("jira", SEARCH, "invalid_json")], "ingest_jira",
                          ["projects PAY, WEB, OPS", "search", "not JSON"], SEARCH, 1, {}),
    "jira-401-revoked-token": ([], "ingest_jira", ["projects PAY, WEB, OPS", "HTTP 401", "API token"], r"/field$",
                               1, {"tokens": {"jira_token": "jira-revokedCCWATCH0123456789"}}),
    # fields missing from payloads that cannot be stored as NULL without changing the population or
    # a verdict the wrong way: the load fails loudly, naming the record (raw payloads are kept staged)
    "github-pull-merged_at-absent": ([G(MERGED_PULLS, "drop_field", field=f"{PULL_NODES}.mergedAt")],
                                     "load_warehouse", [r"github gql_pull acme/payments-api#\d+", "no mergedAt"],
                                     G(MERGED_PULLS, ""), 1, {"setattr": PER_REPO_PRS}),
    "github-deployment-status-state-absent": ([G(DEP_STATUSES, "drop_field", field="data.nodes.statuses.nodes.state")],
                                              "load_warehouse",
                                              [r"github gql_deployment_statuses acme/[a-z-]+/deployments/\d+",
                                               "has no state"], G(DEP_STATUSES, ""), 3, {}),
    # a same-date rerun that fails keeps the earlier results and archive
    "rerun-github-persistent-503": ([G(MERGED_PULLS, "status", status=503)], "ingest_github",
                                    [PAY, rf"graphql \({MERGED_PULLS}\) answered HTTP 503"], G(MERGED_PULLS, ""),
                                    TRIES, {"date": EARLIER, "setattr": PER_REPO_PRS}),
    "rerun-jira-401-revoked-token": ([], "ingest_jira", ["projects PAY, WEB, OPS", "HTTP 401"], r"/field$", 1,
                                     {"date": EARLIER, "tokens": {"jira_token": "jira-revokedCCWATCH0123456789"}}),
}


def _assert_nothing_published(base, home: Path, server: SandboxServer, as_of, rerun: bool) -> None:
    assert server.slack_messages == [], "nothing may be posted for a run that failed before its verdict"
    got = results(home, as_of)  # the warehouse still opens
    if rerun:
        assert got == base["earlier"], "a failed rerun must leave the earlier results unchanged"
    else:
        assert got == [], "no control results for a date whose fetch failed"
        assert results(home, EARLIER) == base["earlier"]
    assert archive_hashes(home) == base["archives"], "earlier archives must stay byte-identical (none added)"
    for name in base["archives"]:
        assert verify_archive(home / "evidence" / name) == []
    assert query(home, "SELECT count(*) FROM slack_alerts")[0][0] == base["alerts"]


@pytest.mark.parametrize("case", list(FAILS), ids=list(FAILS))
def test_source_fault_fails_the_run_loudly_and_publishes_nothing(case, base, settings, tmp_path, monkeypatch, waits):
    faults, stage, patterns, faulted, max_requests, extra = FAILS[case]
    for target, value in extra.get("setattr", {}).items():
        monkeypatch.setattr(target, value)
    as_of = extra.get("date", DAY)
    home = fresh_home(base, tmp_path)
    with SandboxServer(SCENARIO) as server:
        for f in faults:
            server.add_fault(f)
        run = run_pipeline(settings, server, as_of, home, extra.get("tokens"))
        _assert_nothing_published(base, home, server, as_of, rerun=as_of == EARLIER)
        time.sleep(max([f.get("seconds", 0) for f in faults if f["mode"] == "slow"], default=0))
        requests = list(server.requests)  # a slow answer is recorded once its sleep is over
    assert run.failed_stage == stage, (run.failed_stage, run.error)
    if stage.startswith("ingest_"):
        assert isinstance(run.error, SourceError), repr(run.error)
        assert run.completed == [], "nothing after a failed fetch may run"
    else:
        assert isinstance(run.error, NormalizeError), repr(run.error)
        assert run.completed == ["ingest", "resolve_tickets"]
    msg = str(run.error)
    for pattern in patterns:
        assert re.search(pattern, msg), f"{pattern!r} not in {msg!r}"
    hits = [r for r in requests if hit(r, faulted)]
    assert 1 <= len(hits) <= max_requests + (1 if stage == "ingest_github" and not faults else 0), \
        [(r["path"], r["status"]) for r in hits]

    def same(a, b):  # one request retried: same path (and same GraphQL operation and variables)
        return a["path"] == b["path"] and a.get("graphql") == b.get("graphql")

    if max_requests % TRIES == 0 and faults and stage.startswith("ingest_") and faults[0]["mode"] != "drop_field":
        assert any(len([r for r in hits if same(r, h)]) == TRIES for h in hits), \
            ("retried, then gave up", [(r["path"], r["status"]) for r in hits])
    # bounded in time: all waits of a request together stay within the policy's budget (a far reset
    # or Retry-After is not waited for: the recording clock refuses any wait above the policy's limits)
    assert sum(waits) <= FAST.max_wait * max_requests, waits
    if not (max_requests % TRIES == 0 and faults and faults[0]["mode"] in ("status", "reset", "slow")):
        assert waits == [], ("a fault that is not retried waits for nothing", waits)
    for token in ("ghp_revokedCCWATCH", "jira-revokedCCWATCH", DEMO_AUTH["github_token"], DEMO_AUTH["jira_token"]):
        assert token not in msg


def test_duplicate_items_across_pages_load_once(base, settings, tmp_path, monkeypatch):
    monkeypatch.setattr("ccwatch.ingest.github.client.PER_PAGE", 2)  # several pages per listing
    home = fresh_home(base, tmp_path)
    with SandboxServer(SCENARIO) as server:
        for path in (r"/commits$", r"/deployments$"):  # REST listings: a page's items again after the next
            server.add_fault(F("github", path, "duplicate_page"))
        # GraphQL: the night's merged PRs (with their reviews) and a deployment's statuses come twice
        # (since GraphQL replaced the REST pulls, reviews and statuses listings; issue #15)
        server.add_fault(F("github", GQL, "duplicate_page", graphql={"operationName": SEARCH_OP}))
        server.add_fault(G(DEP_STATUSES, "duplicate_page"))
        run = run_pipeline(settings, server, DAY, home)
        pages = [r for r in server.requests if r["query"].get("page") not in (None, "1") and r["status"] == 200]
        assert len(server.slack_messages) == 1
    assert run.error is None, run.error
    assert pages, "the fault needs listings of several pages"
    assert results(home, DAY) == base["day"], "repeated items must not change a single result"
    for table, key in (("pull_requests", "repo, number"), ("reviews", "repo, review_id"),
                       ("commits", "repo, branch, sha"), ("deployments", "repo, deployment_id"),
                       ("deployment_statuses", "repo, status_id"), ("control_results", "as_of, change_id, control_id")):
        dupes = query(home, f"SELECT {key}, count(*) FROM {table} GROUP BY ALL HAVING count(*) > 1")
        assert dupes == [], f"duplicate rows in {table}: {dupes[:3]}"
    assert results(home, EARLIER) == base["earlier"]


# Missing fields: stored as NULL, the control fails closed (never passes for want of evidence).
# (faults, the SQL that must find the NULL, control, changes whose status must not be 'pass'),
# on the GraphQL answers.
CHECK_RUNS = "commits.nodes.commit.checkSuites.nodes.checkRuns.nodes"
MISSING = {
    "github-pull-user-null": ([G(MERGED_PULLS, "drop_field", repo=repo, field=f"{PULL_NODES}.author", to="null")
                               for repo in (PAY, WEB)],
                              "SELECT repo || '#' || number FROM pull_requests WHERE author_login IS NULL",
                              "CC8.1-04"),
    "github-review-submitted_at-absent": ([G(MERGED_PULLS, "drop_field", repo=repo,
                                             field=f"{PULL_NODES}.reviews.nodes.submittedAt") for repo in (PAY, WEB)],
                                          "SELECT repo || '#' || pr_number FROM reviews WHERE submitted_at IS NULL",
                                          "CC8.1-03"),
    "github-check-conclusion-absent": ([G(MERGED_PULLS, "drop_field", repo=repo,
                                          field=f"{PULL_NODES}.{CHECK_RUNS}.conclusion") for repo in (PAY, WEB)],
                                       None, "CC8.1-05"),
    # (r2) Jira names no one: every changelog history without its author (a deleted or anonymous
    # user); the final approvals then come from unknown actors, which a SoD clause cannot clear
    "jira-changelog-author-null": ([F("jira", CHANGELOG, "drop_field", field="author", to="null")],
                                   "SELECT DISTINCT f.change_id FROM change_facts f JOIN ticket_transitions t "
                                   "ON t.key = f.ticket_key WHERE t.author IS NULL AND t.to_status = 'Approved' "
                                   "AND t.at <= TIMESTAMP '2026-11-25 00:00:00'",
                                   "CC8.1-04"),
}


@pytest.mark.parametrize("case", list(MISSING), ids=list(MISSING))
def test_missing_fields_are_null_and_fail_closed(case, base, settings, tmp_path, monkeypatch):
    faults, null_sql, control = MISSING[case]
    if case.startswith("github-"):  # faults on the per-repository PR pages
        for target, value in PER_REPO_PRS.items():
            monkeypatch.setattr(target, value)
    home = fresh_home(base, tmp_path)
    with SandboxServer(SCENARIO) as server:
        for fault in faults:
            server.add_fault(fault)
        run = run_pipeline(settings, server, DAY, home)
        reached = [r for r in server.requests if any(hit(r, f) and r["status"] == 200 for f in faults)]
    assert reached, "the fault must reach a fetched payload"
    assert run.error is None or isinstance(run.error, (SourceError, StageError)), repr(run.error)
    if run.error is not None:  # failing loudly is acceptable; then nothing is published
        assert run.failed_stage in STAGES and results(home, DAY) == []
        return
    affected = {r[0] for r in query(home, null_sql)} if null_sql else set()
    if null_sql:
        assert affected, "the missing value must be stored as NULL"
    before = {(c, k): s for c, _r, k, s, _d in base["day"]}
    after = {(c, k): s for c, _r, k, s, _d in results(home, DAY)}
    assert set(after) == set(before)
    changed = {key: (before[key], after[key]) for key in after if before[key] != after[key]}
    assert changed, "dropping the evidence must change some verdict"
    for (change, ctl), (was, now) in changed.items():
        assert now != "pass", f"{change} {ctl}: {was} -> pass from missing evidence"
    assert any(ctl == control for _c, ctl in changed), (control, changed)
    for change in affected:  # the control that needs the missing value never passes on it
        assert after.get((change, control), "fail") != "pass", (change, control)


# Slack down: after the evidence is written; no message is recorded, nothing remembered as alerted.
SLACK = {
    "slack-ratelimited-far-retry-after": ([F("slack", POST, "rate_limit", retry_after=3600)], 1, "ratelimited"),
    **{f"slack-persistent-{code}": ([F("slack", POST, "status", status=code)], 1 + SLACK_RETRIES, "failed")
       for code in (500, 502, 503)},
    "slack-slow-past-timeout": ([F("slack", POST, "slow", seconds=1.2)], 1 + SLACK_RETRIES, "(?i)timed? ?out"),
    "slack-connection-reset": ([F("slack", POST, "reset")], 1 + SLACK_RETRIES, "failed"),
    "slack-truncated-json": ([F("slack", POST, "truncated_json")], 1, "failed"),
    "slack-invalid-json": ([F("slack", POST, "invalid_json")], 1, "failed"),
    "slack-invalid-auth": ([], 1, "invalid_auth"),
}


@pytest.mark.parametrize("case", list(SLACK), ids=list(SLACK))
def test_slack_fault_fails_the_alert_and_keeps_the_evidence(case, base, settings, tmp_path, waits):
    faults, max_posts, pattern = SLACK[case]
    home = fresh_home(base, tmp_path, "evaluated")  # DAY evaluated and archived: the alert_slack task runs
    report = str(home / "evidence" / f"{DAY:%Y-%m-%d}" / "report.html")
    tokens = {"slack_token": "xoxb-revokedCCWATCH0123456789"} if not faults else {}
    with SandboxServer(SCENARIO) as server:
        for f in faults:
            server.add_fault(f)
        with pytest.raises(SlackSendError) as err:
            p.alert_slack(settings, DAY, home, endpoints(server, tokens)["slack"], report)
        time.sleep(max([f.get("seconds", 0) for f in faults if f["mode"] == "slow"], default=0))
        posts = [r for r in server.requests if re.search(POST, r["path"])]
        assert server.slack_messages == [], "no message may count as delivered"
    msg = str(err.value)
    assert "chat.postMessage" in msg and "#compliance-alerts" in msg and re.search(pattern, msg), msg
    assert "xoxb-" not in msg
    assert 1 <= len(posts) <= max_posts, len(posts)
    assert len(waits) == len(posts) - 1, ("one bounded wait before each retry, none after the last", waits)
    # the verdict and its evidence stay; nothing is remembered as alerted, so the next attempt alerts again
    assert results(home, DAY) == base["day"] and results(home, EARLIER) == base["earlier"]
    assert query(home, "SELECT count(*) FROM slack_alerts")[0][0] == base["alerts"]
    assert archive_hashes(home) == base["evaluated_archives"]
    for name in base["evaluated_archives"]:
        assert verify_archive(home / "evidence" / name) == []
    with SandboxServer(SCENARIO) as server:  # Slack is back: the retried task alerts
        assert p.alert_slack(settings, DAY, home, endpoints(server)["slack"], report) == {"sent": True}
        assert len(server.slack_messages) == 1
