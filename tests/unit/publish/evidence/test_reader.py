"""publish/evidence/reader.py: raw records and the deployments that carry a change, for ONE run."""

from __future__ import annotations

from datetime import UTC, datetime

from ccwatch.publish.evidence.reader import RawEvidence
from ccwatch.warehouse import connection

A, B = datetime(2026, 11, 20, tzinfo=UTC), datetime(2026, 11, 25, tzinfo=UTC)


def test_each_run_reads_the_deployments_that_carried_a_change_as_of_that_run():
    """An auditor's packet draws changes evaluated by several nightly runs: each change's
    deployments.json must be the one of the run whose results it shows, not the latest facts."""
    con = connection.connect(":memory:")
    con.executemany("INSERT INTO change_deployments VALUES (?, ?, ?, ?, ?, ?)", [
        (A.replace(tzinfo=None), "acme/api#1", "production", "production", 3001, 1),  # run A: failed then 3002
        (A.replace(tzinfo=None), "acme/api#1", "production", "production", 3002, 2),
        (B.replace(tzinfo=None), "acme/api#2", "production", "production", 3009, 5),  # run B: #1 left the window
    ])
    assert RawEvidence(con, A).change_deployments("acme/api#1") == {"production": [3001, 3002]}
    assert RawEvidence(con, B).change_deployments("acme/api#1") == {}
    assert RawEvidence(con, B).change_deployments("acme/api#2") == {"production": [3009]}


def test_fetched_is_the_earliest_and_latest_time_of_the_records_used():
    """manifest.json "fetched": each distinct fetch time counts once (issue #15: a time seen again is not
    parsed again), whatever the order; text that is not a time and absent records are ignored."""
    raw = RawEvidence(None, B)  # no query: only the records handed to _used
    for text in ("2026-11-20T10:00:00Z", "2026-11-18T09:00:00Z", "2026-11-20T10:00:00Z", "", "not a time",
                 "2026-11-22T00:00:00.5Z", "2026-11-18T09:00:00Z"):
        assert raw._used({"fetched_at": text}) == {"fetched_at": text}
    assert raw._used(None) is None
    assert raw.fetched == [datetime(2026, 11, 18, 9), datetime(2026, 11, 22, 0, 0, 0, 500000)]
