"""The detail lines of the change controls as DuckDB SQL expressions (vectorised).

Each ``detail_NN`` function in the control modules is the reference; the expression here
returns the same text for a ``change_facts`` row and a status, column for column and branch for
branch (``tests/test_detail_sql.py`` compares both over every status of every control on the
demo, hostile and synthetic warehouses and on rows with each fact set to NULL).

Only what SQL reproduces exactly is taken from SQL.  ``raw_detail_sql`` gives the text before
the whitespace normalisation ``validation.detail_line`` applies (``" ".join(s.split())``); the
caller keeps it only when it is printable ASCII (then normalising means collapsing runs of
spaces and trimming) and otherwise, or when the expression is NULL, computes the row's detail
with the Python function.  Python's ``repr`` of a title is reproduced for printable ASCII only
(the same condition).  Config values reach the SQL as quoted literals (``sql_str``).
"""

from __future__ import annotations

from ccwatch.controls import sql_str
from ccwatch.controls.ticket import field_columns
from ccwatch.settings import Settings

#: the status column of the row the expression is evaluated for
ST = "_st"


def T(col: str, default: str = "") -> str:
    """``text(row[col], default)``."""
    return f"coalesce(CAST({col} AS VARCHAR), {sql_str(default)})"


def TS(col: str) -> str:
    """``ts(row[col])``."""
    return f"coalesce(strftime({col}, '%Y-%m-%dT%H:%MZ'), 'unknown time')"


def SHORT(col: str) -> str:
    return f"coalesce(left({col}, 7), 'unknown commit')"


def PRESENT(col: str) -> str:
    """``bool(text(row[col]))``."""
    return f"(coalesce(CAST({col} AS VARCHAR), '') <> '')"


def TRUE(col: str) -> str:
    """``bool(row[col])`` of a BOOLEAN column."""
    return f"coalesce({col}, false)"


def NUM(col: str) -> str:
    return f"coalesce({col}, 0)"


def REPR(col: str) -> str:
    """``repr(text(row[col]))`` for printable ASCII text (anything else is recomputed in Python)."""
    t = f"coalesce({col}, '')"
    esc = f"replace({t}, '\\', '\\\\')"
    return (f"(CASE WHEN contains({t}, '''') AND NOT contains({t}, '\"') THEN '\"' || {esc} || '\"' "
            f"ELSE '''' || replace({esc}, '''', '\\''') || '''' END)")


def NA() -> str:
    """``direct_push_na(row)``."""
    return (f"('direct push ' || {SHORT('sha')} || ' by ' || {T('merged_by', 'unknown pusher')} "
            "|| ': no pull request or ticket to evaluate (see CC8.1-10)')")


def _str(x) -> str:
    return sql_str(str(x))


def _case(*whens: tuple[str, str], default: str) -> str:
    return "(CASE " + " ".join(f"WHEN {c} THEN {v}" for c, v in whens) + f" ELSE {default} END)"


def _no_ticket() -> str:
    return f"(NOT {PRESENT('ticket_key')} OR NOT {TRUE('ticket_exists')})"


def _deployed() -> str:
    return (f"('production deployment ' || {T('deployment_id')} || ' to ' || {T('deploy_environment')} || ' at ' "
            f"|| {TS('deployed_at')} || ' by ' || {T('deployer', 'unknown')})")


def d01(s: Settings) -> str:
    key = T("ticket_key")
    other = (f"(CASE WHEN {PRESENT('title_other_keys')} THEN ' (it names ' || {T('title_other_keys')} "
             "|| ', outside the in-scope projects)' ELSE '' END)")
    return _case(
        (f"{ST} = 'not_applicable'", NA()),
        (f"NOT {PRESENT('ticket_key')}", f"({_str('no ticket key of ' + ', '.join(s.jira.project_keys) + ' in the PR title ')}"
                                         f" || {REPR('title')} || {other})"),
        (f"NOT {TRUE('ticket_exists')}", f"('title names ' || {key} || ' but ' || {key} "
                                         "|| ' does not exist in Jira (or is not visible to ccwatch)')"),
        default=f"('title names ' || {key} || ', found in Jira (status ' || {T('ticket_status', 'unknown')} || ')')")


