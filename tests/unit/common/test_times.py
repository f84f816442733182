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


def test_iso_of_datetimes_is_the_strftime_rendering():
    """iso() renders plain datetimes with isoformat (issue #15, the evidence step): the same text as the
    strftime rendering it replaced, for random times, aware ones, microseconds, and years < 1000 (kept
    on strftime) and datetime subclasses (kept on strftime)."""
    import random

    def reference(v: datetime) -> str:
        v = times.naive_utc(v)
        text = v.strftime("%Y-%m-%dT%H:%M:%S")
        return text + (f".{v.microsecond:06d}" if v.microsecond else "") + "Z"

    rnd = random.Random(15)
    values = [datetime(1000, 1, 1), datetime(9999, 12, 31, 23, 59, 59, 999999), datetime(999, 12, 31, 1, 2, 3),
              datetime(5, 1, 1, tzinfo=UTC), datetime(2026, 3, 29, 1, 30, tzinfo=timezone(timedelta(hours=-5))),
              datetime(1000, 1, 1, 0, 30, tzinfo=timezone(timedelta(hours=1)))]  # converts to year 999
    for _ in range(20000):
        v = datetime(rnd.randint(1, 9999), rnd.randint(1, 12), rnd.randint(1, 28), rnd.randint(0, 23),
                     rnd.randint(0, 59), rnd.randint(0, 59), rnd.choice((0, 0, rnd.randint(0, 999999))))
        values.append(v.replace(tzinfo=timezone(timedelta(minutes=rnd.randint(-900, 900)))) if rnd.random() < 0.3
                      and v.year > 1 and v.year < 9999 else v)

    class Sub(datetime):
        pass

    values.append(Sub(2026, 11, 25, 1, 2, 3, 40))
    for v in values:
        assert times.iso(v) == reference(v), v


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
