"""Every time conversion ccwatch makes, in one place.

The warehouse stores naive UTC ``TIMESTAMP`` values; runs carry an aware UTC as-of time; files
and payloads carry ISO-8601 text (GitHub ``...Z``, Jira ``...+0000``).  Evaluation never reads
the wall clock: :func:`utc_now_iso` is bookkeeping only (fetch and failure times).
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any


def parse_ts(value: Any) -> datetime | None:
    """ISO-8601 text (GitHub ``...Z``, Jira ``...+0000``) -> naive UTC datetime; blank -> None.
    Raises ValueError on text that is not a time."""
    if value in (None, ""):
        return None
    dt = datetime.fromisoformat(str(value))
    return dt.astimezone(UTC).replace(tzinfo=None) if dt.tzinfo else dt


def parse_ts_or_none(value: Any) -> datetime | None:
    """:func:`parse_ts`, with None for text that is not a time (evidence files read leniently)."""
    if not isinstance(value, str):
        return None
    try:
        return parse_ts(value)
    except ValueError:
        return None


def parse_utc(text: str) -> datetime:
    """ISO-8601 text -> aware UTC datetime (state and plan files)."""
    return datetime.fromisoformat(str(text).replace("Z", "+00:00")).astimezone(UTC)


def naive_utc(value: datetime) -> datetime:
    """A time as the warehouse stores it: naive UTC (an aware time is converted, a naive one kept)."""
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value


def parse_as_of(value: str | datetime) -> datetime:
    """The run's as-of time as an aware UTC datetime (a date alone means 00:00 UTC)."""
    if isinstance(value, datetime):
        dt = value
    else:
        dt = datetime.fromisoformat(str(value).strip().replace("Z", "+00:00"))
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    dt = dt.astimezone(UTC)
    # A plain datetime, never Airflow's pendulum DateTime: pendulum drops the tzinfo of
    # a std-library timezone on arithmetic (as_of - timedelta became naive).
    return datetime(dt.year, dt.month, dt.day, dt.hour, dt.minute, dt.second, dt.microsecond, tzinfo=UTC)


def evidence_date(as_of: datetime) -> date:
    """The evidence date of a run: the UTC date of its as-of time."""
    return naive_utc(as_of).date()


def iso_z(dt: datetime) -> str:
    """An aware datetime as ``YYYY-MM-DDTHH:MM:SSZ`` (UTC); a naive one is refused."""
    if dt.tzinfo is None:
        raise ValueError("a timezone-aware (UTC) time is required")
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def epoch_z(epoch: float) -> str:
    """Unix seconds as ``YYYY-MM-DDTHH:MM:SSZ``."""
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def iso(value: Any) -> str:
    """Warehouse values for people and files: a datetime (naive = UTC) as ISO-8601 with a Z
    (microseconds only when present), a date as YYYY-MM-DD, None as '', anything else as str."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        v = naive_utc(value)
        # isoformat is ~2.5x cheaper than strftime and the same text for 4-digit years (the evidence
        # step renders ~155k times a night); strftime's %Y of years < 1000 is platform-defined: kept
        # (plain datetimes only: a subclass, e.g. pandas' Timestamp, keeps strftime)
        text = (v.isoformat(timespec="seconds") if type(v) is datetime and v.year >= 1000
                else v.strftime("%Y-%m-%dT%H:%M:%S"))
        if v.microsecond:
            text += f".{v.microsecond:06d}"
        return text + "Z"
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def minute_z(value: Any) -> str:
    """A time as it reads in a detail line, ``2026-11-20T10:02Z`` (text passes through)."""
    if isinstance(value, str):
        return value
    if hasattr(value, "to_pydatetime"):
        value = value.to_pydatetime()
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%dT%H:%MZ")
    return str(value)


def utc_now_iso() -> str:
    """The wall clock, for bookkeeping only (fetch times, failure markers): never evaluated."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
