"""Fault modes of the API double, driven through the real PyGithub, jira and slack_sdk clients.

The clients run without retries here: these tests check what the double answers; the
connectors' reaction to the same faults is in tests/integration/ingest/test_faults_*.py.
"""

from __future__ import annotations

import json
import time
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests
from ccwatch.sandbox import SandboxServer
from github import Auth, Github, RateLimitExceededException
from jira import JIRA, JIRAError
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

GH_TOKEN, JIRA_USER, JIRA_TOKEN, SLACK_TOKEN = "ghp_faults", "bot@acme.example", "jira-faults", "xoxb-faults"
REPO = "acme/api"
SHA = "a" * 40


def scenario() -> dict:
    pulls = [{"number": n, "title": f"change {n}", "user": "carol-dev", "state": "closed", "base": "main",
              "head_ref": f"f/{n}", "head_sha": SHA, "created_at": "2026-11-01T00:00:00Z",
              "closed_at": "2026-11-02T00:00:00Z", "merged_at": "2026-11-02T00:00:00Z", "merged_by": "bob-rev",
              "merge_commit_sha": SHA} for n in range(1, 6)]
    return {
        "meta": {"as_of": "2026-11-25T00:00:00Z"},
        "auth": {"github_token": GH_TOKEN, "jira_user": JIRA_USER, "jira_token": JIRA_TOKEN, "slack_token": SLACK_TOKEN},
        "github": {"repos": {REPO: {
            "id": 1, "default_branch": "main", "branches": {"main": {"protected": False}},
            "commits": [{"sha": SHA, "parents": [], "author": "carol-dev", "committer": "web-flow",
                         "date": "2026-11-02T00:00:00Z", "message": "init"}],
            "pulls": pulls,
            "reviews": {"1": [{"id": 801, "user": "bob-rev", "state": "APPROVED", "commit_id": SHA,
                               "submitted_at": "2026-11-01T12:00:00Z"}]}}}},
        "jira": {"deployment_type": "Server", "statuses": {"Done": "done"},
                 "issues": {f"PAY-{n}": {"project": "PAY", "summary": f"s{n}", "issuetype": "Story", "status": "Done",
                                         "created": "2026-11-01T00:00:00Z", "updated": "2026-11-01T00:00:00Z"}
                            for n in range(1, 6)}},
        "slack": {"channels": {"compliance-alerts": "C0CCWATCH1"}},
    }


SCENARIO_FAULT = {"service": "github", "path": "/rate_limit$", "mode": "status", "status": 503}


@pytest.fixture()
def server():
    with SandboxServer(scenario()) as srv:
        yield srv


def gh(srv: SandboxServer) -> Github:
    return Github(auth=Auth.Token(GH_TOKEN), base_url=srv.url, retry=None, per_page=2)


def raw_get(srv: SandboxServer, path: str, **params):
    """A GitHub GET through PyGithub's requester: (status, headers, body text)."""
    return gh(srv).requester.requestJson("GET", srv.url + path, parameters=params or None)


def jira(srv: SandboxServer) -> JIRA:
    return JIRA(server=srv.url, basic_auth=(JIRA_USER, JIRA_TOKEN), get_server_info=False, max_retries=0)


def slack(srv: SandboxServer, timeout: int = 30) -> WebClient:
    return WebClient(token=SLACK_TOKEN, base_url=srv.url + "/api/", timeout=timeout)


def statuses(srv: SandboxServer, needle: str) -> list[int]:
    return [q["status"] for q in srv.requests if needle in q["path"]]


