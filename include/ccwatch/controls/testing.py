"""CC8.1-05 Tested before merge.

A check is identified by its name (check run) or context (commit status).  Only runs that
began before the merge count (check run ``started_at``, commit status ``created_at``); of
those, the latest per name decides (a failed run re-run green passes).  The checks judged
are the repository's ``required_checks``, or every name present when none are listed.

(r2) A name pinned to a GitHub App (classic protection ``required_status_checks.checks[].app_id``,
an active ruleset's ``required_status_checks[].integration_id``, both read from the stored
``branch_rules.parameters``; or a ``{name, app}`` entry of ``required_checks``) counts only a check
run of that app, or a commit status its bot account ``<slug>[bot]`` created: any pusher can post a
status of any context.  Other runs of the name are named in the detail ("not counted"), never
judged.  A pinned name is judged even when ``required_checks`` does not list it.  A run or status
without a result (null conclusion or state, a queued run with no times) is unfinished, never green.
"""

from __future__ import annotations

import great_expectations.expectations as gxe

from ccwatch.controls.base import control, due
from ccwatch.controls.sqlagg import sorted_string_agg
from ccwatch.controls.sqltext import CASE, NA, NUM, SHORT, ST, T
from ccwatch.controls.text import direct_push_na, num, short, text
from ccwatch.settings import Settings

_OK = "('success', 'neutral', 'skipped')"


_UNFINISHED_TEXT = """name || CASE
                   WHEN r.conclusion IS NULL AND r.kind = 'status' THEN ' has no state (no result is never green)'
                   WHEN r.conclusion IS NULL AND r.status = 'completed'
                       THEN ' completed without a conclusion (no result is never green)'
                   ELSE ' ' || coalesce(r.conclusion, r.status, 'no result')
                        || CASE WHEN r.completed_at > r.merged_at
                                THEN ' completed ' || strftime(r.completed_at, '%Y-%m-%dT%H:%MZ') || ' after the merge'
                                ELSE ' not finished at the merge' END END || by_text || note"""


