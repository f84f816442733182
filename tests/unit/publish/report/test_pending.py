"""Pending items: sortable deadlines, due within 48 h first."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from ccwatch.publish.report import pending

from tests.helpers import outputs_world as D

AS_OF = datetime(2026, 11, 25, tzinfo=UTC)
NOW = AS_OF.replace(tzinfo=None)


def test_due_gives_a_sortable_time_and_the_text():
    s = D.settings()  # 72 h grace, PIR 14 days, retro 3 days, post-mortem 7 days
    merged, deployed = datetime(2026, 11, 24, 10), datetime(2026, 11, 20, 12)
    assert pending.due("CC8.1-06", {"merged_at": merged}, s) == pending.Due(datetime(2026, 11, 27, 10),
                                                                           "2026-11-27T10:00:00Z")
    assert pending.due("CC8.1-08", {"deployed_at": deployed}, s).at == datetime(2026, 12, 4, 12)
    assert pending.due("CC8.1-08", {}, s) == pending.Due(None, "14 days after the production deployment")
    both = pending.due("CC8.1-09", {"merged_at": datetime(2026, 11, 24), "deployed_at": datetime(2026, 11, 18)}, s)
    assert both.at == datetime(2026, 11, 25)  # the post-mortem (11-18 + 7 d) is due before the approval (11-27)
    assert both.text == "approval by 2026-11-27T00:00:00Z; post-mortem by 2026-11-25T00:00:00Z"
    assert pending.due("CC8.1-13", {"merged_at": merged}, s) == pending.Due(None, "at the production deployment")
    aware = pending.due("CC8.1-07", {"merged_at": datetime(2026, 11, 24, 10, tzinfo=UTC)}, s)
    assert aware.at == datetime(2026, 11, 27, 10)  # naive UTC, comparable with the rest
    assert pending.due("CC8.1-06", None, s) == pending.Due(None, "")


class Links:
    def __init__(self, changes):
        self.changes = changes

    def change(self, change_id):
        return self.changes.get(change_id)


def test_ordered_due_within_48h_first_then_dated_then_undated_and_cut_per_control():
    s = D.settings()
    changes = {
        "a": {"merged_at": NOW - timedelta(hours=30)},   # 06/07 due in 42 h
        "b": {"merged_at": NOW + timedelta(hours=1)},    # 06/07 due in 73 h
        "c": {"deployed_at": NOW - timedelta(days=13)},  # 08 due in 24 h
        "d": {},                                         # 08 undated
    }
    rows = [{"control_id": c, "change_id": k} for k, c in
            [("d", "CC8.1-08"), ("b", "CC8.1-06"), ("a", "CC8.1-07"), ("c", "CC8.1-08"), ("a", "CC8.1-06")]]
    got = [(r["change_id"], r["control_id"]) for r, _d in pending.ordered(rows, Links(changes), s, AS_OF, 10)]
    assert got == [("c", "CC8.1-08"), ("a", "CC8.1-06"), ("a", "CC8.1-07"), ("b", "CC8.1-06"), ("d", "CC8.1-08")]
    cut = [(r["change_id"], r["control_id"]) for r, _d in pending.ordered(rows, Links(changes), s, AS_OF, 1)]
    assert cut == [("c", "CC8.1-08"), ("a", "CC8.1-06"), ("a", "CC8.1-07")]  # the soonest of each control


def test_in_words():
    assert pending.in_words(timedelta(hours=31)) == "in 1 d 7 h"
    assert pending.in_words(timedelta(hours=5, minutes=59)) == "in 5 h"
    assert pending.in_words(timedelta(minutes=20)) == "in under 1 h"
    assert pending.in_words(-timedelta(hours=50)) == "overdue by 2 d 2 h"


def test_render_marks_the_soon_ones():
    class L(Links):
        def change_cells(self, change_id):
            return f"<td>{change_id}</td>"

    soon = pending.Due(NOW + timedelta(hours=47), "2026-11-26T23:00:00Z")
    late = pending.Due(NOW + timedelta(hours=49), "2026-11-27T01:00:00Z")
    html = pending.render_pending([({"control_id": "CC8.1-06", "change_id": "a", "detail": "x"}, soon),
                                   ({"control_id": "CC8.1-06", "change_id": "b", "detail": "<y>"}, late)],
                                  AS_OF, L({}))
    first, second = html.split("</tr>")[1:3]
    assert 'class="due-soon"' in first and "due within 48 h" in first and 'data-due="2026-11-26T23:00:00Z"' in first
    assert "due within 48 h" not in second and "&lt;y&gt;" in second and "in 2 d 1 h" in second
