"""CC8.1-01 Ticket traceability and CC8.1-02 Change request documented.

(r2) The ticket's facts are those of the as-of time (``warehouse/ticket_history.py``): its status in
CC8.1-01's detail, and each CC8.1-02 field at the production deployment (while undeployed: at the
as-of time; an emergency change: at the end of its ``windows.postmortem_days`` window).
"""

from __future__ import annotations

import re

import great_expectations.expectations as gxe

from ccwatch.common.text import clip
from ccwatch.controls.base import control, due
from ccwatch.controls.sqlagg import sorted_string_agg
from ccwatch.controls.sqltext import CASE, CLIP, LIT, NA, NO_TICKET, PRESENT, QUOTED, ST, TRUE, TS, T
from ccwatch.controls.text import direct_push_na, quoted, sql_str, text, ts
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


def _history_columns(s: Settings) -> list[tuple[str, str, str]]:
    """(field name as configured, fact column, ``_ticket_field_history`` column) of CC8.1-02's fields."""
    hist = ["business_justification", "risk_assessment", "testing_plan"] + [f"required:{n}" for n in s.jira.required_fields]
    return [(name, col, h) for (name, col), h in zip(field_columns(s), hist, strict=True)]


def change_fact_sql(s: Settings) -> str:
    """Facts: each field's value at the time CC8.1-02 judges it (NULL when blank or when there is no
    ticket), that time and why it is that time, and the fields written only after it.

    (r2) The fields must be non-blank at the production deployment (while undeployed: at the as-of
    time); an emergency change may complete them within ``windows.postmortem_days`` after the
    deployment (judged at the end of that window, or at the as-of time while it is open)."""
    cols = _history_columns(s)
    names = ", ".join(f"({sql_str(h)}, {sql_str(name)}, {i})" for i, (name, _c, h) in enumerate(cols))
    values = ", ".join(f"max(v_t) FILTER (WHERE col = {sql_str(h)}) AS {c}" for _n, c, h in cols)
    blank = " OR ".join(f"p.{c} IS NULL" for _n, c, _h in cols)
    return f"""
WITH x AS (
    SELECT b.change_id, b.change_kind, b.ticket_key, b.ticket_exists, prm.as_of,
        CASE WHEN b.category = 'emergency' THEN b.deployed_at + to_days(prm.postmortem_days) END AS fields_deadline,
        CASE WHEN b.category = 'emergency' AND b.deployed_at IS NULL THEN 'emergency_undeployed'
             WHEN b.category = 'emergency' AND prm.as_of <= b.deployed_at + to_days(prm.postmortem_days)
             THEN 'emergency_window_open'
             WHEN b.category = 'emergency' THEN 'emergency_window'
             WHEN b.deployed_at IS NULL THEN 'undeployed' ELSE 'deployment' END AS fields_basis,
        CASE WHEN b.category = 'emergency' AND b.deployed_at IS NOT NULL
             THEN least(b.deployed_at + to_days(prm.postmortem_days), prm.as_of)
             WHEN b.category = 'emergency' THEN prm.as_of
             ELSE coalesce(b.deployed_at, prm.as_of) END AS fields_at
    FROM _facts_base b CROSS JOIN _params prm
), names (col, name, ord) AS (VALUES {names}),
v AS (  -- each field's value at fields_at, and now (as_of) with when its current non-blank run began
    SELECT x.change_id, h.col,
        max(CASE WHEN NOT h.blank THEN trim(h.value) END)
            FILTER (WHERE h.seg_start <= x.fields_at AND x.fields_at < h.seg_end) AS v_t,
        bool_or(NOT h.blank) FILTER (WHERE h.seg_start <= x.as_of AND x.as_of < h.seg_end) AS now_filled,
        max(h.run_start) FILTER (WHERE h.seg_start <= x.as_of AND x.as_of < h.seg_end) AS filled_at
    FROM x JOIN _ticket_field_history h ON x.ticket_exists AND h.key = x.ticket_key
    WHERE h.col IN (SELECT col FROM names)
      AND ((h.seg_start <= x.fields_at AND x.fields_at < h.seg_end) OR (h.seg_start <= x.as_of AND x.as_of < h.seg_end))
    GROUP BY ALL
), p AS (
    SELECT v.change_id, {values},
        {sorted_string_agg("n.name || ' at ' || strftime(v.filled_at, '%Y-%m-%dT%H:%MZ')", "', '", ["n.ord"],
                           "v.v_t IS NULL AND v.now_filled")} AS fields_filled_later
    FROM v JOIN names n USING (col) GROUP BY v.change_id
)
SELECT x.change_id,
    CASE WHEN x.change_kind <> 'pr' THEN 'not_applicable' ELSE 'due' END AS cc01_scope,
    CASE WHEN x.change_kind <> 'pr' THEN 'not_applicable'
         WHEN x.ticket_exists AND x.fields_basis IN ('emergency_undeployed', 'emergency_window_open')
              AND ({blank}) THEN 'pending'
         ELSE 'due' END AS cc02_scope,
    {', '.join(f"p.{c}" for _n, c, _h in cols)}, x.fields_basis, x.fields_at, x.fields_deadline, p.fields_filled_later
FROM x LEFT JOIN p USING (change_id)"""


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


