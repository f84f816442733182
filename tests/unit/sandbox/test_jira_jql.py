"""The Jira double's JQL subset, alone: what it selects, in which order, and what Jira refuses."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from ccwatch.sandbox.jira_jql import Jql, JqlError

NOW = datetime(2026, 11, 25, tzinfo=UTC)
ISSUES = {
    "PAY-2": {"created": "2026-11-01T10:00:00Z", "updated": "2026-11-20T10:00:00Z"},
    "PAY-10": {"created": "2026-08-01T10:00:00Z", "updated": "2026-08-02T10:00:00Z"},
    "OPS-1": {"project": "OPS", "created": "2026-11-24T10:00:00Z"},
}


def jql() -> Jql:
    return Jql(dict(ISSUES), ["OPS", "PAY"], NOW)


def test_selects_by_project_and_relative_date_in_key_order():
    keys, warnings = jql().run("project in (PAY, OPS) AND updated >= -30d ORDER BY key ASC", strict=True)
    assert keys == ["OPS-1", "PAY-2"] and warnings == []  # PAY-10 updated 115 days before now
    assert jql().run("project = PAY", strict=True)[0] == ["PAY-10", "PAY-2"]  # key desc, numeric


def test_orders_by_updated_falling_back_to_created():
    assert jql().run("project in (PAY, OPS) ORDER BY updated DESC", strict=True)[0] == ["OPS-1", "PAY-2", "PAY-10"]


def test_unknown_key_is_an_error_when_strict_and_a_warning_when_not():
    with pytest.raises(JqlError) as err:
        jql().run("key in (PAY-2, PAY-99)", strict=True)
    assert err.value.messages == ("An issue with key 'PAY-99' does not exist for field 'key'.",)
    assert jql().run("key in (PAY-2, PAY-99)", strict=False) == (
        ["PAY-2"], ["An issue with key 'PAY-99' does not exist for field 'key'."])


@pytest.mark.parametrize("query, text", [
    ("project = NOPE", "The value 'NOPE' does not exist for the field 'project'."),
    ("updated >= yesterday", "Date value 'yesterday' for field 'updated' is invalid."),
    ("summary ~ fix", "the sandbox does not support the clause 'summary ~ fix'"),
    ("project = PAY ORDER BY priority", "the sandbox does not support ORDER BY 'priority'"),
])
def test_refused_queries_name_what_jira_names(query, text):
    with pytest.raises(JqlError) as err:
        jql().run(query, strict=True)
    assert text in err.value.messages[0]


def test_issues_added_to_the_served_dict_are_seen():
    issues = dict(ISSUES)
    engine = Jql(issues, ["OPS", "PAY"], NOW)
    assert engine.run("project = OPS", strict=True)[0] == ["OPS-1"]
    issues["OPS-2"] = {"project": "OPS", "created": "2026-11-24T11:00:00Z"}
    assert engine.run("project = OPS", strict=True)[0] == ["OPS-2", "OPS-1"]
