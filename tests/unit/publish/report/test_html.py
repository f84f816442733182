"""The daily HTML report: content, escaping, self-containedness, determinism."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest
from ccwatch.controls.catalogue import CONTROL_NAMES
from ccwatch.publish.report.gx import rule_text, unexpected_count
from ccwatch.publish.report.html import render_report

from tests.helpers import outputs_world as D


@pytest.fixture(scope="module")
def html():
    con = D.build()
    try:
        return render_report(con, D.settings(), D.AS_OF, D.gx_results())
    finally:
        con.close()


def _section(html: str, start: str, end: str = "<h2") -> str:
    i = html.index(start)
    j = html.find(end, i + len(start))
    return html[i: j if j > 0 else len(html)]


def test_headline_lists_all_thirteen_controls_with_pass_rates(html):
    table = _section(html, "Pass rate per control")
    for cid, name in CONTROL_NAMES.items():
        assert cid in table and name in table
    # CC8.1-03: #12 fails, #13 passes, direct push n/a -> 50.0%
    row = re.search(r"<tr><td><a href=\"#fail-CC8\.1-03\">CC8\.1-03</a>.*?</tr>", table).group(0)
    assert "50.0%" in row
    assert "As of 2026-11-25T00:00:00Z" in html
    assert D.settings().sha256 in html


def test_failing_changes_grouped_by_control_with_links_and_detail(html):
    failing = _section(html, "<h2>Failing changes")
    group = _section(failing, 'id="fail-CC8.1-03"', "<h3")
    assert 'href="https://github.com/acme/payments-api/pull/12"' in group
    assert 'href="https://acme.atlassian.net/browse/PAY-7"' in group
    assert "no APPROVED review by anyone but carol-dev (1 review: carol-dev COMMENTED)" in group
    assert "payments-api#13" not in group
    push = _section(failing, 'id="fail-CC8.1-10"', "<h3")
    assert f'href="https://github.com/acme/web-frontend/commit/{D.PUSH}"' in push
    # repository-level failures are not in this section but in their own
    assert 'id="fail-CC8.1-11"' not in failing


def test_pending_items_show_due_dates(html):
    pending = _section(html, "<h2>Pending")
    row06 = re.search(r"<tr><td>CC8\.1-06</td>.*?</tr>", pending, re.S).group(0)
    assert "2026-11-27T10:00:00Z" in row06  # merged 11-24T10:00 + 72 h grace
    row08 = re.search(r"<tr><td>CC8\.1-08</td>.*?</tr>", pending, re.S).group(0)
    assert "2026-12-04T12:00:00Z" in row08  # deployed 11-20T12:00 + 14 days
    assert "deployed 2026-11-20T12:00Z; ticket not Done yet" in row08


def test_repository_findings(html):
    repo = _section(html, 'id="repo-findings"')
    assert "classic protection: Branch not protected" in repo
    assert "production: environment missing" in repo
    assert repo.count("<tr>") == 5  # header + 4 rows


def test_gx_details_rendered_as_rules(html):
    gx = _section(html, "<h2>Great Expectations validation", "</body>")
    assert "cc8_1_03_peer_review" in gx
    assert "column values to be in set: column=status, value_set=[&quot;pass&quot;, &quot;not_applicable&quot;]" in gx
    assert "batch_id" not in gx
    assert re.search(r'<span class="st fail">failed</span></td><td class="num">1</td>', gx)
    assert re.search(r'<span class="st pass">success</span></td><td class="num">0</td>', gx)
    assert "validation_time" not in gx and "2026-11-25T00:06" not in gx  # volatile meta not rendered


def test_rule_text_and_unexpected_rows_count():
    cfg = {"type": "unexpected_rows_expectation",
           "kwargs": {"unexpected_rows_query": "SELECT * FROM {batch} WHERE x", "batch_id": "b"},
           "description": "CC8.1-05 checks passed"}
    assert rule_text(cfg).startswith("CC8.1-05 checks passed (unexpected rows expectation: unexpected_rows_query=")
    assert unexpected_count({"result": {"observed_value": 4}}, cfg) == 4
    assert unexpected_count({"result": {}}, {"type": "expect_x", "kwargs": {}}) is None


def test_everything_from_the_data_is_escaped(html):
    assert "<script" not in html.lower()
    assert "<!channel>" not in html
    assert "<http://evil" not in html
    assert "<img" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &lt;!channel&gt; &lt;http://evil.example|click&gt; &amp; &quot;q&quot;" in html
    assert "mallory&lt;b&gt;" in html
    assert "javascript:" not in html  # the unsafe ticket URL is shown as text, not linked
    assert ">PAY-8<" in html


class _Tags(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags: list[tuple[str, dict]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


def test_self_contained_no_external_resources(html):
    parser = _Tags()
    parser.feed(html)
    names = {t for t, _ in parser.tags}
    assert not names & {"script", "link", "iframe", "img", "object", "embed", "base", "meta_refresh"}
    assert {"style", "svg", "polyline", "table"} <= names
    for tag, attrs in parser.tags:
        assert "src" not in attrs and not any(k.startswith("on") for k in attrs), (tag, attrs)
        assert "url(" not in (attrs.get("style") or "")
        if "href" in attrs:
            href = attrs["href"]
            assert tag == "a" and (href.startswith("#") or
                                   re.match(r"https://(github\.com|acme\.atlassian\.net)/", href)), href
    style = html[html.index("<style>"): html.index("</style>")]
    assert "@import" not in style and "url(" not in style and "http" not in style


def test_trend_covers_previous_run_dates(html):
    chart = _section(html, "<h2>Pass rate per control", "<table")
    assert "2026-11-24" in chart and "2026-11-25" in chart
    assert chart.count("<circle") == 2
    row = re.search(r"<tr><td><a href=\"#fail-CC8\.1-03\">.*?</tr>", html).group(0)
    # sparkline of CC8.1-03: 100% on 11-24 (y=2.0), 50% on 11-25 (y=12.0)
    assert 'points="0.0,2.0 120.0,12.0"' in row


def test_deterministic_and_as_of_only():
    con = D.build()
    a = render_report(con, D.settings(), D.AS_OF, D.gx_results())
    b = render_report(con, D.settings(), D.AS_OF, D.gx_results())
    assert a == b
    # a run of the earlier date does not see the later date's rows
    prev = render_report(con, D.settings(), D.PREV, [])
    assert "payments-api#13" not in prev
    assert "2026-11-25" not in prev
    con.close()


def test_no_results_is_not_an_all_clear():
    con = D.build(with_results=False)
    html = render_report(con, D.settings(), D.AS_OF, [])
    assert "nothing here is an all-clear" in html
    assert "No Great Expectations validation results" in html
    con.close()
