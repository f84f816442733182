"""(stop 30) The ingest state anchored in the warehouse (warehouse/state_anchor.py,
ingest/state.py ``state_digest``): a load refuses a fetch that planned from a state its basis load
did not write."""

from __future__ import annotations

import copy
import hashlib
import json

from ccwatch.ingest.state import read_state, state_digest, write_state
from ccwatch.warehouse.state_anchor import anchor_problem, record_anchor

STATE = {"version": 1, "loaded_as_of": "2026-11-25T00:00:00Z", "github": {"acme/payments-api": {
    "covered_from": "2026-08-27T00:00:00Z", "watermark": "2026-11-25T00:00:00Z", "unprotected": False,
    "open_deployments": {"production": [{"id": 9007199254740993, "state": "in_progress"}]}}},
    "jira": {"PAY": {"covered_from": "2026-08-27T00:00:00Z"}}, "jira_known_keys": ["PAY-7"]}


def meta(source: str, state: dict | None, basis: str | None = "2026-11-25T00:00:00Z") -> dict:
    return {"source": source, "basis": basis, "state_sha256": state_digest(state) if state else None}


def test_the_digest_is_the_files_as_written_and_as_read(tmp_path):
    (tmp_path / "warehouse.duckdb").touch()
    reordered = dict(reversed(list(copy.deepcopy(STATE).items())))
    assert state_digest(reordered) == state_digest(STATE) and len(state_digest(STATE)) == 64
    path = write_state(tmp_path, reordered)
    read = read_state(tmp_path, tmp_path / "warehouse.duckdb")
    assert read == STATE and state_digest(read) == state_digest(STATE) == hashlib.sha256(path.read_bytes()).hexdigest()
    edited = copy.deepcopy(STATE)
    edited["github"]["acme/payments-api"]["open_deployments"] = {}
    assert state_digest(edited) != state_digest(STATE)
    path.write_text(json.dumps(STATE), encoding="utf-8")  # the same state, written by hand: another file
    assert state_digest(read_state(tmp_path, tmp_path / "warehouse.duckdb")) != state_digest(STATE)


def test_a_fetch_of_the_anchored_state_is_accepted(con):
    record_anchor(con, STATE)
    metas = {"github": meta("github", STATE), "jira": meta("jira", STATE)}
    assert anchor_problem(con, metas, STATE, "S") is None
    assert anchor_problem(con, {"github": meta("github", None, None)}, None, "S") is None  # a full fetch


def test_an_edited_state_is_refused_whoever_read_it(con):
    record_anchor(con, STATE)
    edited = copy.deepcopy(STATE)
    edited["github"]["acme/payments-api"]["unprotected"] = True
    good = {"github": meta("github", STATE), "jira": meta("jira", STATE)}
    problem = anchor_problem(con, {**good, "jira": meta("jira", edited)}, STATE, "state/ingest_state.json")
    assert problem.startswith("the jira fetch planned from an ingest state (state/ingest_state.json) of the load "
                              "of 2026-11-25T00:00:00Z that is not the one the last load (of 2026-11-25T00:00:00Z) "
                              "wrote"), problem
    assert anchor_problem(con, good, edited, "S").startswith("the load read an ingest state (S) of the load of 2026-11-25T00:00:00Z that is not")
    # a state that names another load, or none
    other = {**STATE, "loaded_as_of": "2026-11-24T00:00:00Z"}
    assert "the load of 2026-11-24T00:00:00Z" in anchor_problem(con, {"github": meta("github", other, other["loaded_as_of"])}, None, "S")
    nameless = {k: v for k, v in STATE.items() if k != "loaded_as_of"}
    assert "names no load it comes from" in anchor_problem(con, good, nameless, "S")
    # a plan written without a digest (by code from before the anchor) is not taken on trust
    assert anchor_problem(con, {"github": {"source": "github", "basis": STATE["loaded_as_of"]}}, None, "S")


def test_an_earlier_state_put_back_is_refused(con):
    """A replay: the state of an earlier load was anchored once, but only the last load's counts (it would
    keep what it named then, e.g. a branch's 404 that a later load replaced by a protected 200)."""
    later = {**copy.deepcopy(STATE), "loaded_as_of": "2026-11-26T00:00:00Z"}
    later["github"]["acme/payments-api"]["watermark"] = "2026-11-26T00:00:00Z"
    record_anchor(con, STATE)
    record_anchor(con, later)
    assert con.execute("SELECT count(*) FROM ingest_states").fetchone()[0] == 1
    assert anchor_problem(con, {"github": meta("github", later, later["loaded_as_of"])}, later, "S") is None
    problem = anchor_problem(con, {"github": meta("github", STATE)}, None, "S")
    assert "not the one the last load (of 2026-11-26T00:00:00Z) wrote" in problem and "put back" in problem, problem


def test_a_rerun_of_the_date_replaces_its_anchor_and_a_warehouse_without_anchors_accepts_once(con):
    edited = copy.deepcopy(STATE)
    edited["jira_known_keys"].append("PAY-8")
    assert anchor_problem(con, {"github": meta("github", edited)}, edited, "S") is None  # no anchor at all yet
    record_anchor(con, STATE)
    record_anchor(con, edited)  # the date loaded again
    assert con.execute("SELECT count(*) FROM ingest_states").fetchone()[0] == 1
    assert anchor_problem(con, {"github": meta("github", edited)}, edited, "S") is None
    assert anchor_problem(con, {"github": meta("github", STATE)}, None, "S") is not None
