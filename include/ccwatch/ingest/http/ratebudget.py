"""A rate-limit budget shared by concurrent GitHub fetches (threads of one process).

GitHub counts a token's requests per *resource* (``core`` for REST, ``graphql`` for GraphQL
points, ...) and says on every answer how many are left: ``X-RateLimit-Remaining``, when the
window resets: ``X-RateLimit-Reset`` (epoch seconds), and which resource: ``X-RateLimit-Resource``.
Every worker feeds the answers it gets into one :class:`RateBudget` (:meth:`RateBudget.update`)
and asks it before each request (:meth:`RateBudget.acquire`).  When a resource's remaining
falls under the *reserve* (default ``50 + 10 per worker``: the requests other workers may have
in flight plus a margin for other users of the token), every worker asking for that resource
waits until the reset, if that wait fits the retry policy's budget (``RetryPolicy.max_wait``,
ingest/http/retry.py); else :meth:`acquire` raises :class:`SourceError` naming the
resource, what is left and when it resets, so the fetch fails loudly instead of collecting
403s.  A 304 (conditional request) does not lower the remaining count; its headers still feed
the budget.

Within one window the remaining count only falls, so answers arriving out of order are merged
by taking the lowest count; a later reset time starts a new window.  Once the reset time has
passed, the resource is unknown again (no wait) until the next answer says otherwise.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from ccwatch.common.times import epoch_z
from ccwatch.ingest.errors import SourceError
from ccwatch.ingest.http.retry import DEFAULT_POLICY, RetryPolicy

BASE_RESERVE = 50
RESERVE_PER_WORKER = 10
RESET_SLACK_SECONDS = 1.0  # GitHub's reset second is not exact


def default_reserve(workers: int) -> int:
    return BASE_RESERVE + RESERVE_PER_WORKER * max(int(workers), 1)


class RateBudget:
    """Thread-safe: one instance shared by every worker of a fetch."""

    def __init__(self, *, workers: int = 1, reserve: int | None = None, policy: RetryPolicy = DEFAULT_POLICY,
                 clock: Callable[[], float] = time.time) -> None:
        self.reserve = default_reserve(workers) if reserve is None else int(reserve)
        self.max_wait = float(policy.max_wait)
        self._clock = clock
        self._cond = threading.Condition()
        self._state: dict[str, tuple[int, int]] = {}  # resource -> (remaining, reset epoch)
        self.waited = 0.0   # seconds spent blocked (all workers together), for the logs/benchmarks
        self.charged: dict[str, int] = {}  # resource -> answers seen that lowered the count

    # -- feeding ----------------------------------------------------------------------------
    def update(self, headers: Mapping[str, Any] | None, default_resource: str = "core") -> None:
        """Read one answer's rate-limit headers (any letter case); answers without them are ignored."""
        h = {str(k).lower(): str(v) for k, v in dict(headers or {}).items()}
        remaining, reset = h.get("x-ratelimit-remaining", ""), h.get("x-ratelimit-reset", "")
        if not remaining.strip().isdigit() or not reset.strip().isdigit():
            return
        resource = (h.get("x-ratelimit-resource") or default_resource).strip() or default_resource
        rem, rst = int(remaining), int(reset)
        with self._cond:
            prev = self._state.get(resource)
            if prev is None or rst > prev[1]:
                self._state[resource] = (rem, rst)  # a new window
            elif rst == prev[1] and rem < prev[0]:
                self._state[resource] = (rem, rst)
                self.charged[resource] = self.charged.get(resource, 0) + (prev[0] - rem)
            self._cond.notify_all()

    def remaining(self, resource: str = "core") -> int | None:
        with self._cond:
            st = self._state.get(resource)
            return None if st is None or self._clock() >= st[1] else st[0]

    # -- asking -----------------------------------------------------------------------------
    def acquire(self, resource: str = "core") -> None:
        """Return when a request of ``resource`` may be sent; block while the remaining count is
        under the reserve and the reset is within the retry budget; else raise SourceError."""
        with self._cond:
            while True:
                st = self._state.get(resource)
                if st is None:
                    return
                remaining, reset = st
                now = self._clock()
                if now >= reset:
                    del self._state[resource]  # a new window: unknown until the next answer
                    return
                if remaining >= self.reserve:
                    return
                wait = reset - now + RESET_SLACK_SECONDS
                if wait > self.max_wait:
                    raise SourceError(
                        f"GitHub rate limit of the '{resource}' resource: {remaining} left (reserve "
                        f"{self.reserve}), resets at {epoch_z(reset)}; waiting {wait:.0f}s would pass the retry "
                        f"budget of {self.max_wait:.0f}s, so the fetch stops here (rerun after the reset)")
                start = self._clock()
                self._cond.wait(timeout=wait)
                self.waited += max(self._clock() - start, 0.0)
