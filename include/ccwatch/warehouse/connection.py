"""Connections to the warehouse file: DuckDB's memory bounds and the file lock.

Every writer connects through :func:`connect`, which bounds DuckDB's memory
(``CCWATCH_DUCKDB_MEMORY_LIMIT``), waits a bounded time for a reader's lock and brings the schema
up to date (``warehouse.schema.migrate``); the load lowers the bound for its staged rows
(:func:`load_memory_limit`, :func:`set_memory_limit`).  Readers (the Compliance page) connect
read-only and never wait.
"""

from __future__ import annotations

import os
import re
import time

import duckdb

from ccwatch.warehouse.schema import migrate

# DuckDB takes 80% of RAM by default; a nightly worker shares its machine (Celery, Airflow),
# and 1M changes evaluate in < 4 GB peak only with a bound (docs/PERFORMANCE.md). Larger
# intermediate results spill to ``<warehouse>.tmp``.
MEMORY_LIMIT_ENV = "CCWATCH_DUCKDB_MEMORY_LIMIT"
DEFAULT_MEMORY_LIMIT = "2GB"
# The load (load_warehouse) holds its staged rows in DuckDB until it publishes them: under a bound
# lower than the general one they spill to ``<warehouse>.tmp`` early, so the load's peak does not
# grow with the org (docs/PERFORMANCE.md, issue #15).  Never above the general limit unless set.
LOAD_MEMORY_LIMIT_ENV = "CCWATCH_DUCKDB_LOAD_MEMORY_LIMIT"
DEFAULT_LOAD_MEMORY_LIMIT = "1GB"
_UNITS = {"b": 1, "byte": 1, "bytes": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
          "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}


def _limit_bytes(text: str) -> float | None:
    """A DuckDB memory limit in bytes (``2GB``, ``512 MiB``), or None for any other form (``80%``)."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*", text)
    unit = _UNITS.get(m.group(2).lower() if m and m.group(2) else "mb") if m else None  # DuckDB: bare = MB
    return float(m.group(1)) * unit if m and unit else None


def load_memory_limit() -> str:
    """DuckDB's memory limit during the load: ``CCWATCH_DUCKDB_LOAD_MEMORY_LIMIT`` if set, else the
    smaller of 1GB and ``CCWATCH_DUCKDB_MEMORY_LIMIT`` (default 2GB)."""
    explicit = os.environ.get(LOAD_MEMORY_LIMIT_ENV, "").strip()
    if explicit:
        return explicit
    general = os.environ.get(MEMORY_LIMIT_ENV, "").strip() or DEFAULT_MEMORY_LIMIT
    g, d = _limit_bytes(general), _limit_bytes(DEFAULT_LOAD_MEMORY_LIMIT)
    return general if g is None or d is None or g <= d else DEFAULT_LOAD_MEMORY_LIMIT


def set_memory_limit(con: duckdb.DuckDBPyConnection, limit: str, setting: str = LOAD_MEMORY_LIMIT_ENV) -> None:
    """Bound this connection's DuckDB to ``limit`` (``setting`` names where the value came from)."""
    bad = f"{setting}={limit!r} is not a DuckDB memory limit (e.g. 1GB, 512MB)"
    if "'" in limit:
        raise ValueError(bad)
    try:
        con.execute(f"SET memory_limit = '{limit}'")
    except (duckdb.InvalidInputException, duckdb.ParserException) as exc:
        raise ValueError(f"{bad}: {exc}") from None


# DuckDB locks the file per process: a writer cannot open it while another process reads it. The
# Compliance page (publish/dashboard/) reads it read-only for milliseconds; a writer that meets such
# a lock waits this long for it before failing (readers never wait: the page answers 503 instead).
LOCK_WAIT_SECONDS = 30.0


def connect(path: str, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    limit = os.environ.get(MEMORY_LIMIT_ENV, "").strip() or DEFAULT_MEMORY_LIMIT
    deadline = time.monotonic() + (0 if read_only else LOCK_WAIT_SECONDS)
    while True:
        try:
            con = duckdb.connect(str(path), read_only=read_only, config={"memory_limit": limit})
            break
        except (duckdb.InvalidInputException, duckdb.ParserException) as exc:
            raise ValueError(f"{MEMORY_LIMIT_ENV}={limit!r} is not a DuckDB memory limit (e.g. 2GB, 512MB): "
                             f"{exc}") from None
        except duckdb.IOException as exc:
            if "lock" not in str(exc).lower() or time.monotonic() >= deadline:
                raise
            time.sleep(0.2)
    if not read_only:
        migrate(con)
    return con