def _fields_when(row: dict, s: Settings) -> str:
    at = ts(row.get("fields_at"))
    basis = row.get("fields_basis")
    if basis == "deployment":
        return f"at the production deployment at {at}"
    if basis == "undeployed":
        return f"as of {at} (not deployed yet)"
    if basis == "emergency_window":
        return f"at the end of the {s.windows.postmortem_days}-day emergency window at {at}"
    return f"as of {at}"


def detail_02(row: dict, status: str, s: Settings) -> str:
    if status == "not_applicable":
        return direct_push_na(row)
    key = text(row.get("ticket_key"))
    if not key or not row.get("ticket_exists"):
        return "no linked Jira ticket, so no documented change request (see CC8.1-01)"
    names = field_columns(s)
    blank = ", ".join(name for name, col in names if text(row.get(col)) == "")
    when = _fields_when(row, s)
    if status == "pending":
        until = (f"until {ts(row.get('fields_deadline'))}" if text(row.get("fields_deadline"))
                 else f"within {s.windows.postmortem_days} days of the deployment")
        return f"{key} has blank {blank} {when}: an emergency change may complete them {until}"
    if blank:
        later = text(row.get("fields_filled_later"))
        if later:
            tail = (f"; filled in only later: {later} (documentation written after the fact does not document "
                    "the change)")
        elif row.get("fields_basis") == "undeployed":
            tail = ": fill them in the ticket before the deployment"
        else:
            tail = ""
        return f"{key} has blank {blank} {when}{tail}"
    return f"{key} documents {', '.join(n for n, _ in names)} {when}"


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
    days = int(s.windows.postmortem_days)
    blank = "concat_ws(', ', " + ", ".join(f"CASE WHEN NOT {PRESENT(col)} THEN {LIT(name)} END"
                                           for name, col in names) + ")"
    at = TS("fields_at")
    when = CASE(("fields_basis = 'deployment'", f"('at the production deployment at ' || {at})"),
                ("fields_basis = 'undeployed'", f"('as of ' || {at} || ' (not deployed yet)')"),
                ("fields_basis = 'emergency_window'", f"('at the end of the {days}-day emergency window at ' || {at})"),
                default=f"('as of ' || {at})")
    until = CASE((PRESENT("fields_deadline"), f"('until ' || {TS('fields_deadline')})"),
                 default=LIT(f"within {days} days of the deployment"))
    tail = CASE((PRESENT("fields_filled_later"), f"('; filled in only later: ' || {T('fields_filled_later')} || "
                                                 "' (documentation written after the fact does not document the change)')"),
                ("fields_basis = 'undeployed'", "': fill them in the ticket before the deployment'"),
                default="''")
    has_blank = f"({T('ticket_key')} || ' has blank ' || {blank} || ' ' || {when}"
    return CASE(
        (f"{ST} = 'not_applicable'", NA()),
        (NO_TICKET(), "'no linked Jira ticket, so no documented change request (see CC8.1-01)'"),
        (f"{ST} = 'pending'", f"{has_blank} || ': an emergency change may complete them ' || {until})"),
        (f"{blank} <> ''", f"{has_blank} || {tail})"),
        default=f"({T('ticket_key')} || {LIT(' documents ' + ', '.join(n for n, _ in names) + ' ')} || {when})")


CONTROLS = [
    control("CC8.1-01", __name__, "cc01_scope", expectations_01, detail_01, detail_sql_01),
    control("CC8.1-02", __name__, "cc02_scope", expectations_02, detail_02, detail_sql_02),
]