def d02(s: Settings) -> str:
    names = field_columns(s)
    blank = "concat_ws(', ', " + ", ".join(f"CASE WHEN NOT {PRESENT(col)} THEN {_str(name)} END"
                                           for name, col in names) + ")"
    return _case(
        (f"{ST} = 'not_applicable'", NA()),
        (_no_ticket(), "'no linked Jira ticket, so no documented change request (see CC8.1-01)'"),
        (f"{blank} <> ''", f"({T('ticket_key')} || ' has blank ' || {blank} || ': fill them in the ticket')"),
        default=f"({T('ticket_key')} || {_str(' documents ' + ', '.join(n for n, _ in names))})")


def _plural(n: str, word: str) -> str:
    return f"(CAST({n} AS VARCHAR) || ' {word}' || CASE WHEN {n} = 1 THEN '' ELSE 's' END)"


def d03(s: Settings) -> str:
    author = T("author", "unknown author")
    n = NUM("review_count")
    reviews = f"(CASE WHEN {n} <> 0 THEN {_plural(n, 'review')} || ': ' || {T('review_evidence')} ELSE 'no reviews' END)"
    need = int(s.review.min_approvals)
    where = "''" if s.review.allow_stale_approval else f"(' on head ' || {SHORT('head_sha')})"
    got = NUM("independent_approvals")
    p1 = (f"CASE WHEN {got} < {need} THEN CAST({got} AS VARCHAR) || ' of {need} APPROVED review(s) by anyone but ' "
          f"|| {author} || ' before the merge' || {where} END")
    p2 = f"CASE WHEN {NUM('changes_requested_reviewers')} <> 0 THEN 'changes still requested by ' || {T('changes_requested_by')} END"
    return _case(
        (f"{ST} = 'not_applicable'", NA()),
        (f"{ST} = 'pass'", f"('approved by ' || {T('approval_evidence')})"),
        default=f"(concat_ws('; ', {p1}, {p2}) || ' (' || {reviews} || ')')")


def d04(s: Settings) -> str:
    author = T("author", "unknown author")
    key = T("ticket_key")
    bad, good = [f"CASE WHEN NOT {PRESENT('author')} THEN "
                 "'the PR''s author is unknown, so segregation of duties cannot be verified' END"], []
    if s.sod.allow_self_merge:
        good.append(f"'merged by ' || CASE WHEN {PRESENT('merged_by')} THEN merged_by ELSE 'unknown' END")
    else:
        merge_bad = _case((f"NOT {PRESENT('merged_by')}", "'who merged the PR is unknown'"),
                          (TRUE("merged_by_author"), f"{author} || ' merged their own PR'"), default="NULL")
        bad.append(merge_bad)
        good.append(f"CASE WHEN {merge_bad} IS NULL THEN 'merged by ' || merged_by END")
    bad.append(f"CASE WHEN {TRUE('deployed_by_author')} THEN {author} || ' created production deployment ' "
               f"|| {T('deployment_id')} END")
    good.append(_case((TRUE("deployed_by_author"), "NULL"),
                      (PRESENT("deployer"), "'deployed by ' || deployer || CASE WHEN "
                                            f"{TRUE('deployer_is_automation')} THEN ' (automation)' ELSE '' END"),
                      default="'not deployed yet'"))
    bad.append(f"CASE WHEN {TRUE('ticket_approved_by_author')} THEN {author} || ' gave ' || {key} "
               "|| '''s final approval' END")
    good.append(_case((TRUE("ticket_approved_by_author"), "NULL"),
                      (PRESENT("ticket_final_approver"), f"{key} || ' approved by ' || ticket_final_approver"),
                      default=f"CASE WHEN {key} <> '' THEN 'no ticket approval to judge' ELSE 'no linked ticket' END"))
    bads = f"concat_ws('; ', {', '.join(bad)})"
    return _case(
        (f"{ST} = 'not_applicable'", NA()),
        (f"{bads} <> ''", f"('author ' || {author} || ': ' || {bads})"),
        default=f"('author ' || {author} || ': ' || concat_ws(', ', {', '.join(good)}))")


