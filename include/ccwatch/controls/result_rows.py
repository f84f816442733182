"""Write a date's ``control_results`` rows from the statuses ``controls.gx_validate`` derived.

The change controls' rows are written set-based: the statuses go to DuckDB as one categorical
frame and one INSERT ... SELECT per control computes the detail line in SQL (each control's
``detail_sql``, ``controls.sqltext``); the few rows SQL cannot reproduce exactly (text that is not
printable ASCII, an unknown scope) get the control's Python detail function, the reference, and
every run checks up to 25 rows per control and status of the SQL text against that function (a
difference is an ``EvaluationError``).  The repository controls (one row per repository) use the
Python functions directly.  The caller (``controls.evaluate``) holds the transaction.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

import duckdb
import numpy as np
import pandas as pd

from ccwatch.controls.base import Control
from ccwatch.controls.catalogue import STATUSES
from ccwatch.controls.families import CONTROLS
from ccwatch.controls.gx_validate import TABLES, UNKNOWN_SCOPE, EvaluationError, Statuses
from ccwatch.controls.sqltext import NORMALIZED
from ccwatch.controls.text import sql_str
from ccwatch.settings import Settings

_CHUNK = 20_000  # changes per detail / insert chunk (bounded memory)
# the columns evaluation writes, named: the others (``exception``, migration 9) keep their NULL
# until controls/exceptions.py applies the register in the same transaction
_COLUMNS = "as_of, change_id, repo, control_id, status, detail"


def _row_chunks(con: duckdb.DuckDBPyConnection, table: str) -> Iterator[list[dict]]:
    """The facts rows as native Python dicts (None for NULL), change_id order, in chunks."""
    cur = con.cursor()
    try:
        cur.execute(f"SELECT * FROM {table} ORDER BY change_id")
        cols = [d[0] for d in cur.description]
        while True:
            batch = cur.fetchmany(_CHUNK)
            if not batch:
                return
            yield [dict(zip(cols, row, strict=True)) for row in batch]
    finally:
        cur.close()


def detail_line(control: Control, row: dict, status: str, settings: Settings) -> tuple[str, str]:
    """(status, one-line detail) of a row whose status was derived (``UNKNOWN_SCOPE`` = unknown scope)."""
    if status == UNKNOWN_SCOPE:  # a scope we do not know is a bug in the fact SQL: fail closed, say so
        return "fail", f"internal: unknown scope {row.get(control.scope_column)!r} for {control.id}"
    return status, " ".join(control.detail(row, status, settings).split())


def result_chunks(con: duckdb.DuckDBPyConnection, statuses: Statuses,
                  settings: Settings, scopes: tuple[str, ...] = ("change", "repo"),
                  controls: list[Control] | None = None) -> Iterator[pd.DataFrame]:
    """control_results rows (change_id, repo, control_id, status, detail) as DataFrames, computed
    row by row by the controls' Python functions (the reference; the repository controls)."""
    for scope in scopes:
        chosen = [c for c in (controls or CONTROLS) if c.scope == scope]
        if not chosen:
            continue
        start = 0
        for rows in _row_chunks(con, TABLES[scope]):
            cols: dict[str, list] = {k: [] for k in ("change_id", "repo", "control_id", "status", "detail")}
            for i, row in enumerate(rows, start):
                cid, repo = row["change_id"], row["repo"]
                for c in chosen:
                    status, detail = detail_line(c, row, statuses[c.id][i], settings)
                    cols["change_id"].append(cid)
                    cols["repo"].append(repo)
                    cols["control_id"].append(c.id)
                    cols["status"].append(status)
                    cols["detail"].append(detail)
            start += len(rows)
            yield pd.DataFrame(cols, dtype=object)


_PY = "\x01ccwatch: python detail"  # placeholder detail of a row the SQL cannot reproduce exactly
_LITERAL_IDS = 2000  # up to this many changes are looked up by constant ids (zone maps)
_SAMPLE = 25  # rows per control and status whose SQL detail is checked against Python each run


def _status_frame(con: duckdb.DuckDBPyConnection, statuses: Statuses,
                  controls: list[Control]) -> pd.DataFrame:
    ids = con.execute("SELECT change_id FROM change_facts ORDER BY change_id").df()["change_id"]
    df = pd.DataFrame({"change_id": ids})
    for c in controls:
        if len(statuses[c.id]) != len(df):
            raise EvaluationError(f"{c.id}: {len(statuses[c.id])} statuses for {len(df)} changes")
        df[c.id] = pd.Categorical(statuses[c.id])
    return df


def _insert_sql(control: Control, settings: Settings) -> str:
    raw = control.detail_sql(settings)
    return (f"INSERT INTO control_results ({_COLUMNS}) SELECT $t::TIMESTAMP, change_id, repo, '{control.id}', "
            f"CASE WHEN _st = '{UNKNOWN_SCOPE}' THEN 'fail' ELSE _st END, "
            f"CASE WHEN _st = '{UNKNOWN_SCOPE}' THEN $py ELSE coalesce({NORMALIZED}, $py) END "
            f"FROM (SELECT change_id, repo, _st, {raw} AS _raw FROM (SELECT f.*, s.\"{control.id}\" AS _st "
            "FROM change_facts f JOIN _ccwatch_status s USING (change_id)))")


