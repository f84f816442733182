"""Open failures with their age and links; excepted failures apart."""

from __future__ import annotations

from datetime import date

import pytest
from ccwatch.publish import results, results_history
from ccwatch.publish.report import failing
from ccwatch.publish.report.links import ChangeLinks

from tests.helpers import outputs_world as D

D25 = date(2026, 11, 25)


@pytest.fixture(scope="module")
def three():
    con = D.build_three()
    yield con
    con.close()


def test_age_cells():
    row = {"first_failed": date(2026, 11, 20), "runs": 4}
    assert failing.age_cells(row, D25) == ('<td class="date" data-first-failed="2026-11-20">2026-11-20</td>'
                                           '<td class="num" data-days-open="5" title="failing on 4 run date(s) in a '
                                           'row">5</td>')
    assert '<span class="st new">new</span>' in failing.age_cells({"first_failed": D25, "runs": 1}, D25)


def test_failing_lists_every_open_failure_per_control_with_its_age(three):
    rows = results_history.open_failures(three, D.AS_OF, 100, ("CC8.1-01", "CC8.1-03", "CC8.1-10"))
    counts = results.status_counts(three, D.AS_OF)
    html = failing.render_failing(rows, counts, {}, ["CC8.1-01", "CC8.1-03", "CC8.1-10"], D25,
                                  ChangeLinks(three, D.AS_OF, [r["change_id"] for r in rows]))
    walk = D.streaks_by_walking(three, D25)
    for r in rows:
        first, _n = walk[(r["change_id"], r["control_id"])]
        assert (f'data-control="{r["control_id"]}" data-change="{r["change_id"]}"') in html
        assert f'data-first-failed="{first.isoformat()}"' in html
    assert 'id="fail-CC8.1-10"' in html and 'data-days-open="2"' in html


def test_failing_heading_counts_without_the_excepted_and_says_how_many_more(three):
    rows = results_history.open_failures(three, D.AS_OF, 100, ("CC8.1-10",))
    html = failing.render_failing(rows, {"CC8.1-10": {"fail": 3}}, {"CC8.1-10": 1}, ["CC8.1-10"], D25,
                                  ChangeLinks(three, D.AS_OF, [r["change_id"] for r in rows]))
    assert "CC8.1-10 Authorised change path (2, 1 more excepted)" in html
    assert "Showing the first 1 of 2 failing changes (longest open first, then by change id)" in html


def test_excepted_section(three):
    links = ChangeLinks(three, D.AS_OF, [])
    empty = failing.render_excepted([], {}, D25, links)
    assert "Excepted failures (0)" in empty and "No failure is covered by an exception" in empty
    row = {"control_id": "CC8.1-10", "change_id": "acme/web-frontend@x", "exception": "EX-1",
           "first_failed": date(2026, 11, 23), "runs": 3, "detail": "<b>pushed</b>"}
    html = failing.render_excepted([row], {"CC8.1-10": 1}, D25, links)
    assert "<code>EX-1</code>" in html and "&lt;b&gt;pushed&lt;/b&gt;" in html and 'data-days-open="2"' in html
    assert "stay <b>fail</b>" in html