def d05(s: Settings) -> str:
    head = SHORT("head_sha")
    problems = ("concat_ws('; ', "
                f"CASE WHEN {NUM('required_checks_missing')} <> 0 THEN 'required check(s) never ran before the merge: ' "
                f"|| {T('missing_check_names')} END, "
                f"CASE WHEN {NUM('checks_unfinished_at_merge')} <> 0 THEN {T('unfinished_check_evidence')} END, "
                f"CASE WHEN {NUM('checks_not_green')} <> 0 THEN 'failed: ' || {T('not_green_check_evidence')} END)")
    return _case(
        (f"{ST} = 'not_applicable'", NA()),
        (f"{ST} = 'pass'", f"('checks on head ' || {head} || ' before the merge: ' || {T('check_evidence')})"),
        (f"{NUM('checks_on_head')} = 0", f"('no check run or commit status on head ' || {head} || ' before the merge')"),
        default=f"('head ' || {head} || ': ' || {problems})")


def _na_or(other: str) -> str:
    return f"(CASE WHEN change_kind IS DISTINCT FROM 'pr' THEN {NA()} ELSE {other} END)"


def d06(s: Settings) -> str:
    key = T("ticket_key")
    seen = T("approval_transitions", "no approval transitions")
    approved = f"({key} || ' approved by ' || {T('approved_by')} || ' at ' || {TS('approved_at')})"
    return _case(
        (f"{ST} = 'not_applicable'", _na_or(f"{T('category', 'None')} || ' change: no final approval required "
                                            "before deployment'")),
        (_no_ticket(), "'no linked Jira ticket to approve (see CC8.1-01)'"),
        (f"{ST} = 'pending'", f"({key} || ' not approved yet (' || {seen} || '); undeployed, due by ' "
                              f"|| {TS('deploy_deadline')})"),
        (f"{ST} = 'pass'", f"(CASE WHEN deployed_at IS NOT NULL THEN {approved} || ', before ' || {_deployed()} "
                           f"ELSE {approved} || '; not deployed yet' END)"),
        ("approved_at IS NOT NULL", f"({approved} || ', not before ' || {_deployed()})"),
        default=f"({key} || ' has no approval by a change approver other than ' || {T('author')} || ' (' || {seen} || ')')")


def d07(s: Settings) -> str:
    return _case(
        (f"{ST} = 'not_applicable'", NA()),
        (f"{ST} = 'pending'", f"('not deployed to production yet; due by ' || {TS('deploy_deadline')})"),
        ("deployed_at IS NULL", f"({_str(f'no successful production deployment within {s.windows.deploy_grace_hours}h')}"
                                f" || ' of the merge at ' || {TS('merged_at')})"),
        (f"{ST} = 'fail'", f"({_deployed()} || ': ' || {T('deployer', 'unknown')} || ' is not in people.authorized_deployers')"),
        default=_deployed())


def d08(s: Settings) -> str:
    key = T("ticket_key")
    done = f"({key} || ' moved to ' || {T('pir_done_status')} || ' at ' || {TS('pir_done_at')})"
    days = int(s.windows.pir_days)
    return _case(
        (f"{ST} = 'not_applicable'", NA()),
        (_no_ticket(), "'no linked Jira ticket to close after deployment (see CC8.1-01)'"),
        (f"{ST} = 'pending' AND deployed_at IS NULL",
         f"({key} || ' awaits the production deployment before its post-implementation review')"),
        (f"{ST} = 'pending'", f"({key} || ' not Done yet; review due by ' || {TS('pir_deadline')} || ' (deployed ' "
                              f"|| {TS('deployed_at')} || ')')"),
        (f"{ST} = 'pass'", f"({done} || ', {days}-day review window after deployment at ' || {TS('deployed_at')})"),
        (f"{TRUE('closed_before_deploy')} AND pir_done_at IS NULL",
         f"({key} || ' closed (' || {T('closed_before_deploy_status')} || ') at ' || {TS('closed_before_deploy_at')} "
         f"|| ', before ' || CASE WHEN deployed_at IS NOT NULL THEN 'deployment at ' || {TS('deployed_at')} "
         "ELSE 'any production deployment' END)"),
        ("pir_done_at IS NOT NULL", f"({done} || ', after the deadline ' || {TS('pir_deadline')})"),
        default=f"({key} || ' not Done within {days} days of the deployment at ' || {TS('deployed_at')})")


