"""Run the CC8.1 Great Expectations suites over the facts and write ``control_results``.

``evaluate(con, settings, as_of)`` reads ``change_facts`` and ``repo_facts`` (built by
``ccwatch.warehouse.facts.build_facts``) into pandas DataFrames, validates one GX suite per
control (GX 1.x Core, ephemeral context, pandas datasource, whole-dataframe batch), maps the
unexpected rows (``unexpected_index_column_names=["change_id"]``) back to changes, and
replaces the as-of date's rows of ``control_results`` with exactly one row per change (or
repository) and control.  Nothing here reads the wall clock: GX's run ids and times are
replaced by the as-of time so the same data and as-of give byte-identical results.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import duckdb
import pandas as pd

from ccwatch.controls import STATUSES, Control
from ccwatch.controls.registry import CONTROLS
from ccwatch.settings import Settings
from ccwatch.warehouse.facts import naive_utc

log = logging.getLogger(__name__)

RESULT_FORMAT = {"result_format": "COMPLETE", "unexpected_index_column_names": ["change_id"]}
_CHUNK = 5000


class EvaluationError(RuntimeError):
    """A GX expectation could not be evaluated: no status may be reported for it."""


@dataclass
class EvaluationResult:
    summary: dict[str, dict[str, int]]
    gx_results: list[dict] = field(default_factory=list)
    rows: int = 0


def _frames(con: duckdb.DuckDBPyConnection) -> dict[str, pd.DataFrame]:
    out = {}
    for scope, table in (("change", "change_facts"), ("repo", "repo_facts")):
        df = con.execute(f"SELECT * FROM {table} ORDER BY change_id").df()
        out[scope] = df.reset_index(drop=True)
    return out


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


def _unexpected_ids(result: dict, control: Control) -> set[str]:
    failed: set[str] = set()
    for r in result.get("results", []):
        exc = r.get("exception_info") or {}
        if exc.get("raised_exception"):
            cfg = r.get("expectation_config", {})
            raise EvaluationError(f"{control.id}: expectation {cfg.get('type')} on "
                                  f"{cfg.get('kwargs', {}).get('column')!r} raised: {exc.get('exception_message')}")
        for item in (r.get("result") or {}).get("unexpected_index_list") or []:
            failed.add(item["change_id"] if isinstance(item, dict) else str(item))
    return failed


def run_suites(frames: dict[str, pd.DataFrame], settings: Settings, as_of_iso: str):
    """Validate every control's suite; returns ({control_id: failed change_ids}, [clean GX results])."""
    import great_expectations as gx

    ctx = _context()
    ds = ctx.data_sources.add_pandas("ccwatch")
    batches = {}
    for scope, table in (("change", "change_facts"), ("repo", "repo_facts")):
        bd = ds.add_dataframe_asset(table).add_batch_definition_whole_dataframe(f"{table} as of {as_of_iso}")
        batches[scope] = bd.get_batch(batch_parameters={"dataframe": frames[scope]})
    failed: dict[str, set[str]] = {}
    results: list[dict] = []
    for control in CONTROLS:
        suite = gx.ExpectationSuite(name=control.id, expectations=control.expectations(settings))
        res = batches[control.scope].validate(suite, result_format=RESULT_FORMAT).to_json_dict()
        failed[control.id] = _unexpected_ids(res, control)
        results.append(_clean(res, control, as_of_iso))
    return failed, results


def control_rows(frames: dict[str, pd.DataFrame], failed: dict[str, set[str]], settings: Settings) -> list[tuple]:
    """(change_id, repo, control_id, status, detail) for every row x control of its scope."""
    out: list[tuple] = []
    for scope in ("change", "repo"):
        df = frames[scope]
        controls = [c for c in CONTROLS if c.scope == scope]
        for start in range(0, len(df), _CHUNK):
            for row in df.iloc[start:start + _CHUNK].to_dict("records"):
                cid = row["change_id"]
                for c in controls:
                    status, detail = c.status_and_detail(row, cid in failed[c.id], settings)
                    out.append((cid, row["repo"], c.id, status, " ".join(detail.split())))
    out.sort(key=lambda r: (r[0], r[2]))
    return out


def evaluate(con: duckdb.DuckDBPyConnection, settings: Settings, as_of: datetime, *,
             before_commit: Callable[[duckdb.DuckDBPyConnection], object] | None = None) -> EvaluationResult:
    """Validate the facts for ``as_of`` and replace that date's ``control_results``.

    ``before_commit(con)`` runs inside the same transaction, after the results are written
    (the nightly run stores the date's population there: both or neither)."""
    t = naive_utc(as_of)
    as_of_iso = t.strftime("%Y-%m-%dT%H:%M:%SZ")
    frames = _frames(con)
    failed, gx_results = run_suites(frames, settings, as_of_iso)
    rows = control_rows(frames, failed, settings)

    summary = {c.id: {s: 0 for s in STATUSES} for c in CONTROLS}
    for _, _, control_id, status, _ in rows:
        summary[control_id][status] += 1

    df = pd.DataFrame(rows, columns=["change_id", "repo", "control_id", "status", "detail"], dtype=object)
    df.insert(0, "as_of", pd.Series([t] * len(df), dtype="datetime64[us]"))
    con.register("_ccwatch_results", df)
    con.execute("BEGIN TRANSACTION")
    try:
        con.execute("DELETE FROM control_results WHERE CAST(as_of AS DATE) = CAST(? AS DATE)", [t])
        con.execute("INSERT INTO control_results SELECT as_of, change_id, repo, control_id, status, detail "
                    "FROM _ccwatch_results")
        if before_commit is not None:
            before_commit(con)
        con.execute("COMMIT")
    except Exception:
        con.execute("ROLLBACK")
        raise
    finally:
        con.unregister("_ccwatch_results")
    return EvaluationResult(summary=summary, gx_results=gx_results, rows=len(rows))
