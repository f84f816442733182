"""The ingest state file (``CCWATCH_HOME/state/ingest_state.json``): read, written atomically, dropped.

What it holds: ``ccwatch.warehouse.ingest_state`` computes it after each committed load; how the
fetches use it: ``ccwatch.ingest.plan``.  Fetch tasks read only this file, never DuckDB.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from ccwatch.common.files import write_json_atomic
from ccwatch.common.paths import state_path

log = logging.getLogger("ccwatch")

STATE_VERSION = 1


def read_state(home: Path, warehouse: Path) -> dict[str, Any] | None:
    """The state written by the last complete load, or None (then every fetch is full)."""
    path = state_path(home)
    if not path.is_file():
        return None
    if not Path(warehouse).is_file():
        log.warning("Ingest state %s ignored: the warehouse %s does not exist (full fetch)", path, warehouse)
        return None
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        log.warning("Ingest state %s unreadable (%s): full fetch", path, exc)
        return None
    if not isinstance(state, dict) or state.get("version") != STATE_VERSION:
        log.warning("Ingest state %s has another version: full fetch", path)
        return None
    return state


def write_state(home: Path, state: dict[str, Any]) -> Path:
    path = state_path(home)
    write_json_atomic(path, state)
    return path


def drop_state(home: Path) -> None:
    state_path(home).unlink(missing_ok=True)
