"""CC8.1-05 Tested before merge.

A check is identified by its name (check run) or context (commit status).  Only runs that
began before the merge count (check run ``started_at``, commit status ``created_at``); of
those, the latest per name decides (a failed run re-run green passes).  The checks judged
are the repository's ``required_checks``, or every name present when none are listed.
"""

from __future__ import annotations

import great_expectations.expectations as gxe

from ccwatch.controls.base import control, due
from ccwatch.controls.sqltext import CASE, NA, NUM, SHORT, ST, T
from ccwatch.controls.text import direct_push_na, num, short, text
from ccwatch.settings import Settings

_OK = "('success', 'neutral', 'skipped')"


def change_fact_sql(s: Settings) -> str:
    return f"""
WITH runs AS (
    SELECT b.change_id, c.name, c.kind, c.check_id, c.status, lower(c.conclusion) AS conclusion,
           c.completed_at, coalesce(c.started_at, c.completed_at) AS began, b.merged_at
    FROM _facts_base b JOIN checks c ON c.repo = b.repo AND c.sha = b.head_sha
    WHERE b.change_kind = 'pr' AND coalesce(c.started_at, c.completed_at) <= b.merged_at
), latest AS (
    SELECT change_id, name,
           arg_max(struct_pack(kind := kind, status := status, conclusion := conclusion, completed_at := completed_at,
                               merged_at := merged_at),
                   struct_pack(t := began, k := kind, i := check_id)) AS r,
           count(*) AS runs
    FROM runs GROUP BY change_id, name
), judged AS (  -- the names that must pass: required_checks of the repo, else every name present
    SELECT b.change_id, n.name FROM _facts_base b JOIN _repos rp ON rp.repo = b.repo,
           unnest(rp.required_checks) AS n(name)
    WHERE b.change_kind = 'pr' AND len(rp.required_checks) > 0
    UNION ALL
    SELECT l.change_id, l.name FROM latest l JOIN _facts_base b USING (change_id) JOIN _repos rp ON rp.repo = b.repo
    WHERE len(rp.required_checks) = 0
), verdict AS (
    SELECT j.change_id, j.name, l.r, l.runs,
           l.r IS NULL AS is_missing,
           l.r IS NOT NULL AND (CASE WHEN l.r.kind = 'status' THEN l.r.conclusion = 'pending'
                                     ELSE coalesce(l.r.status, '') <> 'completed' OR l.r.completed_at IS NULL
                                          OR l.r.completed_at > l.r.merged_at END) AS unfinished
    FROM judged j LEFT JOIN latest l USING (change_id, name)
), agg AS (
    SELECT change_id,
        count(*) FILTER (WHERE is_missing) AS required_checks_missing,
        string_agg(name, ', ' ORDER BY name) FILTER (WHERE is_missing) AS missing_check_names,
        count(*) FILTER (WHERE unfinished) AS checks_unfinished_at_merge,
        string_agg(name || ' ' || coalesce(r.conclusion, r.status, 'no result')
                   || CASE WHEN r.completed_at > r.merged_at
                           THEN ' completed ' || strftime(r.completed_at, '%Y-%m-%dT%H:%MZ') || ' after the merge'
                           ELSE ' not finished at the merge' END, ', ' ORDER BY name)
            FILTER (WHERE unfinished) AS unfinished_check_evidence,
        count(*) FILTER (WHERE NOT is_missing AND NOT unfinished AND coalesce(r.conclusion, '') NOT IN {_OK})
            AS checks_not_green,
        string_agg(name || ' ' || coalesce(r.conclusion, 'no conclusion'), ', ' ORDER BY name)
            FILTER (WHERE NOT is_missing AND NOT unfinished AND coalesce(r.conclusion, '') NOT IN {_OK})
            AS not_green_check_evidence,
        string_agg(name || ' ' || coalesce(r.conclusion, 'no result')
                   || CASE WHEN runs > 1 THEN ' (latest of ' || runs || ' runs)' ELSE '' END, ', ' ORDER BY name)
            FILTER (WHERE NOT is_missing) AS check_evidence
    FROM verdict GROUP BY change_id
), present AS (SELECT change_id, count(*) AS n FROM latest GROUP BY change_id)
SELECT b.change_id,
       CASE WHEN b.change_kind = 'pr' THEN 'due' ELSE 'not_applicable' END AS cc05_scope,
       coalesce(present.n, 0) AS checks_on_head,
       coalesce(agg.required_checks_missing, 0) AS required_checks_missing, agg.missing_check_names,
       coalesce(agg.checks_unfinished_at_merge, 0) AS checks_unfinished_at_merge, agg.unfinished_check_evidence,
       coalesce(agg.checks_not_green, 0) AS checks_not_green, agg.not_green_check_evidence, agg.check_evidence
FROM _facts_base b LEFT JOIN agg USING (change_id) LEFT JOIN present USING (change_id)"""