def test_faults_are_validated_and_scenario_faults_are_active(server):
    with SandboxServer(dict(scenario(), faults=[SCENARIO_FAULT])) as with_fault:
        assert with_fault.faults == [SCENARIO_FAULT]
        assert raw_get(with_fault, "/rate_limit")[0] == 503
    for bad in ({"service": "gitlab", "mode": "status", "status": 500}, {"service": "github", "mode": "explode"},
                {"service": "jira", "mode": "link_loop"}, {"service": "github", "mode": "status"},
                {"service": "github", "mode": "slow", "typo": 1}, {"service": "github", "mode": "reset", "times": -1},
                {"service": "github", "mode": "drop_field", "field": "x", "to": "value"},  # value missing
                {"service": "github", "mode": "drop_field", "field": "x", "to": "anything"}):
        with pytest.raises(ValueError, match="sandbox fault"):
            server.add_fault(bad)
    with pytest.raises(ValueError, match="unknown top-level"):
        SandboxServer({"fault": []})


def test_after_times_method_and_query_select_the_hit_requests(server):
    server.add_fault({"service": "github", "path": r"/pulls$", "query": {"page": "2"}, "method": "GET",
                      "mode": "status", "status": 500, "after": 1, "times": 2})
    got = [raw_get(server, f"/repos/{REPO}/pulls", state="closed", page=p)[0] for p in (1, 2, 2, 2, 2, 1)]
    assert got == [200, 200, 500, 500, 200, 200]  # page 2 only; skips the first, hits two



@pytest.mark.faults_may_not_fire(reason="checks the list of unfired faults itself")
def test_unfired_lists_the_faults_that_hit_no_request_cleared_ones_included(server):
    scenario_fault = server.add_fault(SCENARIO_FAULT)  # /rate_limit$: not asked yet
    skipped = server.add_fault({"service": "github", "path": r"/pulls$", "mode": "status", "status": 500, "after": 5})
    hit = server.add_fault({"service": "github", "path": r"/pulls$", "mode": "status", "status": 502, "times": 1})
    assert raw_get(server, f"/repos/{REPO}/pulls")[0] == 502  # matched by both; only the second hit it
    assert server.unfired_faults() == [scenario_fault, skipped] and hit not in server.unfired_faults()
    assert raw_get(server, "/rate_limit")[0] == 503
    assert server.unfired_faults() == [skipped]
    server.clear_faults()
    assert server.unfired_faults() == [skipped]  # clearing a fault does not make it count as fired
    # a hit that changes nothing is not a fired fault: a field the answer does not have
    missing = server.add_fault({"service": "github", "path": r"/pulls$", "mode": "drop_field", "field": "no_such"})
    present = server.add_fault({"service": "github", "path": r"/pulls$", "mode": "drop_field", "field": "title"})
    assert raw_get(server, f"/repos/{REPO}/pulls", state="closed")[0] == 200
    assert server.unfired_faults() == [skipped, missing] and present not in server.unfired_faults()


@pytest.mark.faults_may_not_fire(reason="checks the list of unfired hooks itself")
def test_unfired_hooks_lists_the_hooks_that_changed_no_answer_unset_ones_included(server):
    from ccwatch.sandbox.http import SandboxResponse

    def gateway(service, req, resp):
        return SandboxResponse(status=502, data={"message": "bad gateway"}) if req.path.endswith("/pulls") else None

    def same(service, req, resp):
        return resp

    server.fault_hook = same
    assert raw_get(server, f"/repos/{REPO}/pulls")[0] == 200
    server.fault_hook = gateway
    assert server.unfired_hooks() == [same, gateway]  # set, not yet asked
    assert raw_get(server, "/rate_limit")[0] == 200  # another request: the hook returned None
    assert server.unfired_hooks() == [same, gateway]
    assert raw_get(server, f"/repos/{REPO}/pulls")[0] == 502
    server.fault_hook = None
    assert server.unfired_hooks() == [same] and server.fault_hook is None

def test_github_primary_rate_limit(server):
    server.add_fault({"service": "github", "path": "/pulls", "mode": "rate_limit", "reset_in": 120, "times": 1})
    with pytest.raises(RateLimitExceededException) as err:
        gh(server).get_repo(REPO).get_pulls(state="closed")[0]
    exc = err.value
    assert exc.status == 403 and exc.data["message"].startswith("API rate limit exceeded for user ID")
    assert exc.headers["x-ratelimit-remaining"] == "0"
    assert abs(int(exc.headers["x-ratelimit-reset"]) - (time.time() + 120)) < 3
    assert "retry-after" not in exc.headers  # primary limits say when, via the reset epoch
    assert gh(server).get_repo(REPO).get_pulls(state="closed")[0].number in range(1, 6)  # times=1: over


