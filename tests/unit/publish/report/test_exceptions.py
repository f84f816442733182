"""The report's table of exceptions-register entries that do not apply on the date
(publish/report/exceptions.py; the report-views branch wires it into the page)."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest
from ccwatch.publish import results
from ccwatch.publish.report.exceptions import render_invalid_exceptions

from tests.helpers import outputs_world as D


@pytest.fixture(scope="module")
def entries():
    con = D.build()
    try:
        D.set_exceptions(con)
        return results.exception_entries(con, D.AS_OF)
    finally:
        con.close()


def test_lists_the_invalid_entries_with_reason_and_detail(entries):
    html = render_invalid_exceptions(entries)
    assert html.startswith('<h2 id="exceptions-invalid">Exception entries that do not apply (2)</h2>')
    rows = re.findall(r'<tr data-exception="([^"]+)">(.*?)</tr>', html, re.S)
    assert [i for i, _ in rows] == ["EX-2", "EX-3"], "in register order, the valid EX-1 left out"
    ex2 = dict(rows)["EX-2"]
    cells = re.findall(r"<td[^>]*>(.*?)</td>", ex2, re.S)
    assert cells[:7] == ["<code>EX-2</code>", "acme/payments-api#13", "CC8.1-01", "alice@acme.example",
                         "2026-10-01T00:00:00Z", "2026-11-01T00:00:00Z", '<span class="st fail">expired</span>']
    assert "expired at 2026-11-01T00:00Z, at or before the as-of time 2026-11-25T00:00Z" in cells[7]
    assert "acme/payments-api</td>" in dict(rows)["EX-3"] and "unknown_approver" in dict(rows)["EX-3"]
    assert "still a failure" in html and "exceptions.csv" in html


def test_hostile_text_is_escaped(entries):
    hostile = [dict(entries[1], detail="<script>alert(1)</script>", approved_by="<b>x</b>&",
                    id="EX-2\"><img src=x>")]
    html = render_invalid_exceptions(hostile)
    assert "<script" not in html and "<img" not in html and "<b>x" not in html
    assert "&lt;script&gt;" in html and "&lt;b&gt;x&lt;/b&gt;&amp;" in html

    class Tags(HTMLParser):
        def __init__(self):
            super().__init__()
            self.tags = set()

        def handle_starttag(self, tag, attrs):
            self.tags.add(tag)

    p = Tags()
    p.feed(html)
    assert p.tags <= {"h2", "p", "table", "thead", "tbody", "tr", "th", "td", "code", "span", "b"}


def test_every_entry_valid_says_so_and_no_register_says_nothing(entries):
    valid = [e for e in entries if e["status"] == "valid"]
    html = render_invalid_exceptions(valid)
    assert "Exception entries that do not apply (0)" in html
    assert "All 1 entry of the exceptions register applies on this date (1 covers a failing row)." in html
    assert "<table" not in html
    assert render_invalid_exceptions([]) == ""