def expectations_05(s: Settings) -> list:
    c = due("cc05_scope")
    return [
        gxe.ExpectColumnValuesToBeBetween(
            column="checks_on_head", min_value=1, row_condition=c,
            description="the PR head commit has at least one check run or commit status before the merge"),
        gxe.ExpectColumnValuesToBeBetween(
            column="required_checks_missing", max_value=0, row_condition=c,
            description="every required check (required_checks, or every check present) ran on the head commit"),
        gxe.ExpectColumnValuesToBeBetween(
            column="checks_unfinished_at_merge", max_value=0, row_condition=c,
            description="the latest run of each required check completed before the merge"),
        gxe.ExpectColumnValuesToBeBetween(
            column="checks_not_green", max_value=0, row_condition=c,
            description="the latest run of each required check concluded success, neutral or skipped"),
    ]


def detail_05(row: dict, status: str, s: Settings) -> str:
    if status == "not_applicable":
        return direct_push_na(row)
    head = short(row.get("head_sha"))
    if status == "pass":
        return f"checks on head {head} before the merge: {text(row.get('check_evidence'))}"
    if num(row.get("checks_on_head")) == 0:
        return f"no check run or commit status on head {head} before the merge"
    problems = []
    if num(row.get("required_checks_missing")):
        problems.append(f"required check(s) never ran before the merge: {text(row.get('missing_check_names'))}")
    if num(row.get("checks_unfinished_at_merge")):
        problems.append(text(row.get("unfinished_check_evidence")))
    if num(row.get("checks_not_green")):
        problems.append(f"failed: {text(row.get('not_green_check_evidence'))}")
    return f"head {head}: {'; '.join(problems)}"


# --- detail lines as SQL (the same text, vectorised; sqltext.py) ---------------------------


def detail_sql_05(s: Settings) -> str:
    head = SHORT("head_sha")
    problems = ("concat_ws('; ', "
                f"CASE WHEN {NUM('required_checks_missing')} <> 0 THEN 'required check(s) never ran before the merge: ' "
                f"|| {T('missing_check_names')} END, "
                f"CASE WHEN {NUM('checks_unfinished_at_merge')} <> 0 THEN {T('unfinished_check_evidence')} END, "
                f"CASE WHEN {NUM('checks_not_green')} <> 0 THEN 'failed: ' || {T('not_green_check_evidence')} END)")
    return CASE(
        (f"{ST} = 'not_applicable'", NA()),
        (f"{ST} = 'pass'", f"('checks on head ' || {head} || ' before the merge: ' || {T('check_evidence')})"),
        (f"{NUM('checks_on_head')} = 0", f"('no check run or commit status on head ' || {head} || ' before the merge')"),
        default=f"('head ' || {head} || ': ' || {problems})")


CONTROLS = [
    control("CC8.1-05", __name__, "cc05_scope", expectations_05, detail_05, detail_sql_05),
]