def test_github_secondary_limit(server):
    server.add_fault({"service": "github", "path": f"/repos/{REPO}$", "mode": "secondary_limit", "retry_after": 7})
    with pytest.raises(RateLimitExceededException) as err:
        gh(server).get_repo(REPO)
    assert err.value.status == 403 and err.value.headers["retry-after"] == "7"
    assert err.value.data["message"].startswith("You have exceeded a secondary rate limit")


def test_jira_and_slack_rate_limits_are_429_with_retry_after(server):
    server.add_fault({"service": "jira", "path": "/serverInfo$", "mode": "rate_limit", "retry_after": 3})
    with pytest.raises(JIRAError) as err:
        jira(server).server_info()
    assert err.value.status_code == 429 and err.value.response.headers["Retry-After"] == "3"
    assert err.value.response.headers["X-RateLimit-Reset"].endswith("Z")
    server.add_fault({"service": "slack", "path": "chat.postMessage", "mode": "secondary_limit", "retry_after": 2,
                      "times": 1})
    with pytest.raises(SlackApiError) as serr:
        slack(server).chat_postMessage(channel="#compliance-alerts", text="one")
    assert serr.value.response.status_code == 429 and serr.value.response["error"] == "ratelimited"
    assert serr.value.response.headers["retry-after"] in ("2", ["2"])


def test_slack_message_is_recorded_only_when_its_answer_reached_the_client(server):
    server.add_fault({"service": "slack", "path": "chat.postMessage", "mode": "rate_limit", "times": 1})
    with pytest.raises(SlackApiError):
        slack(server).chat_postMessage(channel="#compliance-alerts", text="rate limited")
    assert server.slack_messages == []  # the client got a 429: nothing was posted
    server.add_fault({"service": "slack", "path": "chat.postMessage", "mode": "slow", "seconds": 1.0, "after": 1,
                      "times": 1})
    # slack_sdk retries a dropped connection once (ConnectionErrorRetryHandler): reset both tries
    server.add_fault({"service": "slack", "path": "chat.postMessage", "mode": "reset", "after": 2, "times": 2})
    assert slack(server).chat_postMessage(channel="#compliance-alerts", text="delivered")["ok"] is True
    with pytest.raises(Exception, match="(?i)timed out"):  # slow beyond the client's timeout
        slack(server, timeout=0.3).chat_postMessage(channel="#compliance-alerts", text="timed out")
    with pytest.raises(Exception):  # noqa: B017 - connection reset: urllib raises its own error types
        slack(server).chat_postMessage(channel="#compliance-alerts", text="reset")
    time.sleep(1.0)  # let the slow answer's thread finish
    assert [m["text"] for m in server.slack_messages] == ["delivered"]
    assert sorted(statuses(server, "chat.postMessage")) == [0, 0, 200, 200, 429]  # the slow one: answered too late


def test_status_mode_with_realistic_bodies(server):
    server.add_fault({"service": "github", "path": "/pulls/1$", "mode": "status", "status": 502})
    status, headers, body = raw_get(server, f"/repos/{REPO}/pulls/1")
    assert status == 502 and json.loads(body) == {"message": "Server Error"} and "x-ratelimit-remaining" in headers
    server.add_fault({"service": "jira", "path": "/serverInfo$", "mode": "status", "status": 500})
    with pytest.raises(JIRAError) as err:
        jira(server).server_info()
    assert err.value.status_code == 500 and "Internal server error" in err.value.text