def d09(s: Settings) -> str:
    why = f"('emergency (' || {T('emergency_reason')} || ')')"
    by_at = f"'approved by ' || {T('emergency_approved_by')} || ' at ' || {TS('emergency_approved_at')}"
    rw = _case(("retro_window = 'ok'", by_at),
               ("retro_window = 'open'", f"'awaiting emergency approval until ' || {TS('retro_deadline')}"),
               ("emergency_approved_at IS NOT NULL", f"{by_at} || ', after the deadline ' || {TS('retro_deadline')}"),
               default=f"'no approval by an emergency approver by ' || {TS('retro_deadline')}")
    written = f"'post-mortem written at ' || {TS('postmortem_filled_at')}"
    pw = _case(("postmortem_window = 'ok'", written),
               ("postmortem_window = 'open'",
                f"'post-mortem due ' || CASE WHEN deployed_at IS NOT NULL THEN 'by ' || {TS('postmortem_deadline')} "
                f"ELSE 'within {int(s.windows.postmortem_days)} days of the deployment' END"),
               ("postmortem_filled_at IS NOT NULL", f"{written} || ', after the deadline ' || {TS('postmortem_deadline')}"),
               default=f"'no post-mortem by ' || {TS('postmortem_deadline')}")
    return _case(
        (f"{ST} = 'not_applicable'", _na_or(f"{T('category', 'None')} || ' change, not an emergency'")),
        (_no_ticket(), f"({why} || ' without a linked Jira ticket: no retro approval or post-mortem possible')"),
        default=f"({T('ticket_key')} || ' ' || {why} || ': ' || {rw} || '; ' || {pw})")


def d10(s: Settings) -> str:
    branch = T("production_branch", "the production branch")
    return _case(
        ("change_kind = 'pr'", f"('PR #' || {T('number')} || ' merged into ' || {branch} || ' by ' "
                               f"|| {T('merged_by', 'unknown')} || ' at ' || {TS('merged_at')} || ' as ' || {SHORT('sha')})"),
        default=f"('commit ' || {SHORT('sha')} || ' pushed to ' || {branch} || ' by ' || {T('merged_by', 'unknown pusher')}"
                f" || ' at ' || {TS('merged_at')} || ' without a pull request: ' || {REPR('title')})")


def d13(s: Settings) -> str:
    staging = (f"('staging deployment ' || {T('staging_deployment_id')} || ' to ' || {T('staging_environment')} "
               f"|| ' at ' || {TS('staging_deployed_at')})")
    return _case(
        (f"{ST} = 'not_applicable'", _na_or(f"{T('repo', 'None')} || ' lists no staging_environments'")),
        (f"{ST} = 'pending'", f"('not deployed to production yet' || CASE WHEN staging_deployed_at IS NOT NULL "
                              f"THEN ' (' || {staging} || ')' ELSE '' END)"),
        ("staging_deployed_at IS NULL", f"('no successful staging deployment of the change; ' || {_deployed()})"),
        (f"{ST} = 'fail'", f"({staging} || ' is not before ' || {_deployed()})"),
        default=f"({staging} || ', before ' || {_deployed()})")


DETAIL_SQL = {"CC8.1-01": d01, "CC8.1-02": d02, "CC8.1-03": d03, "CC8.1-04": d04, "CC8.1-05": d05,
              "CC8.1-06": d06, "CC8.1-07": d07, "CC8.1-08": d08, "CC8.1-09": d09, "CC8.1-10": d10,
              "CC8.1-13": d13}


def raw_detail_sql(control_id: str, s: Settings) -> str | None:
    """The SQL expression of a change control's detail text before whitespace normalisation
    (columns of ``change_facts``, status in column ``_st``), or None when it has none."""
    fn = DETAIL_SQL.get(control_id)
    return fn(s) if fn else None


#: the detail of a row from its raw SQL text (column ``_raw``): NULL where only Python reproduces it
#: exactly (the raw text is NULL or not printable ASCII, so Python's str.split may see other
#: whitespace); runs of spaces are collapsed and the ends trimmed only where there are any
NORMALIZED = ("CASE WHEN _raw IS NULL OR strlen(_raw) <> length(_raw) OR regexp_matches(_raw, '[\\x00-\\x1f\\x7f]') "
              "THEN NULL WHEN contains(_raw, '  ') OR starts_with(_raw, ' ') OR ends_with(_raw, ' ') "
              "THEN trim(regexp_replace(_raw, '  +', ' ', 'g')) ELSE _raw END")
