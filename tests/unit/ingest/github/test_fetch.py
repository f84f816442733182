"""Issue #15: the PR merges a branch's activity log records, for the nightly search's lag guard."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from ccwatch.common.times import parse_ts
from ccwatch.ingest.errors import SourceError
from ccwatch.ingest.github.fetch import merge_events, search_lag_guard
from ccwatch.ingest.records import RawRecord

LO, HI = parse_ts("2026-11-24T00:00:00Z"), parse_ts("2026-11-25T00:00:00Z")
SINCE, AS_OF = datetime(2026, 11, 24, tzinfo=UTC), datetime(2026, 11, 25, tzinfo=UTC)


def act(status: int) -> RawRecord:
    return RawRecord("github", "activity", "o/r:main", "https://api.github.com/x", "2026-11-25T00:00:00Z", None,
                     status_code=status)


def test_merges_in_the_range_are_counted():
    entries = [{"activity_type": "pr_merge", "timestamp": "2026-11-24T03:00:00Z"},
               {"activity_type": "merge_queue_merge", "timestamp": "2026-11-24T04:00:00Z"},
               {"activity_type": "push", "timestamp": "2026-11-24T05:00:00Z"},
               {"activity_type": "force_push", "timestamp": "2026-11-24T06:00:00Z"},
               {"activity_type": "pr_merge", "timestamp": "2026-11-23T23:00:00Z"},  # before the range
               {"activity_type": "pr_merge", "timestamp": "2026-11-25T00:00:01Z"},  # after as_of
               {"activity_type": "pr_merge", "timestamp": None}]
    assert merge_events(act(200), entries, LO, HI) == 2


def test_a_304_log_recorded_nothing_new_an_unreadable_one_rules_nothing_out():
    assert merge_events(act(304), None, LO, HI) == 0
    assert merge_events(act(403), None, LO, HI) is None
    assert merge_events(act(200), [], LO, HI) == 0


class Rc:
    repo, production_branch = "o/r", "main"


def guard(monkeypatch, searched: set, linked: set, merges, *, moved=True, answer=()) -> list:
    """Run search_lag_guard with the per-repository PR fetch stubbed: it 'finds' ``answer``."""
    asked = []

    def fetch_pulls(r, rc, start, as_of, since, seen):
        asked.append(since)
        seen.update(answer)
        return iter(())

    monkeypatch.setattr("ccwatch.ingest.github.graphql.fetch_pulls", fetch_pulls)
    list(search_lag_guard(None, Rc, SINCE, AS_OF, SINCE, set(searched), set(linked), merges, moved=moved))
    return asked


def test_the_guard_asks_per_repository_only_on_a_possible_miss(monkeypatch):
    assert guard(monkeypatch, {1, 2}, {1, 2}, (2, 2)) == [], "the search gave what history and log name"
    assert guard(monkeypatch, {1}, {1, 2}, (2, 1), answer={2}) == [SINCE], "a linked PR the search did not give"
    assert guard(monkeypatch, {1}, {1}, (2, 1)) == [SINCE], "the log records more merges than the search gave"
    assert guard(monkeypatch, {1}, {1}, (None, 1)) == [SINCE], "an unreadable log rules nothing out"
    assert guard(monkeypatch, {1}, {1}, (None, 1), moved=False) == [], "no move, no merge since the last run"


def test_a_linked_pr_the_repository_does_not_answer_either_fails_the_fetch(monkeypatch):
    with pytest.raises(SourceError, match=r"o/r: merged PR\(s\) #2 linked .* neither in the org-wide search"):
        guard(monkeypatch, {1}, {1, 2}, (2, 1))
