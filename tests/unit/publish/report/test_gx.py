"""The Great Expectations section: suites per control, rules in words, offenders linked and escaped."""

from __future__ import annotations

import copy
import re

from ccwatch.publish.report.gx import render_gx, rule_text, unexpected_count

from tests.helpers import outputs_world as D

SUITE = {
    "success": False, "suite_name": "CC8.1-01", "statistics": {"evaluated_expectations": 1,
                                                             "successful_expectations": 0},
    "ccwatch": {"control_id": "CC8.1-01", "name": "Ticket traceability", "scope": "change"},
    "results": [{
        "success": False,
        "expectation_config": {
            "type": "expect_column_values_to_not_be_null", "description": "the PR title carries a ticket key",
            "kwargs": {"batch_id": "ccwatch-change_facts CC8.1-01", "column": "ticket_key",
                       "row_condition": {"column": {"name": "cc01_scope"}, "operator": "==", "parameter": "due",
                                         "type": "comparison"}}},
        "result": {"element_count": 67, "unexpected_count": 12, "partial_unexpected_list": [None] * 11,
                   "partial_unexpected_index_list": [{"change_id": f"acme/r#{i}<x>", "ticket_key": None}
                                                     for i in range(11)],
                   "unexpected_index_column_names": ["change_id"]},
        "exception_info": {"raised_exception": False}}],
}


def test_rule_in_words_with_description_and_technical_form():
    html = render_gx([SUITE])
    assert '<h3 id="gx-CC8.1-01">CC8.1-01 Ticket traceability <span class="st fail">not met</span></h3>' in html
    assert "<b>the PR title carries a ticket key</b><br>For the changes CC8.1-01 is due for: ticket key is filled in." \
        in html
    assert "<details><summary>technical form</summary><code>the PR title carries a ticket key (column values to " \
           "not be null: column=ticket_key, row_condition=" in html
    assert re.search(r'<td class="num">67</td><td class="num">12</td>', html)


def test_offenders_are_named_linked_escaped_and_cut():
    html = render_gx([SUITE], lambda cid: f"changes/{cid}/")
    offenders = re.findall(r"<li>(.*?)</li>", html)
    assert len(offenders) == 10
    assert offenders[0] == '<a class="ev" href="changes/acme/r#0&lt;x&gt;/">acme/r#0&lt;x&gt;</a>: ticket key: (empty)'
    assert "and 2 more (control_results.csv lists every row)" in html
    assert "<x>" not in html and "null, null" not in html and ": null" not in html


def test_no_results_and_exceptions():
    assert "No Great Expectations validation results" in render_gx([])
    broken = copy.deepcopy(SUITE)
    broken["results"][0]["exception_info"] = {"raised_exception": True, "exception_message": "<boom>"}
    assert "the rule could not be evaluated: &lt;boom&gt;" in render_gx([broken])


def test_the_captured_gx_result_renders_without_raw_json():
    html = render_gx(D.gx_results())
    assert "For every change: status is one of: pass, not_applicable." in html
    assert "&lt;img src=x onerror=alert(1)&gt; (1 row(s))" not in html  # counts win over the bare sample
    assert "status: fail (1 row(s))" in html and "<img" not in html


def test_rule_text_and_unexpected_rows_count():
    cfg = {"type": "unexpected_rows_expectation",
           "kwargs": {"unexpected_rows_query": "SELECT * FROM {batch} WHERE x", "batch_id": "b"},
           "description": "CC8.1-05 checks passed"}
    assert rule_text(cfg).startswith("CC8.1-05 checks passed (unexpected rows expectation: unexpected_rows_query=")
    assert unexpected_count({"result": {"observed_value": 4}}, cfg) == 4
    assert unexpected_count({"result": {}}, {"type": "expect_x", "kwargs": {}}) is None
