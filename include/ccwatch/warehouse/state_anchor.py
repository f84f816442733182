"""(stop 30) The ingest state file anchored in the warehouse.

The state (``CCWATCH_HOME/state/ingest_state.json``) decides what the next fetch asks: the
coverage, the deployments whose statuses are asked again, whether the activity log is read from the
window start, the rulesets asked when the rules list answers 304, whether an unprotected branch's
protection is asked.  An edited or foreign state would make an incremental fetch miss what it
names.  So each committed load records the sha256 of the state it wrote (``ingest_states``, in the
load's transaction: :func:`record_anchor`), each fetch's plan meta carries the digest of the state
it planned from (``ingest.plan``), and the next load refuses a fetch whose state is not the one the
last load wrote, and a state file edited between the fetch and the load (:func:`anchor_problem`).
Only the last load's anchor is kept: an older state put back (a replay) was written by a load, but
it would keep what it named then (an unprotected branch's 404, its ETags) over what later loads
stored.  A warehouse that holds no anchor at all (from before stop 30) takes its state as it is,
once: the load anchors the state it writes.
"""

from __future__ import annotations

from datetime import UTC
from typing import Any

from ccwatch.common.times import iso_z, parse_utc
from ccwatch.ingest.state import state_digest


def record_anchor(con: Any, state: dict[str, Any]) -> None:
    """Anchor the state this load writes, in place of the last one (inside its transaction)."""
    con.execute("DELETE FROM ingest_states")
    con.execute("INSERT INTO ingest_states VALUES (?, ?)",
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
    last = con.execute("SELECT loaded_as_of, sha256 FROM ingest_states ORDER BY loaded_as_of DESC LIMIT 1").fetchone()
    if last is None:
        return None  # a warehouse from before the anchor
    read = [(f"the {source} fetch planned from", basis, digest) for source, basis, digest in _planned(metas)]
    if prev is not None:  # the copy the load extends the coverage of
        read.append(("the load read", prev.get("loaded_as_of"), state_digest(prev)))
    for who, basis, digest in read:
        try:
            at = parse_utc(basis).replace(tzinfo=None)
        except (TypeError, ValueError):
            return f"{who} an ingest state ({state_file}) that names no load it comes from"
        if (at, digest) != tuple(last):
            return (f"{who} an ingest state ({state_file}) of the load of {basis} that is not the one the last "
                    f"load (of {iso_z(last[0].replace(tzinfo=UTC))}) wrote (the file was edited, put back from an earlier night, or "
                    "comes from another warehouse): an incremental fetch planned from it may have missed what it "
                    "names")
    return None
