"""CC8.1-09 Emergency change procedure (retro approval and post-mortem windows).

A change is an emergency (``category = 'emergency'``, decided in ``warehouse/facts.py``) when
its ticket's label / issue type / priority as of the as-of time is listed in ``jira.emergency`` or
the PR carries the label ``emergency``.  (r2) The post-mortem is read from the field's history
(``warehouse/ticket_history.py``): its value at the end of the window, and when that value was
written.
"""

from __future__ import annotations

import great_expectations.expectations as gxe

from ccwatch.controls.base import control, due
from ccwatch.controls.sqltext import CASE, NA_OR, NO_TICKET, ST, TS, T
from ccwatch.controls.text import direct_push_na, text, ts
from ccwatch.settings import Settings


def change_fact_sql(s: Settings) -> str:
    return """
WITH em AS (
    SELECT b.change_id, min(tt.at) AS emergency_approved_at,
           arg_min(tt.author, struct_pack(t := tt.at, h := tt.history_id)) AS emergency_approved_by
    FROM _facts_base b JOIN ticket_transitions tt ON b.ticket_exists AND tt.key = b.ticket_key, _params prm
    WHERE b.category = 'emergency' AND tt.at <= prm.as_of AND list_contains(prm.approval_statuses, lower(tt.to_status))
      AND pkey(tt.author) IN (SELECT pk FROM _role WHERE role = 'emergency_approver')
    GROUP BY b.change_id
), pm AS (  -- (r2) the post-mortem as of the end of its window (the as-of time while it is open), and now
    SELECT b.change_id,
        max(struct_pack(t := h.run_start, who := h.run_by, init := h.run_initial))
            FILTER (WHERE h.seg_start <= d.t AND d.t < h.seg_end AND NOT h.blank) AS run_then,
        max(struct_pack(t := h.run_start, who := h.run_by, init := h.run_initial))
            FILTER (WHERE h.seg_start <= prm.as_of AND prm.as_of < h.seg_end AND NOT h.blank) AS run_now
    FROM _facts_base b CROSS JOIN _params prm
    CROSS JOIN LATERAL (SELECT least(b.deployed_at + to_days(prm.postmortem_days), prm.as_of) AS t) d
    JOIN _ticket_field_history h ON b.ticket_exists AND h.key = b.ticket_key AND h.col = 'postmortem'
    WHERE b.category = 'emergency'
    GROUP BY b.change_id
), f AS (
    SELECT b.change_id, b.change_kind, b.category, b.ticket_exists, b.deployed_at, prm.as_of,
        em.emergency_approved_at, em.emergency_approved_by,
        b.merged_at + to_days(prm.emergency_retro_days) AS retro_deadline,
        -- when the post-mortem in force at the end of the window was written (one set when the ticket
        -- was created has no changelog item: the creation time counts), else when the one in force
        -- now was (after the deadline)
        coalesce(pm.run_then, pm.run_now) AS run, t.reporter,
        b.deployed_at + to_days(prm.postmortem_days) AS postmortem_deadline
    FROM _facts_base b CROSS JOIN _params prm LEFT JOIN em USING (change_id) LEFT JOIN pm USING (change_id)
    LEFT JOIN tickets t ON b.ticket_exists AND t.key = b.ticket_key
), g AS (
    SELECT f.* EXCLUDE (run, reporter), f.run.t AS postmortem_filled_at,
        CASE WHEN f.run.init THEN f.reporter ELSE f.run.who END AS postmortem_filled_by
    FROM f
), w AS (
    SELECT *,
        CASE WHEN emergency_approved_at <= retro_deadline THEN 'ok'
             WHEN emergency_approved_at IS NULL AND as_of <= retro_deadline THEN 'open' ELSE 'late' END AS retro_window,
        CASE WHEN deployed_at IS NULL THEN 'open'
             WHEN postmortem_filled_at <= postmortem_deadline THEN 'ok'
             WHEN postmortem_filled_at IS NULL AND as_of <= postmortem_deadline THEN 'open' ELSE 'late' END
            AS postmortem_window
    FROM g
)
SELECT change_id, emergency_approved_at, emergency_approved_by, retro_deadline, postmortem_filled_at,
    postmortem_filled_by, postmortem_deadline, retro_window, postmortem_window,
    CASE WHEN change_kind <> 'pr' OR category <> 'emergency' THEN 'not_applicable'
         WHEN NOT ticket_exists THEN 'due'
         WHEN 'late' IN (retro_window, postmortem_window) THEN 'due'
         WHEN 'open' IN (retro_window, postmortem_window) THEN 'pending'
         ELSE 'due' END AS cc09_scope
FROM w"""


