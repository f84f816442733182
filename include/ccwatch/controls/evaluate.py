"""Evaluate the CC8.1 controls for one as-of date: validate, then replace the date's results.

``evaluate(con, settings, as_of)`` validates every control's GX suite over the facts
(``controls.gx_validate``: GX must agree with the statuses derived from the same expectation
configurations, else ``EvaluationError`` and nothing is written) and then, in one transaction,
replaces the as-of date's rows of ``control_results`` with exactly one row per change (or
repository) and control (``controls.result_rows``).  Nothing here reads the wall clock: the same
data and as-of give byte-identical results.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

import duckdb

from ccwatch.common.times import iso, naive_utc
from ccwatch.controls.catalogue import STATUSES
from ccwatch.controls.families import CONTROLS
from ccwatch.controls.gx_validate import UNKNOWN_SCOPE, Statuses, run_suites
from ccwatch.controls.result_rows import insert_frames, result_chunks, write_change_results
from ccwatch.settings import Settings


@dataclass
class EvaluationResult:
    summary: dict[str, dict[str, int]]
    gx_results: list[dict] = field(default_factory=list)
    rows: int = 0


def _summary(statuses: Statuses) -> dict[str, dict[str, int]]:
    out = {}
    for c in CONTROLS:
        s = statuses[c.id]
        counts = {k: int((s == k).sum()) for k in STATUSES}
        counts["fail"] += int((s == UNKNOWN_SCOPE).sum())
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
        rows = write_change_results(con, statuses, settings, t)
        rows += insert_frames(con, list(result_chunks(con, statuses, settings, ("repo",))), t)  # one row per repo
        if before_commit is not None:
            before_commit(con)
        con.execute("COMMIT")
    except Exception:
        con.execute("ROLLBACK")
        raise
    return EvaluationResult(summary=summary, gx_results=gx_results, rows=rows)