def _python_rows(con: duckdb.DuckDBPyConnection, control: Control, ids: list[str]) -> list[tuple[dict, str]]:
    """(facts row, derived status) of these changes, for the Python detail functions."""
    if not ids:
        return []
    select = f"SELECT f.*, s.\"{control.id}\" AS _ccwatch_st FROM change_facts f JOIN _ccwatch_status s USING (change_id) "
    if len(ids) <= _LITERAL_IDS and not any("\x00" in i for i in ids):
        # the ids as constants: DuckDB then skips the row groups of change_facts (stored nearly in
        # change_id order, controls.facts) that cannot hold them, instead of joining all 1M rows to a list
        wanted = ", ".join(sql_str(i) for i in ids)
        cur = con.execute(f"{select} WHERE f.change_id IN ({wanted}) AND s.change_id IN ({wanted}) ORDER BY change_id")
    else:
        cur = con.execute(f"{select} WHERE change_id IN (SELECT unnest(?::VARCHAR[])) ORDER BY change_id", [ids])
    cols = [d[0] for d in cur.description]
    out = []
    for r in cur.fetchall():
        row = dict(zip(cols, r, strict=True))
        out.append((row, str(row.pop("_ccwatch_st"))))
    return out


def write_change_results(con: duckdb.DuckDBPyConnection, statuses: Statuses,
                          settings: Settings, t: datetime) -> int:
    """Write the change controls' rows set-based: the detail text is a SQL expression per control
    (each control's ``detail_sql``, ``controls.sqltext``); rows it cannot reproduce exactly (non printable-ASCII text, an
    unknown scope) are computed by the Python function, and a sample of every control and status
    is checked against the Python function (a difference is an ``EvaluationError``)."""
    controls = [c for c in CONTROLS if c.scope == "change"]
    sql_controls = [c for c in controls if c.detail_sql is not None]
    frame = _status_frame(con, statuses, sql_controls)
    # one copy into DuckDB (categoricals become ENUMs): every INSERT and sample check below joins
    # it, and a registered pandas frame would convert its 1M Python strings on every scan
    con.register("_ccwatch_status_df", frame)
    try:
        con.execute("CREATE OR REPLACE TEMP TABLE _ccwatch_status AS SELECT * FROM _ccwatch_status_df")
    finally:
        con.unregister("_ccwatch_status_df")
    try:
        for c in sql_controls:
            con.execute(_insert_sql(c, settings), {"t": t, "py": _PY})
        by_id = {c.id: c for c in sql_controls}
        fixes = {}
        for cid, ids in con.execute("SELECT control_id, list(change_id) FROM control_results WHERE as_of = ? "
                                    "AND detail = ? GROUP BY control_id", [t, _PY]).fetchall():
            for row, st in _python_rows(con, by_id[cid], ids):
                fixes[(row["change_id"], cid)] = detail_line(by_id[cid], row, st, settings)
        if fixes:
            fix = pd.DataFrame([(k[0], k[1], v[0], v[1]) for k, v in fixes.items()],
                               columns=["change_id", "control_id", "status", "detail"], dtype=object)
            con.register("_ccwatch_fix", fix)
            try:
                con.execute("UPDATE control_results SET status = x.status, detail = x.detail FROM _ccwatch_fix x "
                            "WHERE control_results.as_of = ? AND control_results.change_id = x.change_id "
                            "AND control_results.control_id = x.control_id", [t])
            finally:
                con.unregister("_ccwatch_fix")
        _check_sample(con, statuses, frame, sql_controls, settings, t)
    finally:
        con.execute("DROP TABLE IF EXISTS _ccwatch_status")
    rest = [c for c in controls if c not in sql_controls]
    rows = con.execute("SELECT count(*) FROM control_results WHERE as_of = ?", [t]).fetchall()[0][0]
    if rest:
        rows += insert_frames(con, list(result_chunks(con, statuses, settings, ("change",), rest)), t)
    return rows


def _check_sample(con, statuses, frame, controls, settings, t) -> None:
    ids = frame["change_id"].to_numpy()
    for c in controls:
        st = statuses[c.id]
        pick = sorted({i for v in (*STATUSES, UNKNOWN_SCOPE) for i in np.flatnonzero(st == v)[:_SAMPLE].tolist()})
        if not pick:
            continue
        wanted = ids[pick].tolist()
        if len(wanted) <= _LITERAL_IDS and not any("\x00" in i for i in wanted):  # constants: zone maps
            stored = dict(con.execute("SELECT change_id, detail FROM control_results WHERE as_of = ? AND control_id = ? "
                                      f"AND change_id IN ({', '.join(sql_str(i) for i in wanted)})", [t, c.id]).fetchall())
        else:
            stored = dict(con.execute("SELECT change_id, detail FROM control_results WHERE as_of = ? AND control_id = ? "
                                      "AND change_id IN (SELECT unnest(?::VARCHAR[]))", [t, c.id, wanted]).fetchall())
        for row, s in _python_rows(con, c, ids[pick].tolist()):
            want = detail_line(c, row, s, settings)[1]
            if stored.get(row["change_id"]) != want:
                raise EvaluationError(f"{c.id}: the SQL detail of {row['change_id']} ({s}) is "
                                      f"{stored.get(row['change_id'])!r}, the control's function says {want!r}")


def insert_frames(con: duckdb.DuckDBPyConnection, frames: Iterator[pd.DataFrame], t: datetime) -> int:
    rows = 0
    for df in frames:
        con.register("_ccwatch_results", df)
        try:
            con.execute(f"INSERT INTO control_results ({_COLUMNS}) SELECT ?::TIMESTAMP, change_id, repo, control_id, "
                        "status, detail FROM _ccwatch_results", [t])
        finally:
            con.unregister("_ccwatch_results")
        rows += len(df)
    return rows

