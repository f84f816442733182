"""CC8.1-10 Authorised change path: every change reached the production branch through a merged PR.

(r2) A direct push's detail says where its push time came from (``push_time_source`` of the shared
facts): the repository activity log, the first ccwatch run that saw the commit, or, on a first
run without an activity log, the committer date.
"""

from __future__ import annotations

import great_expectations.expectations as gxe

from ccwatch.controls.base import control, due
from ccwatch.controls.sqltext import CASE, PRESENT, QUOTED, SHORT, TS, T
from ccwatch.controls.text import quoted, short, text, ts
from ccwatch.settings import Settings


def change_fact_sql(s: Settings) -> str:
    return """
SELECT b.change_id, r.production_branch, 'due' AS cc10_scope
FROM _facts_base b JOIN _repos r ON r.repo = b.repo"""


def expectations_10(s: Settings) -> list:
    return [
        gxe.ExpectColumnValuesToBeInSet(
            column="change_kind", value_set=["pr"], row_condition=due("cc10_scope"),
            description="the change reached the production branch through a merged pull request"),
    ]


def detail_10(row: dict, status: str, s: Settings) -> str:
    branch = text(row.get("production_branch"), "the production branch")
    if row.get("change_kind") == "pr":
        return (f"PR #{text(row.get('number'))} merged into {branch} by {text(row.get('merged_by'), 'unknown')} "
                f"at {ts(row.get('merged_at'))} as {short(row.get('sha'))}")
    source = text(row.get("push_time_source"))
    return (f"commit {short(row.get('sha'))} pushed to {branch} by {text(row.get('merged_by'), 'unknown pusher')} "
            f"at {ts(row.get('merged_at'))}{f' ({source})' if source else ''} without a pull request: "
            f"{quoted(row.get('title'))}")


# --- detail lines as SQL (the same text, vectorised; sqltext.py) ---------------------------


def detail_sql_10(s: Settings) -> str:
    branch = T("production_branch", "the production branch")
    return CASE(
        ("change_kind = 'pr'", f"('PR #' || {T('number')} || ' merged into ' || {branch} || ' by ' "
                               f"|| {T('merged_by', 'unknown')} || ' at ' || {TS('merged_at')} || ' as ' || {SHORT('sha')})"),
        default=f"('commit ' || {SHORT('sha')} || ' pushed to ' || {branch} || ' by ' || {T('merged_by', 'unknown pusher')}"
                f" || ' at ' || {TS('merged_at')} || CASE WHEN {PRESENT('push_time_source')} THEN ' (' || "
                f"{T('push_time_source')} || ')' ELSE '' END || ' without a pull request: ' || {QUOTED('title')})")


CONTROLS = [
    control("CC8.1-10", __name__, "cc10_scope", expectations_10, detail_10, detail_sql_10),
]
