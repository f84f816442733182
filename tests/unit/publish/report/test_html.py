"""The daily HTML report as a page: its sections, escaping, self-containedness, determinism.
The sections' own rules are tested next to their modules (test_history, test_failing, ...)."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest
from ccwatch.controls.catalogue import CONTROL_NAMES
from ccwatch.publish.report.html import render_report

from tests.helpers import outputs_world as D


@pytest.fixture(scope="module")
def html():
    con = D.build_three()
    try:
        return render_report(con, D.settings(), D.AS_OF, D.gx_results())
    finally:
        con.close()


def _section(html: str, start: str, end: str = "<h2") -> str:
    i = html.index(start)
    j = html.find(end, i + len(start))
    return html[i: j if j > 0 else len(html)]


def _row(html: str, pattern: str) -> str:
    return re.search(pattern + r".*?</tr>", html, re.S).group(0)


def test_headline_lists_all_thirteen_controls_with_pass_rates(html):
    table = _section(html, '<h2 id="rates">')
    for cid, name in CONTROL_NAMES.items():
        assert cid in table and name in table
    # CC8.1-03: #12 fails, #13 passes, direct push n/a -> 50.0%; 100% the day before -> -50.0 points
    row = _row(table, r'<tr><td><a href="#fail-CC8\.1-03">CC8\.1-03</a>')
    assert "50.0%" in row and '<span class="down">-50.0</span>' in row
    assert "As of 2026-11-25T00:00:00Z" in html
    assert D.settings().sha256 in html
    kpis = html[html.index("<div>"): html.index("</div>")]
    assert "<b>2</b>newly failing since 2026-11-24" in kpis and "<b>1</b>resolved since 2026-11-24" in kpis


def test_every_navigation_link_has_its_section(html):
    nav = html[html.index("<nav>"): html.index("</nav>")]
    targets = re.findall(r'href="#([^"]+)"', nav)
    assert targets == ["since", "rates", "failing", "pending", "by-repo", "by-author", "repo-findings", "gx"]
    for t in targets:
        assert f'id="{t}"' in html


def test_sections_come_in_reading_order(html):
    order = [html.index(f'<h2 id="{t}">') for t in ("since", "rates", "failing", "pending", "by-repo", "by-author",
                                                     "repo-findings", "gx")]
    assert order == sorted(order)


def test_failing_changes_grouped_by_control_with_links_age_and_detail(html):
    failing = _section(html, '<h2 id="failing">')
    group = _section(failing, 'id="fail-CC8.1-03"', "<h3")
    assert 'href="https://github.com/acme/payments-api/pull/12"' in group
    assert 'href="https://acme.atlassian.net/browse/PAY-7"' in group
    assert 'href="changes/acme__payments-api__pr-12/change.json"' in group
    assert 'href="changes/acme__payments-api__pr-12/"' in group
    assert "no APPROVED review by anyone but carol-dev (1 review: carol-dev COMMENTED)" in group
    assert 'data-first-failed="2026-11-25"' in group and 'data-days-open="0"' in group
    assert "payments-api#13" not in group
    push = _section(failing, 'id="fail-CC8.1-10"', "<h3")
    assert f'href="https://github.com/acme/web-frontend/commit/{D.PUSH}"' in push
    assert 'data-first-failed="2026-11-23"' in push and 'data-days-open="2"' in push
    assert 'title="failing on 3 run date(s) in a row"' in push
    # repository-level failures are not in this section but in their own
    assert 'id="fail-CC8.1-11"' not in failing


def test_pending_items_show_due_dates(html):
    pending = _section(html, '<h2 id="pending">')
    row06 = _row(pending, r'<td class="id">CC8\.1-06</td>')
    assert "2026-11-27T10:00:00Z" in row06 and "in 2 d 10 h" in row06  # merged 11-24T10:00 + 72 h grace
    row08 = _row(pending, r'<td class="id">CC8\.1-08</td>')
    assert "2026-12-04T12:00:00Z" in row08  # deployed 11-20T12:00 + 14 days
    assert "deployed 2026-11-20T12:00Z; ticket not Done yet" in row08
    assert pending.index("CC8.1-06</td>") < pending.index("CC8.1-08</td>")  # sooner first


def test_since_the_previous_run(html):
    since = _section(html, '<h2 id="since">')
    assert "Compared with the previous run date, <b>2026-11-24</b>." in since
    assert re.findall(r'data-kind="(\w+)" data-control="([^"]+)" data-change="([^"]+)"', since) == [
        ("newly_failing", "CC8.1-01", "acme/payments-api#13"), ("newly_failing", "CC8.1-03", "acme/payments-api#12"),
        ("resolved", "CC8.1-05", "acme/payments-api#12"), ("left", "CC8.1-02", D.LEFT)]


def test_views_by_repository_and_author(html):
    repo = _section(html, '<h2 id="by-repo">')
    assert repo.index('data-key="acme/payments-api"') < repo.index('data-key="acme/web-frontend"')
    assert 'href="changes/acme__payments-api/"' in repo
    author = _section(html, '<h2 id="by-author">')
    assert 'data-key="mallory&lt;b&gt;"' in author and "CC8.1-11" not in author


def test_repository_findings(html):
    repo = _section(html, 'id="repo-findings"')
    assert "classic protection: Branch not protected" in repo
    assert "production: environment missing" in repo
    assert repo.count("<tr>") == 5  # header + 4 rows


def test_gx_section_in_words(html):
    gx = _section(html, '<h2 id="gx">', "</body>")
    assert "cc8_1_03_peer_review" in gx
    assert "status is one of: pass, not_applicable." in gx
    assert "batch_id" not in gx
    assert "validation_time" not in gx and "2026-11-25T00:06" not in gx  # volatile meta not rendered


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


EVIDENCE_HREF = re.compile(r"changes/[A-Za-z0-9._-]+/([A-Za-z0-9._-]+)?\Z")


def test_self_contained_no_external_resources_no_script(html):
    parser = _Tags()
    parser.feed(html)
    names = {t for t, _ in parser.tags}
    assert not names & {"script", "link", "iframe", "img", "object", "embed", "base", "noscript", "form"}
    assert {"style", "svg", "polyline", "circle", "table", "details"} <= names
    for tag, attrs in parser.tags:
        assert "src" not in attrs and not any(k.startswith("on") for k in attrs), (tag, attrs)
        assert "url(" not in (attrs.get("style") or "")
        if tag == "meta":
            assert set(attrs) == {"charset"}
        if "href" in attrs:
            href = attrs["href"]
            assert tag == "a" and (href.startswith("#") or EVIDENCE_HREF.match(href)
                                   or re.match(r"https://(github\.com|acme\.atlassian\.net)/", href)), href
    style = html[html.index("<style>"): html.index("</style>")]
    assert "@import" not in style and "url(" not in style and "http" not in style


def test_deterministic_and_as_of_only():
    con = D.build_three()
    try:
        a = render_report(con, D.settings(), D.AS_OF, D.gx_results())
        b = render_report(con, D.settings(), D.AS_OF, D.gx_results())
        assert a == b
        # a run of an earlier date does not see the later date's rows
        prev = render_report(con, D.settings(), D.PREV, [])
        assert "payments-api#13" not in prev
        assert "2026-11-25" not in prev
        assert "Compared with the previous run date, <b>2026-11-23</b>." in prev
        first = render_report(con, D.settings(), D.FIRST, [])
        assert "first run date in the warehouse" in first and "newly failing since" not in first
    finally:
        con.close()


def test_no_results_is_not_an_all_clear():
    con = D.build(with_results=False)
    try:
        html = render_report(con, D.settings(), D.AS_OF, [])
    finally:
        con.close()
    assert "nothing here is an all-clear" in html
    assert "No Great Expectations validation results" in html


def test_excepted_failures_appear_only_when_an_exception_applies():
    """No register on the date and no excepted row: no section (a run without a register says nothing
    about exceptions); a row an exception covers: the section, and the row leaves the failing list."""
    con = D.build_three()
    try:
        without = render_report(con, D.settings(), D.AS_OF, [])
        con.execute("UPDATE control_results SET exception = 'EX-<1>' WHERE control_id = 'CC8.1-10' "
                    "AND status = 'fail' AND CAST(as_of AS DATE) = '2026-11-25'")
        with_exc = render_report(con, D.settings(), D.AS_OF, [])
    finally:
        con.close()
    assert 'id="excepted"' not in without and "Excepted failures" not in without
    excepted = _section(with_exc, '<h2 id="excepted">')
    assert "Excepted failures (1)" in excepted and "<code>EX-&lt;1&gt;</code>" in excepted
    assert f"acme/web-frontend@{D.PUSH}" in excepted and 'data-first-failed="2026-11-23"' in excepted
    failing = _section(with_exc, '<h2 id="failing">')
    assert 'id="fail-CC8.1-10"' not in failing
    assert "Failing changes (2)" in failing  # 3 change-control failures, 1 of them excepted
    assert '<a href="#excepted">' in with_exc


def test_register_entries_that_do_not_apply_are_named_in_the_report():
    """An expired or self-approved acceptance must not read as covered: the report names each entry
    that does not apply, with its reason, below the excepted failures."""
    con = D.build()
    try:
        D.set_exceptions(con)
        html = render_report(con, D.settings(), D.AS_OF, [])
    finally:
        con.close()
    assert '<a href="#excepted">' in html
    section = _section(html, '<h2 id="exceptions-invalid">')
    assert "Exception entries that do not apply (2)" in section
    assert 'data-exception="EX-2"' in section and "expired" in section
    assert 'data-exception="EX-3"' in section and "unknown_approver" in section
    assert 'data-exception="EX-1"' not in section
