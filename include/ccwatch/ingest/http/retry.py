"""Bounded retries for both clients: jittered backoff, Retry-After and rate-limit resets honoured.

One :class:`RetryPolicy` says how often and how long a single request may be retried:

* 5xx answers, 429, connection resets and read timeouts are retried ``retries`` times with
  exponential backoff (``backoff`` * 2^n, at most ``backoff_max``) scaled by a random 50-100 %
  (jitter, so parallel runs do not retry in lockstep);
* an answer with ``Retry-After`` waits exactly that long; a GitHub primary rate limit
  (``X-RateLimit-Remaining: 0``) waits until ``X-RateLimit-Reset``; a GitHub secondary limit
  without ``Retry-After`` waits ``secondary_wait``;
* the sum of all waits of one request never exceeds ``max_wait``: a wait that would pass it
  is not started, the request fails at once (the last answer, or the rate-limit error, is
  what the connector turns into a SourceError).

PyGithub gets :class:`BoundedGithubRetry` (its ``GithubRetry`` tells a rate-limit 403 from an
access 403 by the body); the ``jira`` client gets :class:`BoundedRetry` mounted on its session,
with the library's own ``ResilientSession`` retries switched off (they retry only 429/503 and
connection errors, not 5xx or read timeouts, and sleep up to 60 s per try).
"""

from __future__ import annotations

import json
import random
import time
from dataclasses import dataclass
from typing import Any

from github import GithubRetry
from github.GithubException import RateLimitExceededExceedsMaxWait
from requests.adapters import HTTPAdapter
from urllib3 import Retry
from urllib3.exceptions import MaxRetryError, ResponseError

from ccwatch.common.times import epoch_z

MAX_RETRIES = 5
MAX_WAIT_SECONDS = 900.0  # all waits of one request together, rate-limit resets included
RETRY_STATUSES = (429, 500, 502, 503, 504)


@dataclass(frozen=True)
class RetryPolicy:
    retries: int = MAX_RETRIES
    max_wait: float = MAX_WAIT_SECONDS
    backoff: float = 1.0
    backoff_max: float = 60.0
    secondary_wait: float = 60.0


DEFAULT_POLICY = RetryPolicy()


class _Bounded:
    """Mixin for urllib3 ``Retry``: jittered backoff and a total wait budget per request."""

    def __init__(self, *args: Any, max_wait: float = MAX_WAIT_SECONDS, waited: float = 0.0, **kw: Any) -> None:
        self.max_wait = max_wait
        self.waited = waited
        self.planned = 0.0
        super().__init__(*args, **kw)

    def new(self, **kw: Any) -> Any:
        kw.setdefault("max_wait", self.max_wait)
        kw.setdefault("waited", self.waited)
        return super().new(**kw)  # type: ignore[misc]

    def increment(self, method: str | None = None, url: str | None = None, response: Any = None,
                  error: Exception | None = None, _pool: Any = None, _stacktrace: Any = None) -> Any:
        new = super().increment(method, url, response, error, _pool, _stacktrace)  # type: ignore[misc]
        wait = self._wait(new, response)
        if self.waited + wait > self.max_wait:
            self._over_budget(response, wait)
            reason = error or ResponseError(f"a wait of {wait:.0f}s would pass the {self.max_wait:.0f}s budget")
            raise MaxRetryError(_pool, url, reason)  # type: ignore[arg-type]
        new.waited = self.waited + wait
        new.planned = wait
        return new

    def _over_budget(self, response: Any, wait: float) -> None:
        """Hook: raise a more precise error than MaxRetryError."""

    def _wait(self, new: Any, response: Any) -> float:
        headers = getattr(response, "headers", None) or {}
        after = headers.get("Retry-After")
        if after:
            try:
                return max(float(self.parse_retry_after(after)), 0.0)  # type: ignore[attr-defined]
            except Exception:  # noqa: BLE001 - an unreadable header: fall back to the backoff
                pass
        reset = headers.get("X-RateLimit-Reset") or ""
        if headers.get("X-RateLimit-Remaining") == "0" and reset.isdigit():
            return max(int(reset) - time.time(), 0.0) + 1.0  # the reset second is not exact
        patched = new.__dict__.get("get_backoff_time")  # GithubRetry's rate-limit wait
        if patched is not None:
            return float(patched())
        failures = len(new.history)
        base = min(self.backoff_max, self.backoff_factor * 2 ** max(failures - 1, 0))  # type: ignore[attr-defined]
        return base * random.uniform(0.5, 1.0)

    def sleep(self, response: Any = None) -> None:
        if self.planned > 0:
            time.sleep(self.planned)


