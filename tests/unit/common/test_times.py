"""common/times.py: every time conversion, one behaviour each."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from ccwatch.common import times


def test_parse_ts_reads_github_and_jira_spellings_as_naive_utc():
    assert times.parse_ts("2026-11-20T10:02:03Z") == datetime(2026, 11, 20, 10, 2, 3)
    assert times.parse_ts("2026-11-20T12:02:03.000+0200") == datetime(2026, 11, 20, 10, 2, 3)
    assert times.parse_ts(None) is None and times.parse_ts("") is None
    with pytest.raises(ValueError):
        times.parse_ts("yesterday")


def test_parse_ts_or_none_never_raises():
    assert times.parse_ts_or_none("yesterday") is None
    assert times.parse_ts_or_none(12) is None
    assert times.parse_ts_or_none("2026-11-20T10:02:03Z") == datetime(2026, 11, 20, 10, 2, 3)


def test_parse_as_of_is_aware_utc_and_a_plain_datetime():
    assert times.parse_as_of("2026-11-25") == datetime(2026, 11, 25, tzinfo=UTC)
    got = times.parse_as_of(datetime(2026, 11, 25, 3, tzinfo=timezone(timedelta(hours=2))))
    assert got == datetime(2026, 11, 25, 1, tzinfo=UTC) and type(got) is datetime


def test_naive_utc_and_evidence_date():
    aware = datetime(2026, 11, 25, 0, 30, tzinfo=timezone(timedelta(hours=1)))
    assert times.naive_utc(aware) == datetime(2026, 11, 24, 23, 30)
    assert times.naive_utc(datetime(2026, 1, 1)) == datetime(2026, 1, 1)
    assert times.evidence_date(aware) == date(2026, 11, 24)


def test_iso_forms():
    assert times.iso(datetime(2026, 11, 25, 1, 2, 3)) == "2026-11-25T01:02:03Z"
    assert times.iso(datetime(2026, 11, 25, 1, 2, 3, 5)) == "2026-11-25T01:02:03.000005Z"
    assert times.iso(date(2026, 11, 25)) == "2026-11-25" and times.iso(None) == "" and times.iso(7) == "7"
    assert times.iso_z(datetime(2026, 11, 25, tzinfo=UTC)) == "2026-11-25T00:00:00Z"
    with pytest.raises(ValueError):
        times.iso_z(datetime(2026, 11, 25))  # naive: refused, never read as local time
    assert times.epoch_z(0) == "1970-01-01T00:00:00Z"
    assert times.minute_z(datetime(2026, 11, 20, 10, 2, 59)) == "2026-11-20T10:02Z"
    assert times.parse_utc("2026-11-25T00:00:00Z") == datetime(2026, 11, 25, tzinfo=UTC)
