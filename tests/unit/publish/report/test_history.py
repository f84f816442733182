"""The report's history section: pass-rate charts over run dates and the day-over-day change."""

from __future__ import annotations

import re
from datetime import date

import pytest
from ccwatch.publish import results_history
from ccwatch.publish.report import history
from ccwatch.publish.report.links import ChangeLinks

from tests.helpers import outputs_world as D

D23, D24, D25 = date(2026, 11, 23), date(2026, 11, 24), date(2026, 11, 25)


def hist(*per_date):
    """[(date, {control: {status: n}})] from (date, pass, fail) of one control CC8.1-03."""
    return [(d, {"CC8.1-03": {"pass": p, "fail": f}}) for d, p, f in per_date]


def circles(svg: str) -> list[tuple[str, str]]:
    return re.findall(r'<circle class="pt"[^>]*data-date="([^"]+)" data-rate="([^"]+)"', svg)


def test_sparkline_has_a_point_per_judged_run_date_with_its_value():
    svg = history.sparkline(history.control_rates(hist((D23, 1, 0), (D24, 1, 1), (D25, 0, 2)), "CC8.1-03"), "CC8.1-03")
    assert circles(svg) == [("2026-11-23", "1.0000"), ("2026-11-24", "0.5000"), ("2026-11-25", "0.0000")]
    assert 'data-control="CC8.1-03"' in svg and "<title>2026-11-24: 50.0%</title>" in svg
    assert svg.count("<polyline") == 1  # consecutive days: one line
    assert "aria-label=\"CC8.1-03 pass rate per run date: 2026-11-23 100.0%, 2026-11-24 50.0%, 2026-11-25 0.0%\"" in svg


def test_a_date_without_a_run_or_without_judged_rows_is_a_gap():
    gap = history.sparkline(history.control_rates(hist((date(2026, 11, 20), 1, 0), (D25, 1, 1)), "CC8.1-03"),
                            "CC8.1-03")
    assert len(circles(gap)) == 2 and "<polyline" not in gap  # 5 days apart: two points, no line between
    nothing = hist((D23, 1, 0), (D24, 0, 0), (D25, 1, 0))
    svg = history.sparkline(history.control_rates(nothing, "CC8.1-03"), "CC8.1-03")
    assert [d for d, _ in circles(svg)] == ["2026-11-23", "2026-11-25"] and "<polyline" not in svg
    assert "nothing judged" in history.sparkline(history.control_rates(hist((D23, 0, 0)), "CC8.1-03"), "CC8.1-03")


def test_calendar_axis_places_points_by_date():
    svg = history.sparkline(history.control_rates(hist((D23, 1, 0), (D24, 1, 0), (date(2026, 11, 27), 1, 0)),
                                                  "CC8.1-03"), "CC8.1-03", width=108)
    xs = [float(x) for x in re.findall(r'<circle class="pt" cx="([\d.]+)"', svg)]
    assert xs == [4.0, 29.0, 104.0]  # 0, 1 and 4 days of a 4-day span over 100 px


def test_trend_chart_labels_fit_inside_and_every_value_is_printed():
    svg = history.trend_chart(hist((D23, 9, 1), (D24, 8, 2), (D25, 7, 3)))
    width = int(re.search(r'<svg class="trend" width="(\d+)"', svg).group(1))
    labels = re.findall(r'<text x="([\d.]+)" y="[\d.]+" font-size="11" fill="#59636e" text-anchor="(\w+)">'
                        r"(\d{4}-\d\d-\d\d)</text>", svg)
    assert [(a, d) for _x, a, d in labels] == [("start", "2026-11-23"), ("middle", "2026-11-24"),
                                                ("end", "2026-11-25")]
    last_x = float(labels[-1][0])
    assert last_x <= width  # anchored at its end: the label ends at the last point, inside the chart
    assert len(circles(svg)) == 3
    for value in ("90.0%", "80.0%", "70.0%"):
        assert f">{value}</text>" in svg


def test_trend_chart_thins_labels_over_many_dates():
    many = hist(*[(date(2026, 10, 1 + i), 1, 0) for i in range(30)])
    svg = history.trend_chart(many)
    dates = re.findall(r'text-anchor="\w+">(\d{4}-\d\d-\d\d)</text>', svg)
    assert len(dates) == 7 and dates[0] == "2026-10-01" and dates[-1] == "2026-10-30"
    assert len(circles(svg)) == 30 and ">100.0%</text>" not in svg  # values only printed for few points


def test_rate_change_in_points():
    h = hist((D24, 1, 0), (D25, 1, 1))
    assert history.rate_change(h, "CC8.1-03") == '<span class="down">-50.0</span>'
    assert history.rate_change(hist((D24, 1, 1), (D25, 1, 0)), "CC8.1-03") == '<span class="up">+50.0</span>'
    assert history.rate_change(hist((D25, 1, 0)), "CC8.1-03") == ""
    assert history.rate_change(hist((D24, 0, 0), (D25, 1, 0)), "CC8.1-03") == ""


@pytest.fixture(scope="module")
def three():
    con = D.build_three()
    yield con
    con.close()


def _render(con, as_of):
    dod = results_history.day_over_day(con, as_of, 100)
    ids = [r["change_id"] for rows in dod["rows"].values() for r in rows]
    return history.render_day_over_day(dod, as_of.date(), ChangeLinks(con, as_of, ids))


def test_day_over_day_section_lists_each_kind(three):
    html = _render(three, D.AS_OF)
    assert "Compared with the previous run date, <b>2026-11-24</b>." in html
    new = html[html.index('id="newly_failing"'): html.index('id="resolved"')]
    assert "Newly failing (2)" in new and "not evaluated" in new  # #13 had no row on 11-24
    assert '<span class="st pass">pass</span>' in new  # #12 CC8.1-03 passed on 11-24
    assert 'href="changes/acme__payments-api__pr-13/change.json"' in new
    resolved = html[html.index('id="resolved"'): html.index('id="left"')]
    assert "Newly resolved (1)" in resolved and "head abc1234: test failure" in resolved
    left = html[html.index('id="left"'):]
    assert "Left the population (1)" in left and D.LEFT in left and "PAY-1 has blank Business Justification" in left


def test_day_over_day_names_the_gap_and_the_first_run(three):
    con = D.build_three()
    try:
        con.execute("DELETE FROM control_results WHERE CAST(as_of AS DATE) = '2026-11-24'")
        assert "<b>2026-11-23</b> (2 days earlier: no run on the 1 date(s) between, which are skipped)" in _render(
            con, D.AS_OF)
    finally:
        con.close()
    assert "first run date in the warehouse" in _render(three, D.FIRST)
