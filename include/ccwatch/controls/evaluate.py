"""Run the CC8.1 Great Expectations suites over the facts and write ``control_results``.

``evaluate(con, settings, as_of)`` validates one GX suite per control (GX 1.x Core, ephemeral
context, pandas datasource, whole-dataframe batch) and replaces the as-of date's rows of
``control_results`` with exactly one row per change (or repository) and control.

Scale (1M changes): each suite is validated over a narrow frame holding only ``change_id``,
the control's scope column and the columns its expectations name (GX hashes and filters the
whole frame per expectation), in GX's SUMMARY result format; the frames share one categorical
``change_id`` column and GX loads each batch once (its validator over the batch definition).
Which rows are unexpected is derived vectorised from the SAME expectation configurations GX runs
(``ccwatch.controls.gx_mask``) before GX runs, and GX must then agree with every derivation
before the transaction that replaces the date's results begins.  The check against GX: the mask derived from GX's own results must equal the one derived before (same
configurations), per expectation the derived count must equal GX's ``unexpected_count``,
GX's sampled unexpected change ids must be among the derived ones and GX's success must agree.
Any mismatch, an expectation type without a derivation, or a GX exception raises
``EvaluationError``: no status is reported for it, never a pass.  The change controls' rows are
written set-based: the statuses go to DuckDB as one categorical frame and one INSERT ... SELECT
per control computes the detail line in SQL (each control's ``detail_sql``, ``controls.sqltext``); the few rows SQL cannot
reproduce exactly (text that is not printable ASCII, an unknown scope) get the control's Python
detail function, the reference, and every run checks up to 25 rows per control and status of the
SQL text against that function (a difference is an ``EvaluationError``).  The repository
controls (one row per repository) use the Python functions directly.  Nothing here reads the wall clock:
GX's run ids and times are replaced by the as-of time so the same data and as-of give
byte-identical results.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import duckdb
import numpy as np
import pandas as pd

from ccwatch.common.times import iso, naive_utc
from ccwatch.controls.base import DUE, NOT_APPLICABLE, PENDING, Control
from ccwatch.controls.catalogue import STATUSES
from ccwatch.controls.families import CONTROLS
from ccwatch.controls.gx_mask import DeriveError, unexpected_mask
from ccwatch.controls.sqltext import NORMALIZED
from ccwatch.controls.text import sql_str
from ccwatch.settings import Settings

log = logging.getLogger(__name__)

RESULT_FORMAT = {"result_format": "SUMMARY", "unexpected_index_column_names": ["change_id"]}
TABLES = {"change": "change_facts", "repo": "repo_facts"}
_CHUNK = 20_000  # changes per detail / insert chunk (bounded memory)
_UNKNOWN = "?"  # status marker of a scope the fact SQL should never produce
# the columns evaluation writes, named: the others (``exception``, migration 9) keep their NULL
# until controls/exceptions.py applies the register in the same transaction
_COLUMNS = "as_of, change_id, repo, control_id, status, detail"


class EvaluationError(RuntimeError):
    """A GX expectation could not be evaluated (or disagrees with the derivation): no status may be
    reported for it."""


@dataclass
class EvaluationResult:
    summary: dict[str, dict[str, int]]
    gx_results: list[dict] = field(default_factory=list)
    rows: int = 0


def _context():
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    ctx = gx.get_context(mode="ephemeral")
    try:
        ctx.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
    except Exception:  # pragma: no cover - cosmetic only
        log.debug("could not disable GX progress bars", exc_info=True)
    return ctx


def _json_safe(x: Any) -> Any:
    if isinstance(x, dict):
        return {str(k): _json_safe(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_json_safe(v) for v in x]
    if isinstance(x, float) and (math.isnan(x) or math.isinf(x)):
        return None
    if x is None or isinstance(x, (str, int, float, bool)):
        return x
    if hasattr(x, "isoformat"):
        return x.isoformat()
    if hasattr(x, "item"):  # numpy scalar
        return _json_safe(x.item())
    return str(x)


def _clean(result: dict, control: Control, as_of_iso: str) -> dict:
    """Strip what GX adds per run (ids, wall-clock times) so the JSON is reproducible."""
    meta = result.get("meta") or {}
    meta.pop("validation_id", None)
    meta["run_id"] = {"run_name": f"ccwatch {as_of_iso}", "run_time": as_of_iso}
    meta["validation_time"] = as_of_iso
    markers = meta.get("batch_markers") or {}
    if "ge_load_time" in markers:
        markers["ge_load_time"] = as_of_iso
    result["meta"] = meta
    result.pop("id", None)
    for r in result.get("results", []):
        r.get("expectation_config", {}).pop("id", None)
    result["ccwatch"] = {"control_id": control.id, "name": control.name, "scope": control.scope,
                         "module": control.module, "as_of": as_of_iso}
    return _json_safe(result)


def suite_columns(control: Control, expectations: list) -> list[str]:
    """change_id, the scope column and every column the control's expectations name, in order."""
    cols = ["change_id", control.scope_column]
    for exp in expectations:
        for attr in ("column", "column_A", "column_B"):
            col = getattr(exp, attr, None)
            if isinstance(col, str) and col not in cols:
                cols.append(col)
    return cols


