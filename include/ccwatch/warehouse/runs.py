"""The ``runs`` table: how far each evidence date got, and the guard every later stage passes.

A date is ``loaded`` by the load's own transaction, then ``evaluated`` and ``archived``; a failed
fetch or load marks it ``failed``.  :func:`open_loaded` refuses a date that is pending (a fetch
started and was not loaded), failed, or not yet at the stage asked for, so evaluation never reads
a half-written or failed ingest and never serves an older load of the date as this run's.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from ccwatch.common.errors import StageError
from ccwatch.common.paths import staging_dir, warehouse_path
from ccwatch.common.times import parse_as_of
from ccwatch.ingest.staging import PENDING, failed_ingest
from ccwatch.warehouse import connection

STAGES = ("loaded", "evaluated", "archived")


def mark_run(con: duckdb.DuckDBPyConnection, as_of: datetime, stage: str, detail: str | None = None) -> None:
    ts = as_of.replace(tzinfo=None)
    # one statement: a process killed here leaves the previous row or the new one, never none
    # (a missing row of the state's basis would make the next incremental load refuse)
    con.execute(
        "INSERT OR REPLACE INTO runs VALUES (?, ?, ?, ?, ?)",
        [ts, stage, None, datetime.now(UTC).replace(tzinfo=None), detail],
    )


def record_failed_ingests(con: duckdb.DuckDBPyConnection, home: Path) -> None:
    """Bring fetch failures (marker files: fetch stages never write DuckDB) into ``runs``."""
    for marker in sorted((Path(home) / "staging").glob("*/*.failed.json")):
        try:
            as_of = parse_as_of(json.loads(marker.read_text(encoding="utf-8"))["as_of"])
        except (OSError, ValueError, KeyError, TypeError):
            continue
        row = con.execute("SELECT stage FROM runs WHERE as_of = ?", [as_of.replace(tzinfo=None)]).fetchone()
        if not row or row[0] != "failed":
            mark_run(con, as_of, "failed", "; ".join(failed_ingest(home, as_of))[:2000])


def open_loaded(home: Path, as_of: datetime, need: str = "loaded") -> duckdb.DuckDBPyConnection:
    """The warehouse, open, when the date is at least at stage ``need``; StageError otherwise."""
    path = warehouse_path(home)
    if not path.is_file():
        raise StageError(f"{path} does not exist: load_warehouse has not run for {as_of:%Y-%m-%d}")
    failed = failed_ingest(home, as_of)
    if failed:
        con = connection.connect(path)
        try:
            mark_run(con, as_of, "failed", "; ".join(failed)[:2000])
        finally:
            con.close()
        raise StageError(f"the ingest of {as_of:%Y-%m-%d} failed ({'; '.join(failed)}): the run is marked failed")
    if (staging_dir(home, as_of) / PENDING).exists():
        raise StageError(f"an ingest of {as_of:%Y-%m-%d} started and was not loaded: refusing to read the warehouse")
    con = connection.connect(path)
    row = con.execute("SELECT stage FROM runs WHERE as_of = ?", [as_of.replace(tzinfo=None)]).fetchone()
    stage = row[0] if row else None
    if stage not in STAGES or STAGES.index(stage) < STAGES.index(need):
        con.close()
        got = stage or "nothing"
        raise StageError(f"{path}: the run of {as_of:%Y-%m-%d} is at '{got}', stage needs '{need}'")
    return con


def run_stage(con: duckdb.DuckDBPyConnection, as_of: datetime) -> tuple[str | None, str | None]:
    """(stage, detail) of the date's row in ``runs``, or (None, None)."""
    row = con.execute("SELECT stage, detail FROM runs WHERE as_of = ?", [as_of.replace(tzinfo=None)]).fetchone()
    return (row[0], row[1]) if row else (None, None)
