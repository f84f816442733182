"""The shared rate-limit budget of concurrent GitHub fetches (connectors/ratebudget.py)."""

from __future__ import annotations

import threading
import time

import pytest
from ccwatch.common.endpoints import Endpoint
from ccwatch.demo_env import DEMO_AUTH
from ccwatch.ingest.errors import SourceError
from ccwatch.ingest.github.client import RepoClient, make_client
from ccwatch.ingest.http.ratebudget import RateBudget, default_reserve
from ccwatch.ingest.http.retry import RetryPolicy
from ccwatch.sandbox import SandboxServer


def headers(remaining: int, reset: int, resource: str | None = "core") -> dict[str, str]:
    # GitHub's header names and letter case (docs "Rate limits for the REST API")
    h = {"X-RateLimit-Limit": "5000", "X-RateLimit-Remaining": str(remaining), "X-RateLimit-Used": str(5000 - remaining),
         "X-RateLimit-Reset": str(reset)}
    if resource:
        h["X-RateLimit-Resource"] = resource
    return h


def test_default_reserve_grows_with_workers():
    assert default_reserve(1) == 60
    assert default_reserve(8) == 130
    assert RateBudget(workers=4).reserve == 90
    assert RateBudget(workers=4, reserve=7).reserve == 7


def test_acquire_passes_when_unknown_or_above_the_reserve():
    b = RateBudget(reserve=50)
    b.acquire("core")  # nothing known yet: no wait
    b.update(headers(51, int(time.time()) + 3600))
    b.acquire("core")
    assert b.waited == 0.0  # not blocked at all
    assert b.remaining("core") == 51


def test_resources_are_separate_and_out_of_order_answers_keep_the_lowest():
    reset = int(time.time()) + 3600
    b = RateBudget(reserve=10, policy=RetryPolicy(max_wait=1))
    b.update(headers(5, reset, "graphql"))
    b.update(headers(4000, reset))  # no resource header: core
    b.acquire("core")  # core is fine
    with pytest.raises(SourceError) as exc:
        b.acquire("graphql")
    text = str(exc.value)
    assert "'graphql'" in text and "5 left" in text and "resets at" in text
    b.update(headers(3990, reset))
    b.update(headers(3995, reset))  # an earlier answer arriving late
    assert b.remaining("core") == 3990
    b.update(headers(4999, reset + 3600))  # a new window
    assert b.remaining("core") == 4999


def test_raises_when_the_reset_is_past_the_retry_budget():
    reset = int(time.time()) + 3000
    b = RateBudget(workers=1, policy=RetryPolicy(max_wait=900))
    b.update(headers(59, reset))  # reserve 60
    with pytest.raises(SourceError) as exc:
        b.acquire("core")
    msg = str(exc.value)
    assert "'core'" in msg and "59 left" in msg and "reserve 60" in msg and "900s" in msg


def test_blocks_every_worker_until_the_reset_then_lets_them_go():
    reset = int(time.time()) + 2  # within the retry budget, and at least 1 s away: wait
    b = RateBudget(reserve=100, policy=RetryPolicy(max_wait=30))
    b.update(headers(3, reset))
    done: list[float] = []

    def worker():
        b.acquire("core")
        done.append(time.time())

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    time.sleep(0.3)
    assert done == []  # all blocked
    for t in threads:
        t.join(timeout=10)
    assert len(done) == 4
    assert min(done) >= reset  # nobody went before the reset
    assert b.waited > 0


def test_update_ignores_answers_without_rate_limit_headers():
    b = RateBudget(reserve=10)
    b.update({"ETag": 'W/"x"'})
    b.update(None)
    b.update({"x-ratelimit-remaining": "abc", "x-ratelimit-reset": "1"})
    assert b.remaining("core") is None


def test_the_connector_feeds_and_asks_the_budget_on_every_request():
    """Through PyGithub against the API double: the double's rate-limit headers reach the budget,
    and a budget under its reserve stops the request before it is sent."""
    scenario = {"auth": dict(DEMO_AUTH), "github": {
        "rate_limit": {"limit": 100, "used": 30, "reset": int(time.time()) + 7200},
        "repos": {"acme/x": {"default_branch": "main", "commits": []}}}}
    with SandboxServer(scenario) as server:
        ep = Endpoint(server.url + "/api/v3", token=DEMO_AUTH["github_token"])
        gh = make_client(ep)
        budget = RateBudget(reserve=60, policy=RetryPolicy(max_wait=60))
        r = RepoClient(gh, ep, "acme/x", budget=budget)
        r.get("")
        assert budget.remaining("core") == 69  # 100 - 30 - this request
        with pytest.raises(SourceError):
            for _ in range(20):
                r.get("")
        sent = [q for q in server.requests if q["path"].endswith("/repos/acme/x")]
        assert budget.remaining("core") == 59 and len(sent) == 11  # the 12th was never sent
        gh.close()