def _unexpected_ids(result: dict, control: Control, frame: pd.DataFrame) -> np.ndarray:
    """The rows of ``frame`` GX found unexpected in any expectation of the suite (boolean mask),
    derived from each expectation's configuration and checked against GX's own counts."""
    failed = np.zeros(len(frame), dtype=bool)
    for r in result.get("results", []):
        cfg = r.get("expectation_config", {})
        what = f"{control.id}: expectation {cfg.get('type')} on {cfg.get('kwargs', {}).get('column')!r}"
        exc = r.get("exception_info") or {}
        if exc.get("raised_exception"):
            raise EvaluationError(f"{what} raised: {exc.get('exception_message')}")
        try:
            mask = unexpected_mask(frame, cfg)
        except DeriveError as e:
            raise EvaluationError(f"{what}: {e}") from e
        res = r.get("result") or {}
        got, derived = res.get("unexpected_count"), int(mask.sum())
        if not isinstance(got, int) or got != derived:
            raise EvaluationError(f"{what}: GX reports {got!r} unexpected rows, ccwatch derived {derived}")
        if bool(r.get("success")) != (derived == 0):
            raise EvaluationError(f"{what}: GX success={r.get('success')!r} but {derived} unexpected rows")
        sample = {i.get("change_id") if isinstance(i, dict) else str(i)
                  for i in res.get("partial_unexpected_index_list") or []}
        if sample - set(frame["change_id"].to_numpy()[mask].tolist()):
            raise EvaluationError(f"{what}: GX's unexpected rows {sorted(sample)[:5]} are not the derived ones")
        failed |= mask
    return failed


def _frame(con: duckdb.DuckDBPyConnection, table: str, cols: list[str], ids: pd.Series | None = None) -> pd.DataFrame:
    """The suite's columns in change_id order.  Text columns other than change_id become pandas
    categoricals (same values and NULLs; GX's row-condition filter and batch hashing are then
    done on integer codes).  ``ids``: the table's change_id column (change_id order) to share
    instead of fetching it again (the suites' frames then hold one copy of the 1M ids, not 15)."""
    fetch = cols if ids is None else cols[1:]
    sel = ", ".join(f'"{c}"' for c in fetch)
    df = con.execute(f"SELECT {sel} FROM {table} ORDER BY change_id").df().reset_index(drop=True)
    if ids is not None:
        if len(ids) != len(df):
            raise EvaluationError(f"{table}: {len(df)} rows but {len(ids)} change ids")
        df.insert(0, cols[0], ids, allow_duplicates=False)
    for c in cols[1:]:
        if df[c].dtype == object or pd.api.types.is_string_dtype(df[c].dtype):
            df[c] = df[c].astype("category")
    return df


