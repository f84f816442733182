"""A stand-in for the ``time`` module of the retry layers, so tests assert the waits a retry asked
for instead of timing a run with the wall clock (which a loaded machine stretches)."""

from __future__ import annotations

import time

#: the modules whose ``time.sleep`` is a retry wait: ccwatch's bounded retries (GitHub and Jira)
#: and slack_sdk's retry handlers
RETRY_CLOCKS = ("ccwatch.ingest.http.retry", "slack_sdk.http_retry.handler", "slack_sdk.http_retry.builtin_handlers")


class RecordingClock:
    """Records every sleep asked for; a wait longer than ``limit`` is refused at once (the test then
    fails fast instead of sleeping through, say, an hour-long rate-limit reset)."""

    def __init__(self, limit: float) -> None:
        self.limit = limit
        self.waits: list[float] = []

    def time(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        assert seconds <= self.limit, f"a retry asked to wait {seconds:.1f}s (more than {self.limit}s)"
        time.sleep(seconds)


def record_waits(monkeypatch, limit: float) -> list[float]:
    """Install a :class:`RecordingClock` in every retry layer; returns its list of waits (seconds)."""
    clock = RecordingClock(limit)
    for module in RETRY_CLOCKS:
        monkeypatch.setattr(f"{module}.time", clock)
    return clock.waits
