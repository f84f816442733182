"""Readers of control_results across run dates, for the daily report and the Compliance page:
the previous run date, open failures with the start of their failing streak, day-over-day
changes, counts by repository and author, excepted failures, and the evidence folders the report
links to.  Like ``results`` (one run's readers), everything here reads the warehouse and returns
plain Python values; it never writes and never looks at the wall clock.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

import duckdb

from ccwatch.common.times import evidence_date
from ccwatch.controls.catalogue import control_sort_key
from ccwatch.publish.results import table_columns

# A "run date" is an evidence date that has control_results.  Dates without a run are gaps: they
# are skipped, never read as pass or fail.  The previous date of D is the newest run date before D.
# The queries below select a date as a range of as_of (``as_of >= D AND as_of < D + 1``), which
# DuckDB answers from its min/max indexes instead of casting every row.

#: the nullable control_results column that carries the id of the exception that covers a failure
#: (CONTROLS.md "Exceptions (r2)"); readers check it exists (``exceptions_recorded``) before using it
EXCEPTION_COLUMN = "exception"
_ON_DAY = "as_of >= ? AND as_of < ?"


def _day(day: date) -> list:
    """The parameters of ``_ON_DAY`` for an evidence date."""
    return [day, day + timedelta(days=1)]


def exceptions_recorded(con: duckdb.DuckDBPyConnection) -> bool:
    """Whether control_results has the ``exception`` column (the exceptions register, r2)."""
    return EXCEPTION_COLUMN in table_columns(con, "control_results")


def previous_date(con: duckdb.DuckDBPyConnection, as_of: datetime) -> date | None:
    """The newest run date before this evidence date (gaps skipped); None for the first run."""
    return con.execute("SELECT CAST(max(as_of) AS DATE) FROM control_results WHERE as_of < ?",
                       [evidence_date(as_of)]).fetchone()[0]


def _in(column: str, values) -> tuple[str, list]:
    """`` AND column IN (?, ...)`` and its parameters; nothing for None."""
    if values is None:
        return "", []
    values = list(values)
    return f" AND {column} IN ({', '.join('?' for _ in values) or 'NULL'})", values


def _rows(cur) -> list[dict]:
    cols = [c[0] for c in cur.description]
    return [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]


def open_failures(con: duckdb.DuckDBPyConnection, as_of: datetime, limit: int,
                  control_ids: tuple[str, ...] | None = None, *, excepted: bool | None = False) -> list[dict]:
    """This date's failing rows with the start of their current failing streak: ``first_failed``
    (the earliest run date of the uninterrupted run of ``fail`` rows of that change and control
    that ends on this date: a run date where the pair is not ``fail``, or has no row, ends it;
    dates without a run do not) and ``runs`` (how many run dates the streak spans).

    At most ``limit`` rows per control, longest open first (then by change id); ``excepted``:
    False the rows no exception covers, True only those an exception covers (``exception`` holds
    its id), None every row.  Without the ``exception`` column every row is unexcepted."""
    day = evidence_date(as_of)
    has_exc = exceptions_recorded(con)
    if excepted and not has_exc:
        return []
    exc_col = f", {EXCEPTION_COLUMN}" if has_exc else ", NULL::VARCHAR AS exception"
    exc_where = ""
    if has_exc and excepted is not None:
        exc_where = f" AND {EXCEPTION_COLUMN} IS {'NOT ' if excepted else ''}NULL"
    ctl, ctl_params = _in("control_id", control_ids)
    sql = f"""
        WITH today AS (SELECT as_of, change_id, repo, control_id, status, detail{exc_col} FROM control_results
                       WHERE {_ON_DAY} AND status = 'fail'{ctl}{exc_where}),
        dates AS (SELECT d, row_number() OVER (ORDER BY d) AS k
                  FROM (SELECT DISTINCT CAST(as_of AS DATE) AS d FROM control_results WHERE as_of < ?)),
        fails AS (SELECT r.change_id, r.control_id, dt.d, dt.k FROM control_results r
                  JOIN dates dt ON CAST(r.as_of AS DATE) = dt.d
                  SEMI JOIN today t ON t.change_id = r.change_id AND t.control_id = r.control_id
                  WHERE r.status = 'fail' AND r.as_of < ?),
        islands AS (SELECT change_id, control_id, d,
                           k - row_number() OVER (PARTITION BY change_id, control_id ORDER BY k) AS g FROM fails),
        streaks AS (SELECT change_id, control_id, min(d) AS first_failed, max(d) AS last_failed, count(*) AS runs
                    FROM islands GROUP BY change_id, control_id, g)
        SELECT * EXCLUDE (_n, last_failed) FROM (
            SELECT t.*, s.first_failed, s.last_failed, s.runs, row_number() OVER (
                PARTITION BY t.control_id ORDER BY s.first_failed, t.change_id) AS _n
            FROM today t JOIN streaks s ON s.change_id = t.change_id AND s.control_id = t.control_id
            WHERE s.last_failed = ?) WHERE _n <= ?"""
    end = day + timedelta(days=1)
    out = _rows(con.execute(sql, [*_day(day), *ctl_params, end, end, day, int(limit)]))
    out.sort(key=lambda r: (control_sort_key(r["control_id"]), r["first_failed"], r["change_id"]))
    return out


def excepted_counts(con: duckdb.DuckDBPyConnection, as_of: datetime) -> dict[str, int]:
    """{control_id: failing rows an exception covers} of this date; {} without the column."""
    if not exceptions_recorded(con):
        return {}
    return dict(con.execute(
        f"SELECT control_id, count(*) FROM control_results WHERE {_ON_DAY} AND status = 'fail' "
        f"AND {EXCEPTION_COLUMN} IS NOT NULL GROUP BY ALL", _day(evidence_date(as_of))).fetchall())


#: the kinds of day-over-day change of a (change, control) pair, in the order the report lists them
CHANGE_KINDS = ("newly_failing", "resolved", "left")


def day_over_day(con: duckdb.DuckDBPyConnection, as_of: datetime, limit: int,
                 control_ids: tuple[str, ...] | None = None) -> dict:
    """What changed since the previous run date, per (change, control): ``newly_failing`` (fail
    now, not fail or no row then), ``resolved`` (fail then, another status now: ``status``) and
    ``left`` (fail then, no row now: the change left the population, e.g. the lookback window;
    not a resolution).  Returns {"previous": date | None, "counts": {control: {kind: n}},
    "rows": {kind: [rows, at most ``limit`` per control, by change id]}}; empty without a
    previous run date."""
    prev = previous_date(con, as_of)
    out: dict[str, Any] = {"previous": prev, "counts": {}, "rows": {k: [] for k in CHANGE_KINDS}}
    if prev is None:
        return out
    ctl, ctl_params = _in("control_id", control_ids)
    exc = EXCEPTION_COLUMN if exceptions_recorded(con) else "NULL::VARCHAR"
    # prev is the newest run date before this one, so [prev, this date + 1) holds exactly the two dates
    sql = f"""
        WITH r AS (SELECT change_id, repo, control_id, status, detail, {exc} AS exception, as_of >= ? AS now
                   FROM control_results WHERE as_of >= ? AND as_of < ?{ctl}),
        pairs AS (SELECT change_id, control_id, any_value(repo) AS repo,
                         any_value(status) FILTER (WHERE now) AS status,
                         any_value(status) FILTER (WHERE NOT now) AS previous_status,
                         any_value(detail) FILTER (WHERE now) AS current_detail,
                         any_value(detail) FILTER (WHERE NOT now) AS previous_detail,
                         any_value(exception) FILTER (WHERE now) AS exception
                  FROM r SEMI JOIN (SELECT change_id, control_id FROM r WHERE status = 'fail') f
                      USING (change_id, control_id)
                  GROUP BY change_id, control_id),
        changed AS (SELECT CASE WHEN status = 'fail' THEN 'newly_failing' WHEN status IS NULL THEN 'left'
                                ELSE 'resolved' END AS kind, change_id, repo, control_id, status, previous_status,
                           coalesce(current_detail, previous_detail) AS detail, previous_detail, exception
                    FROM pairs WHERE (status = 'fail') IS DISTINCT FROM (previous_status = 'fail'))
        SELECT * EXCLUDE (_n) FROM (SELECT *, count(*) OVER (PARTITION BY kind, control_id) AS _total,
            row_number() OVER (PARTITION BY kind, control_id ORDER BY change_id) AS _n FROM changed) WHERE _n <= ?"""
    day = evidence_date(as_of)
    for r in _rows(con.execute(sql, [day, prev, day + timedelta(days=1), *ctl_params, int(limit)])):
        out["counts"].setdefault(r["control_id"], {})[r["kind"]] = r.pop("_total")
        out["rows"][r["kind"]].append(r)
    for rows in out["rows"].values():
        rows.sort(key=lambda r: (control_sort_key(r["control_id"]), r["change_id"]))
    return out


def _population_relation(con: duckdb.DuckDBPyConnection, day: date) -> tuple[str, list]:
    """The changes as the run of ``day`` evaluated them: its stored population, else change_facts."""
    if table_columns(con, "population") and con.execute(
            f"SELECT count(*) > 0 FROM population WHERE {_ON_DAY}", _day(day)).fetchone()[0]:
        return f"(SELECT change_id, author FROM population WHERE {_ON_DAY})", _day(day)
    if {"change_id", "author"} <= table_columns(con, "change_facts"):
        return "(SELECT change_id, author FROM change_facts)", []
    return "(SELECT NULL::VARCHAR AS change_id, NULL::VARCHAR AS author WHERE false)", []


#: what a view groups by: the result's repository, or the change's author (GitHub login)
VIEW_KEYS = ("repo", "author")


def counts_by(con: duckdb.DuckDBPyConnection, as_of: datetime, key: str,
              control_ids: tuple[str, ...] | None = None) -> dict[str, dict]:
    """{repo or author: {"changes": distinct changes (repository rows, whose change_id is the
    repository, not counted), "counts": {control_id: {status: n}}}} of this date's control_results
    (aggregated in SQL; two plain GROUP BYs are several times faster than one GROUPING SETS).  An author of the run's population (else of change_facts); a
    row whose change has no author is grouped under None."""
    if key not in VIEW_KEYS:
        raise ValueError(f"unknown view key {key!r} (one of {', '.join(VIEW_KEYS)})")
    day = evidence_date(as_of)
    ctl, ctl_params = _in("r.control_id", control_ids)
    if key == "repo":
        source, params, expr = "control_results r", [], "r.repo"
    else:
        rel, params = _population_relation(con, day)
        source, expr = f"control_results r LEFT JOIN {rel} p ON p.change_id = r.change_id", "p.author"
    where = f"WHERE r.as_of >= ? AND r.as_of < ?{ctl}"
    params = [*params, *_day(day), *ctl_params]
    out: dict[str, dict] = {}
    for k, control_id, status, n in con.execute(
            f"SELECT {expr}, r.control_id, r.status, count(*) FROM {source} {where} GROUP BY ALL", params).fetchall():
        out.setdefault(k, {"changes": 0, "counts": {}})["counts"].setdefault(control_id, {})[status] = n
    for k, n in con.execute(f"SELECT {expr}, count(DISTINCT r.change_id) FILTER (WHERE r.change_id <> r.repo) "
                            f"FROM {source} {where} GROUP BY ALL", params).fetchall():
        out[k]["changes"] = n
    return out


def _units(con: duckdb.DuckDBPyConnection) -> str | None:
    parts = [f"SELECT change_id FROM {t}" for t in ("change_facts", "repo_facts") if "change_id" in table_columns(con, t)]
    return f"(SELECT DISTINCT change_id FROM ({' UNION ALL '.join(parts)}) WHERE change_id IS NOT NULL)" if parts else None


def evidence_unit_ids(con: duckdb.DuckDBPyConnection, only=None) -> list[str]:
    """The ids that get a folder under ``changes/`` in the evidence folder, as the writer
    (``publish/evidence/folder.write_tree``) makes them: every change of change_facts and every
    repository of repo_facts (a repository id equal to a change id shares its folder); ``only``:
    just those of these ids."""
    units = _units(con)
    if units is None:
        return []
    if only is None:
        return [r[0] for r in con.execute(f"SELECT change_id FROM {units} ORDER BY 1").fetchall()]
    return [r[0] for r in con.execute(f"SELECT change_id FROM {units} WHERE change_id IN "
                                      "(SELECT unnest(?::VARCHAR[])) ORDER BY 1", [sorted(set(only))]).fetchall()]


#: a key that two ids share whenever their change folders (common.changes.change_folder) are equal
#: but for case: the ASCII letters and digits of the id, '#' and '@' read as the 'pr' and 'push' the
#: folder name puts there, lower-cased (every other character is dropped, and the folder name keeps
#: exactly these letters and digits, in order).  Equal folders imply equal keys, so no shared key
#: proves that the writer's ``folder_names`` gives every id its plain ``change_folder``.
FOLDER_KEY_SQL = ("lower(regexp_replace(replace(replace(change_id, '#', 'pr'), '@', 'push'), "
                  "'[^A-Za-z0-9]', '', 'g'))")


def evidence_folders_may_collide(con: duckdb.DuckDBPyConnection) -> bool:
    """Whether two evidence folder ids could get names equal but for case (then the writer adds
    ``-2``, ``-3``...): False proves they cannot (see ``FOLDER_KEY_SQL``)."""
    units = _units(con)
    return units is not None and bool(con.execute(
        f"SELECT count(*) > count(DISTINCT {FOLDER_KEY_SQL}) FROM {units}").fetchone()[0])
