"""Validate the CC8.1 Great Expectations suites over the facts: a status per row and control.

``run_suites(con, settings, as_of_iso)`` validates one GX suite per control (GX 1.x Core,
ephemeral context, pandas datasource, whole-dataframe batch) and returns every control's status
per facts row (change_id order) with GX's cleaned results; ``controls.result_rows`` writes them.

Scale (1M changes): each suite is validated over a narrow frame holding only ``change_id``,
the control's scope column and the columns its expectations name (GX hashes and filters the
whole frame per expectation), in GX's SUMMARY result format; the frames share one categorical
``change_id`` column and GX loads each batch once (its validator over the batch definition).
Which rows are unexpected is derived vectorised from the SAME expectation configurations GX runs
(``ccwatch.controls.gx_mask``) before GX runs, and GX must then agree with every derivation
before the transaction that replaces the date's results begins.  The check against GX: the mask
derived from GX's own results must equal the one derived before (same configurations), per
expectation the derived count must equal GX's ``unexpected_count``, GX's sampled unexpected change
ids must be among the derived ones and GX's success must agree.  Any mismatch, an expectation type
without a derivation, or a GX exception raises ``EvaluationError``: no status is reported for it,
never a pass.  Nothing here reads the wall clock: GX's run ids and times are replaced by the as-of
time so the same data and as-of give byte-identical results.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import duckdb
import numpy as np
import pandas as pd

from ccwatch.controls.base import DUE, NOT_APPLICABLE, PENDING, Control
from ccwatch.controls.catalogue import STATUSES
from ccwatch.controls.families import CONTROLS
from ccwatch.controls.gx_mask import DeriveError, unexpected_mask
from ccwatch.settings import Settings

log = logging.getLogger(__name__)

RESULT_FORMAT = {"result_format": "SUMMARY", "unexpected_index_column_names": ["change_id"]}
TABLES = {"change": "change_facts", "repo": "repo_facts"}
UNKNOWN_SCOPE = "?"  # status marker of a scope the fact SQL should never produce (written as fail)
#: {control_id: each row's status in change_id order} (a categorical: compared as integer codes)
Statuses = dict[str, pd.Categorical]


class EvaluationError(RuntimeError):
    """A GX expectation could not be evaluated (or disagrees with the derivation): no status may be
    reported for it."""


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


def facts_frame(con: duckdb.DuckDBPyConnection, table: str, cols: list[str], ids: pd.Series | None = None) -> pd.DataFrame:
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


#: every status a row can get, sorted: the categories pandas would give an array of them
_STATUS_LABELS = tuple(sorted((*STATUSES, UNKNOWN_SCOPE)))
_CODE = {label: i for i, label in enumerate(_STATUS_LABELS)}
_BY_SCOPE = {NOT_APPLICABLE: _CODE["not_applicable"], PENDING: _CODE["pending"], DUE: -1}  # -1: pass or fail


def _statuses(frame: pd.DataFrame, control: Control, failed: np.ndarray) -> pd.Categorical:
    """Each row's status: not_applicable, pending, or for a due row fail (``failed``) or pass; any
    other scope (NULL, a value the fact SQL should never produce) ``UNKNOWN_SCOPE``.  Decided once
    per distinct scope value, not per row; a categorical of the present statuses (sorted, as
    pandas makes one), so the summary and the writers compare integer codes."""
    scope = pd.Categorical(frame[control.scope_column])  # the frame's own categorical: no copy
    per_category = np.array([_BY_SCOPE.get(v, _CODE[UNKNOWN_SCOPE]) if isinstance(v, str) else _CODE[UNKNOWN_SCOPE]
                             for v in scope.categories] + [_CODE[UNKNOWN_SCOPE]], dtype=np.int8)  # last: NULL
    codes = per_category[scope.codes]  # code -1 (NULL) takes the last entry
    codes = np.where(codes == -1, np.where(failed, _CODE["fail"], _CODE["pass"]), codes).astype(np.int8)
    return pd.Categorical.from_codes(codes, categories=list(_STATUS_LABELS)).remove_unused_categories()


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
    """Every control's suite, its narrow frame and the derived unexpected rows, in catalogue order.
    Each table's columns are fetched (and its text columns made categorical) once for all of its
    suites, in one query; each suite's frame holds its own columns of that shared frame."""
    plans = [(c, c.expectations(settings)) for c in CONTROLS]
    shared = {}
    for table in dict.fromkeys(TABLES[c.scope] for c, _ in plans):
        cols = list(dict.fromkeys(col for c, exps in plans if TABLES[c.scope] == table
                                  for col in suite_columns(c, exps)))
        shared[table] = facts_frame(con, table, cols, _ids(con, table))
    for control, expectations in plans:
        frame = shared[TABLES[control.scope]][suite_columns(control, expectations)]
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


def run_suites(con: duckdb.DuckDBPyConnection, settings: Settings, as_of_iso: str) -> tuple[Statuses, list[dict]]:
    """Validate every control's suite; returns ({control_id: status per row in change_id order, a
    categorical}, [clean GX results])."""
    suites = list(_prepare(con, settings))
    results = _validate(suites, as_of_iso)
    return {s.control.id: _statuses(s.frame, s.control, s.failed) for s in suites}, results
