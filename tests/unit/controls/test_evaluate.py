"""evaluate(): one row per change x control, rerun replaces, deterministic results and GX JSON."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from ccwatch.controls.catalogue import CONTROL_IDS, REPO_CONTROLS, STATUSES
from ccwatch.controls.families import CONTROLS

from tests.helpers.controls_world import AS_OF, PAY, WEB, World, mixed_changes


def test_good_change_passes_every_control():
    w = World()
    w.protected_repo(PAY)
    w.protected_repo(WEB)
    c = w.good_pr(1)
    res = w.run()
    got = {k[1]: v for k, v in w.results().items() if k[0] == c["id"]}
    assert {k: v[0] for k, v in got.items()} == {
        "CC8.1-01": "pass", "CC8.1-02": "pass", "CC8.1-03": "pass", "CC8.1-04": "pass", "CC8.1-05": "pass",
        "CC8.1-06": "pass", "CC8.1-07": "pass", "CC8.1-08": "pass", "CC8.1-09": "not_applicable",
        "CC8.1-10": "pass", "CC8.1-13": "pass",
    }, got
    assert w.status(PAY, "CC8.1-11") == "pass" and w.status(PAY, "CC8.1-12") == "pass"
    assert res.rows == 11 + 2 * len(REPO_CONTROLS)



def test_one_row_per_change_and_control_and_rerun_replaces():
    w = World()
    mixed_changes(w)
    res = w.run()
    n_changes = w.con.execute("SELECT count(*) FROM change_facts").fetchone()[0]
    assert n_changes == 5
    per = w.con.execute("SELECT change_id, control_id, count(*) FROM control_results GROUP BY ALL").fetchall()
    assert all(c == 1 for *_, c in per)
    change_rows = [r for r in per if "#" in r[0] or "@" in r[0]]
    assert len(change_rows) == n_changes * 11 and len(per) == n_changes * 11 + 2 * len(REPO_CONTROLS) == res.rows
    # rerun (same date, later time) replaces that date's rows; another date adds its own
    w.run(as_of=AS_OF + timedelta(hours=2))
    assert w.con.execute("SELECT count(*), count(DISTINCT as_of) FROM control_results").fetchone() == (res.rows, 1)
    w.run(as_of=AS_OF + timedelta(days=1))
    assert w.con.execute("SELECT count(DISTINCT CAST(as_of AS DATE)) FROM control_results").fetchone()[0] == 2


def test_summary_has_every_control_and_status():
    w = World()
    mixed_changes(w)
    res = w.run()
    assert list(res.summary) == list(CONTROL_IDS)
    for counts in res.summary.values():
        assert list(counts) == list(STATUSES)
    assert sum(sum(c.values()) for c in res.summary.values()) == res.rows
    assert res.summary["CC8.1-10"]["fail"] == 1 and res.summary["CC8.1-06"]["pending"] == 1


def test_gx_results_state_the_rules_and_are_deterministic():
    w1, w2 = World(), World()
    mixed_changes(w1)
    mixed_changes(w2)
    r1, r2 = w1.run(), w2.run()
    j1, j2 = json.dumps(r1.gx_results, sort_keys=True), json.dumps(r2.gx_results, sort_keys=True)
    assert j1 == j2
    rows1 = w1.con.execute("SELECT * FROM control_results ORDER BY ALL").fetchall()
    assert rows1 == w2.con.execute("SELECT * FROM control_results ORDER BY ALL").fetchall()
    assert [g["suite_name"] for g in r1.gx_results] == [c.id for c in CONTROLS]
    s03 = next(g for g in r1.gx_results if g["suite_name"] == "CC8.1-03")
    cfg = s03["results"][0]["expectation_config"]
    assert cfg["type"] == "expect_column_values_to_be_between"
    assert cfg["kwargs"]["column"] == "independent_approvals" and cfg["kwargs"]["min_value"] == 1
    assert cfg["kwargs"]["row_condition"]["column"]["name"] == "cc03_scope"
    failed = {i["change_id"] for i in s03["results"][0]["result"]["partial_unexpected_index_list"]}
    assert failed == {"acme/web-frontend#3"}
    assert s03["meta"]["validation_time"] == "2026-11-25T00:00:00Z" and "validation_id" not in s03["meta"]


def test_empty_window_still_validates():
    w = World()
    res = w.run()
    assert res.rows == 2 * len(REPO_CONTROLS) and len(res.gx_results) == len(CONTROL_IDS)
    assert res.summary["CC8.1-11"]["fail"] == 2  # no protection evidence at all fails closed


def test_gx_disagreeing_keeps_the_dates_earlier_results(monkeypatch):
    """A rerun whose GX validation disagrees with the derived statuses replaces nothing: the date
    keeps the results of its earlier run (no half-replaced date)."""
    from ccwatch.controls import gx_validate as validation

    w = World()
    mixed_changes(w)
    w.run()
    before = sorted(w.con.execute("SELECT * FROM control_results").fetchall())

    def disagree(suites, as_of_iso):
        raise validation.EvaluationError("CC8.1-05: GX reports 1 unexpected rows, ccwatch derived 0")

    monkeypatch.setattr(validation, "_validate", disagree)
    with pytest.raises(validation.EvaluationError, match="CC8.1-05"):
        w.run(as_of=AS_OF + timedelta(hours=2))
    assert sorted(w.con.execute("SELECT * FROM control_results").fetchall()) == before


def test_a_write_failure_is_raised_and_keeps_the_dates_earlier_results(monkeypatch):
    from ccwatch.controls import evaluate as ev

    w = World()
    mixed_changes(w)
    w.run()
    before = sorted(w.con.execute("SELECT * FROM control_results").fetchall())

    def broken(*a, **k):
        raise RuntimeError("disk full")

    monkeypatch.setattr(ev, "write_change_results", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        w.run(as_of=AS_OF + timedelta(hours=2))
    assert sorted(w.con.execute("SELECT * FROM control_results").fetchall()) == before
