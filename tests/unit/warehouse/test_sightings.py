"""(r2) commit_sightings: which load saw each commit on a production branch's first-parent chain."""

from __future__ import annotations

from datetime import UTC, datetime

from ccwatch.warehouse.sightings import record_sightings

from tests.helpers.controls_world import PAY, T, World, make_settings, sha

D1, D2, D3 = (datetime(2026, 11, d, 2, tzinfo=UTC) for d in (20, 21, 22))


def table(w):
    return {s: (f, last) for s, f, last in w.con.execute(
        "SELECT sha, first_seen_as_of, last_seen_as_of FROM commit_sightings WHERE repo = ?", [PAY]).fetchall()}


def test_first_sighting_is_kept_and_the_latest_moves_forward():
    w, s = World(), make_settings()
    w.commit(PAY, sha("a"), T("11-01 10:00"))
    assert record_sightings(w.con, s, D1) == 1
    w.commit(PAY, sha("b"), T("11-20 10:00"), parent=sha("a"))
    record_sightings(w.con, s, D2)
    assert table(w) == {sha("a"): (T("11-20 02:00"), T("11-21 02:00")), sha("b"): (T("11-21 02:00"), T("11-21 02:00"))}
    w.con.execute("DELETE FROM commits WHERE sha = ?", [sha("b")])  # b left the branch
    record_sightings(w.con, s, D3)
    assert table(w)[sha("b")] == (T("11-21 02:00"), T("11-21 02:00")), "a commit no longer seen keeps its last sighting"
    assert table(w)[sha("a")][1] == T("11-22 02:00")


def test_a_rerun_of_an_earlier_date_never_dates_a_new_commit_before_a_later_run():
    w, s = World(), make_settings()
    w.commit(PAY, sha("a"), T("11-01 10:00"))
    record_sightings(w.con, s, D2)
    w.commit(PAY, sha("c"), T("11-21 12:00"), parent=sha("a"))  # pushed after the run of D2
    record_sightings(w.con, s, D1)  # a rerun of 11-20, fetched today
    assert table(w)[sha("c")] == (T("11-21 02:00"), T("11-21 02:00"))
    assert table(w)[sha("a")] == (T("11-21 02:00"), T("11-21 02:00"))