def expectations_09(s: Settings) -> list:
    c = due("cc09_scope")
    w = s.windows
    return [
        gxe.ExpectColumnValuesToNotBeNull(
            column="emergency_approved_at", row_condition=c,
            description="the ticket moved into an approval status by a member of people.emergency_approvers"),
        gxe.ExpectColumnPairValuesAToBeGreaterThanB(
            column_A="retro_deadline", column_B="emergency_approved_at", or_equal=True,
            ignore_row_if="either_value_is_missing", row_condition=c,
            description=f"within {w.emergency_retro_days} days after the merge"),
        gxe.ExpectColumnValuesToNotBeNull(
            column="postmortem_filled_at", row_condition=c,
            description="the post-mortem field became non-blank (changelog time)"),
        gxe.ExpectColumnPairValuesAToBeGreaterThanB(
            column_A="postmortem_deadline", column_B="postmortem_filled_at", or_equal=True,
            ignore_row_if="either_value_is_missing", row_condition=c,
            description=f"within {w.postmortem_days} days after the production deployment"),
    ]


def detail_09(row: dict, status: str, s: Settings) -> str:
    if status == "not_applicable":
        if row.get("change_kind") != "pr":
            return direct_push_na(row)
        return f"{row.get('category')} change, not an emergency"
    why = f"emergency ({text(row.get('emergency_reason'))})"
    key = text(row.get("ticket_key"))
    if not key or not row.get("ticket_exists"):
        return f"{why} without a linked Jira ticket: no retro approval or post-mortem possible"
    parts = []
    rw, pw = row.get("retro_window"), row.get("postmortem_window")
    if rw == "ok":
        parts.append(f"approved by {text(row.get('emergency_approved_by'))} at {ts(row.get('emergency_approved_at'))}")
    elif rw == "open":
        parts.append(f"awaiting emergency approval until {ts(row.get('retro_deadline'))}")
    elif text(row.get("emergency_approved_at")):
        parts.append(f"approved by {text(row.get('emergency_approved_by'))} at {ts(row.get('emergency_approved_at'))}, "
                     f"after the deadline {ts(row.get('retro_deadline'))}")
    else:
        parts.append(f"no approval by an emergency approver by {ts(row.get('retro_deadline'))}")
    if pw == "ok":
        parts.append(f"post-mortem written at {ts(row.get('postmortem_filled_at'))}")
    elif pw == "open":
        parts.append("post-mortem due " + (f"by {ts(row.get('postmortem_deadline'))}" if text(row.get("deployed_at"))
                                           else f"within {s.windows.postmortem_days} days of the deployment"))
    elif text(row.get("postmortem_filled_at")):
        parts.append(f"post-mortem written at {ts(row.get('postmortem_filled_at'))}, after the deadline "
                     f"{ts(row.get('postmortem_deadline'))}")
    else:
        parts.append(f"no post-mortem by {ts(row.get('postmortem_deadline'))}")
    return f"{key} {why}: {'; '.join(parts)}"


# --- detail lines as SQL (the same text, vectorised; sqltext.py) ---------------------------


def detail_sql_09(s: Settings) -> str:
    why = f"('emergency (' || {T('emergency_reason')} || ')')"
    by_at = f"'approved by ' || {T('emergency_approved_by')} || ' at ' || {TS('emergency_approved_at')}"
    rw = CASE(("retro_window = 'ok'", by_at),
               ("retro_window = 'open'", f"'awaiting emergency approval until ' || {TS('retro_deadline')}"),
               ("emergency_approved_at IS NOT NULL", f"{by_at} || ', after the deadline ' || {TS('retro_deadline')}"),
               default=f"'no approval by an emergency approver by ' || {TS('retro_deadline')}")
    written = f"'post-mortem written at ' || {TS('postmortem_filled_at')}"
    pw = CASE(("postmortem_window = 'ok'", written),
               ("postmortem_window = 'open'",
                f"'post-mortem due ' || CASE WHEN deployed_at IS NOT NULL THEN 'by ' || {TS('postmortem_deadline')} "
                f"ELSE 'within {int(s.windows.postmortem_days)} days of the deployment' END"),
               ("postmortem_filled_at IS NOT NULL", f"{written} || ', after the deadline ' || {TS('postmortem_deadline')}"),
               default=f"'no post-mortem by ' || {TS('postmortem_deadline')}")
    return CASE(
        (f"{ST} = 'not_applicable'", NA_OR(f"{T('category', 'None')} || ' change, not an emergency'")),
        (NO_TICKET(), f"({why} || ' without a linked Jira ticket: no retro approval or post-mortem possible')"),
        default=f"({T('ticket_key')} || ' ' || {why} || ': ' || {rw} || '; ' || {pw})")


CONTROLS = [
    control("CC8.1-09", __name__, "cc09_scope", expectations_09, detail_09, detail_sql_09),
]
