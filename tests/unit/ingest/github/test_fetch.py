"""Issue #15: the PR merges a branch's activity log records, for the nightly search's lag guard."""

from __future__ import annotations

from ccwatch.common.times import parse_ts
from ccwatch.ingest.github.fetch import merge_events
from ccwatch.ingest.records import RawRecord

LO, HI = parse_ts("2026-11-24T00:00:00Z"), parse_ts("2026-11-25T00:00:00Z")


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
