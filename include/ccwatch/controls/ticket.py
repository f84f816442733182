"""CC8.1-01 Ticket traceability and CC8.1-02 Change request documented."""

from __future__ import annotations

import re

import great_expectations.expectations as gxe

from ccwatch.common.text import clip
from ccwatch.controls.base import control, due
from ccwatch.controls.sqltext import CASE, CLIP, LIT, NA, NO_TICKET, PRESENT, QUOTED, ST, TRUE, T
from ccwatch.controls.text import direct_push_na, quoted, sql_str, text
from ccwatch.settings import Settings


def field_columns(s: Settings) -> list[tuple[str, str]]:
    """(field name as configured, fact column) of every field CC8.1-02 requires, in order."""
    f = s.jira.fields
    cols = [
        (f.business_justification, "ticket_business_justification"),
        (f.risk_assessment, "ticket_risk_assessment"),
        (f.testing_plan, "ticket_testing_plan"),
    ]
    seen = {c for _, c in cols}
    for name in s.jira.required_fields:
        col = "ticket_field_" + (re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_") or "x")
        while col in seen:
            col += "_"
        seen.add(col)
        cols.append((name, col))
    return cols


def change_fact_sql(s: Settings) -> str:
    """Facts: the ticket's documented fields, NULL when blank or when there is no ticket."""
    fields = [
        "nullif(trim(t.business_justification), '') AS ticket_business_justification",
        "nullif(trim(t.risk_assessment), '') AS ticket_risk_assessment",
        "nullif(trim(t.testing_plan), '') AS ticket_testing_plan",
    ]
    for name, col in field_columns(s)[3:]:
        path = sql_str('$."' + name.replace('"', '\\"') + '"')
        fields.append(f"nullif(trim(json_extract_string(t.required_fields, {path})), '') AS {col}")
    scope = "CASE WHEN b.change_kind = 'pr' THEN 'due' ELSE 'not_applicable' END"
    return f"""
SELECT b.change_id, {scope} AS cc01_scope, {scope} AS cc02_scope, {', '.join(fields)}
FROM _facts_base b LEFT JOIN tickets t ON b.ticket_exists AND t.key = b.ticket_key"""


def expectations_01(s: Settings) -> list:
    c = due("cc01_scope")
    return [
        gxe.ExpectColumnValuesToNotBeNull(
            column="ticket_key", row_condition=c,
            description=f"the PR title carries a ticket key of an in-scope project ({', '.join(s.jira.project_keys)})"),
        gxe.ExpectColumnValuesToBeInSet(
            column="ticket_exists", value_set=[True], row_condition=c,
            description="the ticket named in the title exists in Jira"),
    ]


def expectations_02(s: Settings) -> list:
    c = due("cc02_scope")
    return [
        gxe.ExpectColumnValuesToNotBeNull(column=col, row_condition=c, description=f"ticket field '{name}' is not blank")
        for name, col in field_columns(s)
    ]


def detail_01(row: dict, status: str, s: Settings) -> str:
    if status == "not_applicable":
        return direct_push_na(row)
    key = text(row.get("ticket_key"))
    if not key:
        other = text(row.get("title_other_keys"))
        extra = f" (it names {clip(other)}, outside the in-scope projects)" if other else ""
        return (f"no ticket key of {', '.join(s.jira.project_keys)} in the PR title "
                f"{quoted(row.get('title'))}{extra}")
    if not row.get("ticket_exists"):
        return f"title names {key} but {key} does not exist in Jira (or is not visible to ccwatch)"
    return f"title names {key}, found in Jira (status {text(row.get('ticket_status'), 'unknown')})"


def detail_02(row: dict, status: str, s: Settings) -> str:
    if status == "not_applicable":
        return direct_push_na(row)
    key = text(row.get("ticket_key"))
    if not key or not row.get("ticket_exists"):
        return "no linked Jira ticket, so no documented change request (see CC8.1-01)"
    names = field_columns(s)
    blank = [name for name, col in names if text(row.get(col)) == ""]
    if blank:
        return f"{key} has blank {', '.join(blank)}: fill them in the ticket"
    return f"{key} documents {', '.join(n for n, _ in names)}"


# --- detail lines as SQL (the same text, vectorised; sqltext.py) ---------------------------


def detail_sql_01(s: Settings) -> str:
    key = T("ticket_key")
    other = (f"(CASE WHEN {PRESENT('title_other_keys')} THEN ' (it names ' || {CLIP(T('title_other_keys'))} "
             "|| ', outside the in-scope projects)' ELSE '' END)")
    return CASE(
        (f"{ST} = 'not_applicable'", NA()),
        (f"NOT {PRESENT('ticket_key')}", f"({LIT('no ticket key of ' + ', '.join(s.jira.project_keys) + ' in the PR title ')}"
                                         f" || {QUOTED('title')} || {other})"),
        (f"NOT {TRUE('ticket_exists')}", f"('title names ' || {key} || ' but ' || {key} "
                                         "|| ' does not exist in Jira (or is not visible to ccwatch)')"),
        default=f"('title names ' || {key} || ', found in Jira (status ' || {T('ticket_status', 'unknown')} || ')')")


def detail_sql_02(s: Settings) -> str:
    names = field_columns(s)
    blank = "concat_ws(', ', " + ", ".join(f"CASE WHEN NOT {PRESENT(col)} THEN {LIT(name)} END"
                                           for name, col in names) + ")"
    return CASE(
        (f"{ST} = 'not_applicable'", NA()),
        (NO_TICKET(), "'no linked Jira ticket, so no documented change request (see CC8.1-01)'"),
        (f"{blank} <> ''", f"({T('ticket_key')} || ' has blank ' || {blank} || ': fill them in the ticket')"),
        default=f"({T('ticket_key')} || {LIT(' documents ' + ', '.join(n for n, _ in names))})")


CONTROLS = [
    control("CC8.1-01", __name__, "cc01_scope", expectations_01, detail_01, detail_sql_01),
    control("CC8.1-02", __name__, "cc02_scope", expectations_02, detail_02, detail_sql_02),
]