def change_fact_sql(s: Settings) -> str:
    return f"""
WITH rule_pins AS (  -- (r2) classic checks[].app_id, active rulesets' integration_id (null, -1: any source)
    SELECT br.repo, json_extract_string(c.v, '$.context') AS name,
           TRY_CAST(json_extract_string(c.v, CASE WHEN br.source = 'classic' THEN '$.app_id'
                                                  ELSE '$.integration_id' END) AS BIGINT) AS app_id,
           CASE WHEN br.source = 'classic' THEN 'branch protection' ELSE 'ruleset ' || br.ruleset_id END AS src
    FROM branch_rules br JOIN _repos rp ON rp.repo = br.repo AND rp.production_branch = br.branch,
         unnest(json_extract(br.parameters, '$.required_status_checks[*]')) AS c(v)
    WHERE br.rule_type = 'required_status_checks' AND coalesce(br.enforcement, 'active') = 'active'
), apps AS (  -- an App id's slug, from the check runs it reported (its bot posts statuses as <slug>[bot])
    SELECT app_id, min(lower(app_slug)) AS slug FROM checks
    WHERE app_id IS NOT NULL AND app_slug IS NOT NULL GROUP BY app_id
), pins AS (
    SELECT repo, name, NULL::BIGINT AS app_id, lower(app) AS slug, 'app ' || lower(app) || ' (required_checks)' AS label
    FROM _check_pins
    UNION ALL
    SELECT r.repo, r.name, r.app_id, a.slug,
           'app ' || coalesce(a.slug, '(slug unknown)') || ' (id ' || r.app_id || ', ' || r.src || ')'
    FROM rule_pins r LEFT JOIN apps a USING (app_id) WHERE r.app_id > 0 AND r.name IS NOT NULL
), pin_names AS (
    SELECT repo, name, array_to_string(list_sort(list_distinct(list(label))), ', ') AS pin_text FROM pins GROUP BY ALL
), runs0 AS (  -- a run or status with no time at all (a queued run) is taken as begun at the merge
    SELECT b.change_id, b.repo, c.name, c.kind, c.check_id, c.status, lower(c.conclusion) AS conclusion,
           c.completed_at, coalesce(c.started_at, c.completed_at, b.merged_at) AS began, b.merged_at,
           c.app_id, lower(c.app_slug) AS app_slug, lower(c.creator_login) AS creator,
           CASE WHEN c.kind = 'status' THEN coalesce(c.creator_login, 'an unknown account')
                ELSE 'app ' || coalesce(c.app_slug, 'id ' || c.app_id, 'unknown') END AS reporter
    FROM _facts_base b JOIN checks c ON c.repo = b.repo AND c.sha = b.head_sha
    WHERE b.change_kind = 'pr' AND coalesce(c.started_at, c.completed_at, b.merged_at) <= b.merged_at
), runs AS (  -- counts: matches every pin of its name (a check run of the app; a status by the app's bot)
    SELECT r.*, NOT EXISTS (
        SELECT 1 FROM pins p WHERE p.repo = r.repo AND p.name = r.name AND NOT coalesce(
            CASE WHEN r.kind = 'check_run'
                 THEN (p.app_id IS NULL OR r.app_id = p.app_id) AND (p.slug IS NULL OR r.app_slug = p.slug)
                 ELSE r.creator = p.slug || '[bot]' END, false)) AS counts
    FROM runs0 r
), latest AS (
    SELECT change_id, name,
           arg_max(struct_pack(kind := kind, status := status, conclusion := conclusion, completed_at := completed_at,
                               merged_at := merged_at, reporter := reporter),
                   struct_pack(t := began, k := kind, i := check_id)) AS r,
           count(*) AS runs
    FROM runs WHERE counts GROUP BY change_id, name
), ignored AS (  -- runs of a pinned name from anyone else: named in the detail, never counted
    SELECT change_id, name,
           string_agg(CASE WHEN kind = 'status' THEN 'status ' ELSE 'check run ' END
                      || coalesce(conclusion, status, 'no result') || ' by ' || reporter, ', '
                      ORDER BY began, kind, check_id) AS ignored_text
    FROM runs WHERE NOT counts GROUP BY change_id, name
), judged AS (  -- the names that must pass: required_checks of the repo, else every name present; and
    -- (r2) every name a pin requires from an app
    SELECT b.change_id, n.name FROM _facts_base b JOIN _repos rp ON rp.repo = b.repo,
           unnest(rp.required_checks) AS n(name)
    WHERE b.change_kind = 'pr' AND len(rp.required_checks) > 0
    UNION
    SELECT r.change_id, r.name FROM runs r JOIN _repos rp ON rp.repo = r.repo WHERE len(rp.required_checks) = 0
    UNION
    SELECT b.change_id, pn.name FROM _facts_base b JOIN pin_names pn ON pn.repo = b.repo WHERE b.change_kind = 'pr'
), verdict AS (
    SELECT j.change_id, j.name, l.r, l.runs,
           l.r IS NULL AS is_missing,
           -- (r2) no result (null conclusion or state) is unfinished, never green
           l.r IS NOT NULL AND coalesce(l.r.conclusion IS NULL OR (CASE WHEN l.r.kind = 'status' THEN l.r.conclusion = 'pending'
                                     ELSE coalesce(l.r.status, '') <> 'completed' OR l.r.completed_at IS NULL
                                          OR l.r.completed_at > l.r.merged_at END), true) AS unfinished,
           CASE WHEN pn.pin_text IS NOT NULL THEN ' by ' || l.r.reporter ELSE '' END AS by_text,
           coalesce(' (required from ' || pn.pin_text || coalesce('; not counted: ' || ig.ignored_text, '') || ')', '')
               AS note
    FROM judged j LEFT JOIN latest l USING (change_id, name) JOIN _facts_base b USING (change_id)
         LEFT JOIN pin_names pn ON pn.repo = b.repo AND pn.name = j.name LEFT JOIN ignored ig USING (change_id, name)
), agg AS (
    SELECT change_id,
        count(*) FILTER (WHERE is_missing) AS required_checks_missing,
        {sorted_string_agg("name || note", "', '", ["name"], "is_missing")} AS missing_check_names,
        count(*) FILTER (WHERE unfinished) AS checks_unfinished_at_merge,
        {sorted_string_agg(_UNFINISHED_TEXT, "', '", ["name"], "unfinished")} AS unfinished_check_evidence,
        count(*) FILTER (WHERE NOT is_missing AND NOT unfinished AND coalesce(r.conclusion, '') NOT IN {_OK})
            AS checks_not_green,
        {sorted_string_agg("name || ' ' || coalesce(r.conclusion, 'no conclusion') || by_text || note", "', '",
                           ["name"], f"NOT is_missing AND NOT unfinished AND coalesce(r.conclusion, '') NOT IN {_OK}")}
            AS not_green_check_evidence,
        {sorted_string_agg("name || ' ' || coalesce(r.conclusion, 'no result') || by_text "
                           "|| CASE WHEN runs > 1 THEN ' (latest of ' || runs || ' runs)' ELSE '' END || note", "', '",
                           ["name"], "NOT is_missing")} AS check_evidence
    FROM verdict GROUP BY change_id
), present AS (SELECT change_id, count(DISTINCT name) AS n FROM runs GROUP BY change_id)
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
