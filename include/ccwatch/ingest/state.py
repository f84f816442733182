"""The ingest state file (``CCWATCH_HOME/state/ingest_state.json``): read, written atomically, dropped.

What it holds: ``ccwatch.warehouse.ingest_state`` computes it after each committed load; how the
fetches use it: ``ccwatch.ingest.plan``.  Fetch tasks read only this file, never DuckDB.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Any

from ccwatch.common.files import atomic_writer
from ccwatch.common.paths import state_path

log = logging.getLogger("ccwatch")

STATE_VERSION = 1


class State(dict):
    """A state read from its file; ``digest`` is the sha256 of the file's bytes (:func:`state_digest`)."""

    digest: str = ""


def state_text(state: dict[str, Any]) -> str:
    """The file's text: indented, key-sorted JSON."""
    return json.dumps(state, indent=1, sort_keys=True)


def state_digest(state: dict[str, Any]) -> str:
    """(stop 30) The sha256 of the state file's bytes: of the file as read (a :class:`State`), or of the
    text :func:`write_state` writes for a computed one.  The load records it in the warehouse, each
    fetch's plan carries the one it planned from (warehouse/state_anchor.py).  Hashing the bytes read
    costs each fetch one pass over the file; key order does not change a computed state's text."""
    digest = getattr(state, "digest", "")
    return digest or hashlib.sha256(state_text(state).encode("utf-8")).hexdigest()


def read_state(home: Path, warehouse: Path) -> State | None:
    """The state written by the last complete load, or None (then every fetch is full)."""
    path = state_path(home)
    if not path.is_file():
        return None
    if not Path(warehouse).is_file():
        log.warning("Ingest state %s ignored: the warehouse %s does not exist (full fetch)", path, warehouse)
        return None
    try:
        data = path.read_bytes()
        state = json.loads(data)
    except (OSError, ValueError) as exc:
        log.warning("Ingest state %s unreadable (%s): full fetch", path, exc)
        return None
    if not isinstance(state, dict) or state.get("version") != STATE_VERSION:
        log.warning("Ingest state %s has another version: full fetch", path)
        return None
    out = State(state)
    out.digest = hashlib.sha256(data).hexdigest()
    return out


def write_state(home: Path, state: dict[str, Any]) -> Path:
    """The state as :func:`state_text`, atomically (its digest is then :func:`state_digest`'s)."""
    path = state_path(home)
    with atomic_writer(path) as fh:
        fh.write(state_text(state))
    return path


def drop_state(home: Path) -> None:
    state_path(home).unlink(missing_ok=True)