def test_slow_and_reset(server):
    server.add_fault({"service": "github", "path": f"/repos/{REPO}$", "mode": "slow", "seconds": 1.3, "times": 1})
    with pytest.raises(requests.exceptions.ReadTimeout):  # PyGithub takes whole seconds only
        Github(auth=Auth.Token(GH_TOKEN), base_url=server.url, retry=None, timeout=1).get_repo(REPO)
    server.add_fault({"service": "github", "path": "/branches/main$", "mode": "reset", "times": 1})
    with pytest.raises(requests.exceptions.ConnectionError):
        raw_get(server, f"/repos/{REPO}/branches/main")
    assert statuses(server, "/branches/main") == [0]  # recorded: no answer was sent
    assert raw_get(server, f"/repos/{REPO}/branches/main")[0] == 200


def test_truncated_and_invalid_json(server):
    whole = raw_get(server, f"/repos/{REPO}/pulls/2")[2]
    server.add_fault({"service": "github", "path": "/pulls/2$", "mode": "truncated_json", "times": 1})
    status, headers, body = raw_get(server, f"/repos/{REPO}/pulls/2")
    assert status == 200 and body == whole[: len(whole.encode()) // 2] and "etag" not in headers
    with pytest.raises(ValueError):
        json.loads(body)
    server.add_fault({"service": "jira", "path": "/field$", "mode": "invalid_json"})
    with pytest.raises(ValueError):  # requests' JSONDecodeError
        jira(server).fields()


def test_link_loop_points_next_at_the_same_page(server):
    server.add_fault({"service": "github", "path": "/pulls$", "mode": "link_loop"})
    status, headers, _ = raw_get(server, f"/repos/{REPO}/pulls", state="closed", per_page=2, page=2)
    nxt = [p.split(";")[0].strip(" <>") for p in headers["link"].split(",") if 'rel="next"' in p]
    assert len(nxt) == 1 and nxt[0].startswith(f"{server.url}/repos/{REPO}/pulls?")
    assert sorted(parse_qsl(urlsplit(nxt[0]).query)) == [("page", "2"), ("per_page", "2"), ("state", "closed")]


def test_duplicate_page_repeats_the_previous_page_and_keeps_every_item(server):
    pages = [json.loads(raw_get(server, f"/repos/{REPO}/pulls", state="closed", per_page=2, page=p)[2]) for p in (1, 2)]
    server.add_fault({"service": "github", "path": "/pulls$", "mode": "duplicate_page", "query": {"page": "2"}})
    dup = json.loads(raw_get(server, f"/repos/{REPO}/pulls", state="closed", per_page=2, page=2)[2])
    assert [p["number"] for p in dup] == [p["number"] for p in pages[0] + pages[1]]
    server.add_fault({"service": "github", "path": "/reviews$", "mode": "duplicate_page"})
    reviews = json.loads(raw_get(server, f"/repos/{REPO}/pulls/1/reviews")[2])  # page 1: served twice
    assert [r["id"] for r in reviews] == [801, 801]


def test_drop_field_null_ghost_and_absent(server):
    server.add_fault({"service": "github", "path": "/pulls/1$", "mode": "drop_field", "field": "user", "to": "null"})
    server.add_fault({"service": "github", "path": "/pulls/1$", "mode": "drop_field", "field": "merged_by", "to": "ghost"})
    server.add_fault({"service": "github", "path": "/reviews$", "mode": "drop_field", "field": "user"})
    pr = gh(server).get_repo(REPO).get_pull(1)
    assert pr.raw_data["user"] is None and pr.user is None
    assert pr.merged_by.login == "ghost" and pr.merged_by.id == 10137
    reviews = json.loads(raw_get(server, f"/repos/{REPO}/pulls/1/reviews")[2])
    assert reviews and all("user" not in r for r in reviews)


def test_drop_field_to_a_value(server):
    """``to: value``: any JSON in place of the field (e.g. an enum value GitHub added after the
    published schema the GraphQL double serves)."""
    server.add_fault({"service": "github", "path": "/reviews$", "mode": "drop_field", "field": "state", "to": "value",
                      "value": "SOME_FUTURE_STATE"})
    reviews = json.loads(raw_get(server, f"/repos/{REPO}/pulls/1/reviews")[2])
    assert reviews and all(r["state"] == "SOME_FUTURE_STATE" for r in reviews)