def _ids(con: duckdb.DuckDBPyConnection, table: str) -> pd.Series:
    """The table's change_id column in change_id order, once for every suite of the table: a
    categorical with one category per row when the ids are unique and non-NULL (they are: the
    facts' key), else as fetched.  Same values to GX and in its results; pandas hashes a
    categorical as its values (GX's batch fingerprint is unchanged, tested), but without
    factorizing the million strings again for each of the two hashes per suite."""
    ids = con.execute(f"SELECT change_id FROM {table} ORDER BY change_id").df()["change_id"]
    if ids.isna().any() or not ids.is_unique:
        return ids
    return pd.Series(pd.Categorical.from_codes(np.arange(len(ids)), categories=pd.Index(ids.to_numpy())),
                     name="change_id")


def _statuses(frame: pd.DataFrame, control: Control, failed: np.ndarray) -> np.ndarray:
    scope = frame[control.scope_column].to_numpy(dtype=object)
    return np.select([scope == NOT_APPLICABLE, scope == PENDING, (scope == DUE) & failed, scope == DUE],
                     ["not_applicable", "pending", "fail", "pass"], default=_UNKNOWN).astype(object)


def _derived_ids(control: Control, expectations: list, frame: pd.DataFrame) -> np.ndarray:
    """The rows of ``frame`` the suite's expectations find unexpected, derived from their own
    configurations before GX runs (``_unexpected_ids`` checks GX against the same derivation)."""
    failed = np.zeros(len(frame), dtype=bool)
    for exp in expectations:
        cfg = exp.configuration.to_json_dict()
        try:
            failed |= unexpected_mask(frame, cfg)
        except DeriveError as e:
            raise EvaluationError(f"{control.id}: expectation {cfg.get('type')} on "
                                  f"{cfg.get('kwargs', {}).get('column')!r}: {e}") from e
    return failed


@dataclass
class _Suite:
    control: Control
    expectations: list
    frame: pd.DataFrame
    failed: np.ndarray  # derived before GX ran; GX must agree


def _prepare(con: duckdb.DuckDBPyConnection, settings: Settings) -> Iterator[_Suite]:
    """Every control's suite, its narrow frame and the derived unexpected rows, in catalogue order."""
    ids = {t: _ids(con, t) for t in set(TABLES.values())}
    for control in CONTROLS:
        expectations = control.expectations(settings)
        table = TABLES[control.scope]
        frame = _frame(con, table, suite_columns(control, expectations), ids[table])
        yield _Suite(control, expectations, frame, _derived_ids(control, expectations, frame))


def _validate(suites: list[_Suite], as_of_iso: str) -> list[dict]:
    """GX's validation of every suite (clean results, catalogue order), each checked against the
    rows derived before it ran: a difference is an ``EvaluationError``."""
    import great_expectations as gx
    from great_expectations.validator.v1_validator import Validator as V1Validator

    ctx = _context()
    ds = ctx.data_sources.add_pandas("ccwatch")
    results: list[dict] = []
    for s in suites:
        table = TABLES[s.control.scope]
        bd = ds.add_dataframe_asset(f"{table} {s.control.id}").add_batch_definition_whole_dataframe(
            f"{table} as of {as_of_iso}")
        suite = gx.ExpectationSuite(name=s.control.id, expectations=s.expectations)
        # GX's own validator over the batch definition, as Batch.validate builds it, without
        # loading (copying and fingerprinting) the batch a first time for a Batch object
        res = V1Validator(batch_definition=bd, batch_parameters={"dataframe": s.frame},
                          result_format=RESULT_FORMAT).validate_expectation_suite(suite).to_json_dict()
        if not np.array_equal(_unexpected_ids(res, s.control, s.frame), s.failed):
            raise EvaluationError(f"{s.control.id}: the unexpected rows derived from GX's results differ from those "
                                  "derived from the suite before validation")
        results.append(_clean(res, s.control, as_of_iso))
    return results