class BoundedRetry(_Bounded, Retry):
    """urllib3 Retry with jitter and a wait budget (for the jira client's session)."""


class BoundedGithubRetry(_Bounded, GithubRetry):
    """PyGithub's GithubRetry with jitter and a wait budget.

    GithubRetry reads a 403's body to tell a rate limit from an access error; the body is then
    gone from the answer, so a rate-limit 403 that is not retried any more is raised here as
    ``RateLimitExceededExceedsMaxWait`` carrying the body and headers.
    """

    def __init__(self, *args: Any, **kw: Any) -> None:
        self.last_body: Any = None
        super().__init__(*args, **kw)

    def get_content(self, resp: Any, url: str) -> bytes:  # type: ignore[override]
        content = GithubRetry.get_content(resp, url)
        self.last_body = content
        return content

    def increment(self, method: str | None = None, url: str | None = None, response: Any = None,
                  error: Exception | None = None, _pool: Any = None, _stacktrace: Any = None) -> Any:
        try:
            return super().increment(method, url, response, error, _pool, _stacktrace)
        except MaxRetryError:
            if response is not None and response.status == 403 and self.last_body is not None:
                self._over_budget(response, 0.0)
            raise

    def _over_budget(self, response: Any, wait: float) -> None:
        if response is not None and response.status == 403 and self.last_body is not None:
            raise RateLimitExceededExceedsMaxWait(403, _json(self.last_body), dict(response.headers), wait=wait)


def _json(body: Any) -> Any:
    try:
        return json.loads(body)
    except (TypeError, ValueError):
        return {"message": body.decode("utf-8", "replace") if isinstance(body, bytes) else str(body)}


def github_retry(policy: RetryPolicy = DEFAULT_POLICY) -> BoundedGithubRetry:
    return BoundedGithubRetry(total=policy.retries, backoff_factor=policy.backoff, backoff_max=policy.backoff_max,
                              status_forcelist=list(RETRY_STATUSES), raise_on_status=False,
                              respect_retry_after_header=True, max_wait=policy.max_wait,
                              max_rate_limit_wait=policy.max_wait, secondary_rate_wait=policy.secondary_wait)


def http_retry(policy: RetryPolicy = DEFAULT_POLICY) -> BoundedRetry:
    return BoundedRetry(total=policy.retries, backoff_factor=policy.backoff, backoff_max=policy.backoff_max,
                        status_forcelist=list(RETRY_STATUSES), allowed_methods=frozenset({"GET", "POST", "HEAD"}),
                        raise_on_status=False, respect_retry_after_header=True, max_wait=policy.max_wait)


def mount_retry(session: Any, policy: RetryPolicy = DEFAULT_POLICY) -> None:
    """Give a requests Session the bounded retry (for http and https)."""
    adapter = HTTPAdapter(max_retries=http_retry(policy))
    session.mount("http://", adapter)
    session.mount("https://", adapter)


def rate_limit_text(headers: Any) -> str:
    """When a rate-limit answer says it may be retried ("resets at ...", "retry after N s")."""
    h = {str(k).lower(): v for k, v in dict(headers or {}).items()}
    if h.get("retry-after"):
        return f"retry after {h['retry-after']}s"
    reset = str(h.get("x-ratelimit-reset") or "")
    if reset.isdigit():
        return "resets at " + epoch_z(int(reset))
    return f"resets at {reset}" if reset else "no reset time given"
