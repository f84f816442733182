"""The ingest state file (``CCWATCH_HOME/state/ingest_state.json``): read, written atomically, dropped.

What it holds and how the plans use it: ``ccwatch.ingest.plan`` (which re-exports these names).
"""

from __future__ import annotations

import json
import logging
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ccwatch.ingest.records import remove_stale, tmp_pattern

log = logging.getLogger("ccwatch")

STATE_VERSION = 1


def state_path(home: Path) -> Path:
    return Path(home) / "state" / "ingest_state.json"


def iso(dt: datetime) -> str:
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse(text: str) -> datetime:
    return datetime.fromisoformat(str(text).replace("Z", "+00:00")).astimezone(UTC)


# --- state file --------------------------------------------------------------------------


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


def write_json_atomic(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale(path.parent, tmp_pattern(path))  # a killed writer's temp file
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with tmp.open("w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=1, sort_keys=True)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_state(home: Path, state: dict[str, Any]) -> Path:
    path = state_path(home)
    write_json_atomic(path, state)
    return path


def drop_state(home: Path) -> None:
    state_path(home).unlink(missing_ok=True)