def run_suites(con: duckdb.DuckDBPyConnection, settings: Settings, as_of_iso: str):
    """Validate every control's suite; returns ({control_id: status per row in change_id order},
    [clean GX results])."""
    suites = list(_prepare(con, settings))
    results = _validate(suites, as_of_iso)
    return {s.control.id: _statuses(s.frame, s.control, s.failed) for s in suites}, results


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
    """(status, one-line detail) of a row whose status was derived (``_UNKNOWN`` = unknown scope)."""
    if status == _UNKNOWN:  # a scope we do not know is a bug in the fact SQL: fail closed, say so
        return "fail", f"internal: unknown scope {row.get(control.scope_column)!r} for {control.id}"
    return status, " ".join(control.detail(row, status, settings).split())


def result_chunks(con: duckdb.DuckDBPyConnection, statuses: dict[str, np.ndarray],
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


def _status_frame(con: duckdb.DuckDBPyConnection, statuses: dict[str, np.ndarray],
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
            f"CASE WHEN _st = '{_UNKNOWN}' THEN 'fail' ELSE _st END, "
            f"CASE WHEN _st = '{_UNKNOWN}' THEN $py ELSE coalesce({NORMALIZED}, $py) END "
            f"FROM (SELECT change_id, repo, _st, {raw} AS _raw FROM (SELECT f.*, s.\"{control.id}\" AS _st "
            "FROM change_facts f JOIN _ccwatch_status s USING (change_id)))")


def _python_rows(con: duckdb.DuckDBPyConnection, control: Control, ids: list[str]) -> list[tuple[dict, str]]:
    """(facts row, derived status) of these changes, for the Python detail functions."""
    if not ids:
        return []
    select = f"SELECT f.*, s.\"{control.id}\" AS _ccwatch_st FROM change_facts f JOIN _ccwatch_status s USING (change_id) "
    if len(ids) <= _LITERAL_IDS and not any("\x00" in i for i in ids):
        # the ids as constants: DuckDB then skips the row groups of change_facts (sorted by
        # change_id) that cannot hold them, instead of joining all 1M rows to a list
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


def _write_change_results(con: duckdb.DuckDBPyConnection, statuses: dict[str, np.ndarray],
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
        rows += _insert_frames(con, list(result_chunks(con, statuses, settings, ("change",), rest)), t)
    return rows


def _check_sample(con, statuses, frame, controls, settings, t) -> None:
    ids = frame["change_id"].to_numpy()
    for c in controls:
        st = statuses[c.id]
        pick = sorted({i for v in (*STATUSES, _UNKNOWN) for i in np.flatnonzero(st == v)[:_SAMPLE].tolist()})
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


def _insert_frames(con: duckdb.DuckDBPyConnection, frames: Iterator[pd.DataFrame], t: datetime) -> int:
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


def _summary(statuses: dict[str, np.ndarray]) -> dict[str, dict[str, int]]:
    out = {}
    for c in CONTROLS:
        s = statuses[c.id]
        counts = {k: int((s == k).sum()) for k in STATUSES}
        counts["fail"] += int((s == _UNKNOWN).sum())
        out[c.id] = counts
    return out


def evaluate(con: duckdb.DuckDBPyConnection, settings: Settings, as_of: datetime, *,
             before_commit: Callable[[duckdb.DuckDBPyConnection], object] | None = None) -> EvaluationResult:
    """Validate the facts for ``as_of`` and replace that date's ``control_results``.

    ``before_commit(con)`` runs inside the same transaction, after the results are written
    (the nightly run stores the date's population there: both or neither)."""
    t = naive_utc(as_of)
    as_of_iso = iso(t)
    statuses, gx_results = run_suites(con, settings, as_of_iso)
    summary = _summary(statuses)
    con.execute("BEGIN TRANSACTION")
    try:
        con.execute("DELETE FROM control_results WHERE CAST(as_of AS DATE) = CAST(? AS DATE)", [t])
        rows = _write_change_results(con, statuses, settings, t)
        rows += _insert_frames(con, list(result_chunks(con, statuses, settings, ("repo",))), t)  # one row per repo
        if before_commit is not None:
            before_commit(con)
        con.execute("COMMIT")
    except Exception:
        con.execute("ROLLBACK")
        raise
    return EvaluationResult(summary=summary, gx_results=gx_results, rows=rows)
