"""The Compliance page's data: one evidence date of the warehouse, read read-only."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

import duckdb

from ccwatch.common.paths import warehouse_path
from ccwatch.controls.catalogue import CONTROL_IDS, REPO_CONTROLS, STATUSES, control_sort_key
from ccwatch.publish import results
from ccwatch.warehouse import connection, runs

#: at most this many failing (and pending) rows per control are listed; the counts are always complete
TOP_N = 100
#: seconds a client should wait before asking again while the nightly run holds the warehouse
RETRY_AFTER = 30
_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


class WarehouseUnavailable(Exception):
    """The warehouse cannot be read now: ``retry_after`` seconds when it is busy (the nightly run
    holds DuckDB's write lock), None when it does not exist yet."""

    def __init__(self, message: str, retry_after: int | None = None):
        super().__init__(message)
        self.retry_after = retry_after


@contextmanager
def open_warehouse(home: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    """A read-only connection to ``<home>/warehouse.duckdb``, closed on exit; never creates the file."""
    path = warehouse_path(home)
    if not path.is_file():
        raise WarehouseUnavailable(f"no warehouse yet at {path}: ccwatch_nightly has not run")
    try:
        con = connection.connect(path, read_only=True)
    except duckdb.IOException as exc:
        if "lock" not in str(exc).lower():
            raise
        raise WarehouseUnavailable("the warehouse is being written by a ccwatch run; try again shortly",
                                   RETRY_AFTER) from None
    try:
        yield con
    finally:
        con.close()




class UnknownDate(LookupError):
    """The requested evidence date has no control_results."""


def parse_day(text: str) -> date:
    """``YYYY-MM-DD`` -> date; ValueError naming the text otherwise."""
    if not isinstance(text, str) or not _DAY.fullmatch(text):
        raise ValueError(f"{text!r} is not an evidence date (YYYY-MM-DD)")
    return date.fromisoformat(text)


@dataclass(frozen=True)
class DashboardData:
    """What the page shows for one evidence date (``day`` None: the warehouse has no results yet)."""

    day: date | None
    dates: tuple[date, ...]
    as_of: datetime | None
    counts: dict[str, dict[str, int]]  # every catalogue control (and any other id found), in control order
    failing: list[dict]  # change-control rows (RESULT_COLUMNS + "change"), at most top_n per control
    pending: list[dict]
    repo_rows: list[dict]  # CC8.1-11 / CC8.1-12 rows, every status, + "html_url"
    run_stage: str | None
    run_detail: str | None
    latest_run: dict | None
    top_n: int = TOP_N
    commit_links: dict = field(default_factory=dict)

    @property
    def totals(self) -> dict[str, int]:
        out = dict.fromkeys(STATUSES, 0)
        for per in self.counts.values():
            for status, n in per.items():
                out[status] = out.get(status, 0) + n
        return out

    def count(self, status: str, controls=None) -> int:
        return sum(self.counts[c].get(status, 0) for c in self.counts if controls is None or c in controls)


def read_dashboard(con: duckdb.DuckDBPyConnection, day: date | None = None, *, top_n: int = TOP_N) -> DashboardData:
    """The page's data for ``day`` (None: the newest evidence date) from a read-only connection.
    Raises :class:`UnknownDate` for a date without control_results."""
    dates = tuple(results.evidence_dates(con))
    newest = results.latest_run(con)
    if day is None and dates:
        day = dates[0]
    if day is None:
        return DashboardData(None, (), None, {c: {} for c in CONTROL_IDS}, [], [], [], None, None, newest, top_n)
    if day not in dates:
        raise UnknownDate(f"no control_results for {day.isoformat()}")
    as_of = results.date_as_of(con, day)
    as_of_utc = as_of.replace(tzinfo=UTC)
    counts: dict[str, dict[str, int]] = {c: {} for c in CONTROL_IDS}
    counts.update(results.status_counts(con, as_of_utc))
    counts = {c: counts[c] for c in sorted(counts, key=control_sort_key)}
    change_controls = tuple(c for c in counts if c not in REPO_CONTROLS)
    failing = results.top_results(con, as_of_utc, "fail", top_n, change_controls)
    pending = results.top_results(con, as_of_utc, "pending", top_n, change_controls)
    repo_rows = [r for status in STATUSES
                 for r in results.top_results(con, as_of_utc, status, 1 << 40, tuple(REPO_CONTROLS))]
    repo_rows.sort(key=lambda r: (r["change_id"], control_sort_key(r["control_id"])))
    repo_urls = {r["change_id"]: r.get("html_url") for r in results.repos(con)}
    for r in repo_rows:
        r["html_url"] = repo_urls.get(r["change_id"])
    changes = results.run_changes_by_id(con, as_of_utc, [r["change_id"] for r in failing + pending])
    for r in failing + pending:
        r["change"] = changes.get(r["change_id"])
    commit_links = results.commit_urls(con, [(c.get("repo"), c.get("sha")) for c in changes.values()])
    stage, detail = runs.run_stage(con, as_of)
    return DashboardData(day, dates, as_of, counts, failing, pending, repo_rows, stage, detail, newest, top_n,
                         commit_links)
