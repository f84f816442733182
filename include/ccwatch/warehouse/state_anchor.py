"""(stop 30) The ingest state file anchored in the warehouse.

The state (``CCWATCH_HOME/state/ingest_state.json``) decides what the next fetch asks: the
coverage, the deployments whose statuses are asked again, whether the activity log is read from the
window start, the rulesets asked when the rules list answers 304, whether an unprotected branch's
protection is asked.  An edited or foreign state would make an incremental fetch miss what it
names.  So each committed load records the sha256 of the state it wrote (``ingest_states``, in the
load's transaction: :func:`record_anchor`), each fetch's plan meta carries the digest of the state
it planned from (``ingest.plan``), and the next load refuses a fetch whose state is not the one its
basis load wrote, and a state file edited between the fetch and the load (:func:`anchor_problem`).
A warehouse that holds no anchor at all (from before stop 30) takes its state as it is, once: the
load anchors the state it writes.
"""

from __future__ import annotations

from typing import Any

from ccwatch.common.times import parse_utc
from ccwatch.ingest.state import state_digest


def record_anchor(con: Any, state: dict[str, Any]) -> None:
    """Anchor the state this load writes (inside its transaction; a rerun of the date replaces it)."""
    con.execute("INSERT OR REPLACE INTO ingest_states VALUES (?, ?)",
                [parse_utc(state["loaded_as_of"]).replace(tzinfo=None), state_digest(state)])


def _planned(metas: dict[str, dict[str, Any]]) -> list[tuple[str, str, str | None]]:
    """(source, basis, digest) of every incremental fetch of the load."""
    out = []
    for meta in metas.values():
        meta = meta or {}
        anchors = meta.get("anchors")
        if anchors is None:
            anchors = [{"basis": meta.get("basis"), "state_sha256": meta.get("state_sha256")}]
        out += [(str(meta.get("source")), a["basis"], a.get("state_sha256")) for a in anchors if a.get("basis")]
    return out


def anchor_problem(con: Any, metas: dict[str, dict[str, Any]], prev: dict[str, Any] | None,
                   state_file: Any) -> str | None:
    """Why this load may not build on the ingest state its fetches planned from, or None."""
    if not con.execute("SELECT 1 FROM ingest_states LIMIT 1").fetchone():
        return None  # a warehouse from before the anchor
    read = [(f"the {source} fetch planned from", basis, digest) for source, basis, digest in _planned(metas)]
    if prev is not None:  # the copy the load extends the coverage of
        read.append(("the load read", prev.get("loaded_as_of"), state_digest(prev)))
    for who, basis, digest in read:
        try:
            at = parse_utc(basis).replace(tzinfo=None)
        except (TypeError, ValueError):
            return f"{who} an ingest state ({state_file}) that names no load it comes from"
        row = con.execute("SELECT sha256 FROM ingest_states WHERE loaded_as_of = ?", [at]).fetchone()
        if row is None or row[0] != digest:
            return (f"{who} an ingest state ({state_file}) that is not the one the load of {basis} wrote (the "
                    "file was edited, or comes from another warehouse): an incremental fetch planned from it may "
                    "have missed what it names")
    return None
