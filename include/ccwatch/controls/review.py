"""CC8.1-03 Independent peer review and CC8.1-04 Segregation of duties."""

from __future__ import annotations

import great_expectations.expectations as gxe

from ccwatch.controls.base import control, due
from ccwatch.controls.sqlagg import sorted_string_agg
from ccwatch.controls.sqltext import CASE, NA, NUM, PLURAL, PRESENT, SHORT, ST, TRUE, TS, T
from ccwatch.controls.text import direct_push_na, missing, num, plural, short, text, ts
from ccwatch.settings import Settings

_PR_SCOPE = "CASE WHEN b.change_kind = 'pr' THEN 'due' ELSE 'not_applicable' END"
#: the merge queue's bot: GitHub's REST ``merged_by`` of a PR a merge queue merged (API-NOTES.md)
QUEUE_BOT = "github-merge-queue[bot]"


_REVIEW_TEXT = """login || ' ' || state
                   || CASE WHEN is_bot THEN ' (bot)' ELSE '' END
                   || CASE WHEN rk = ak THEN ' (author)' ELSE '' END
                   || CASE WHEN state = 'APPROVED' AND NOT on_head
                           THEN ' on ' || coalesce(left(commit_id, 7), 'unknown commit') || ' (not the final head)'
                           ELSE '' END
                   || CASE WHEN NOT before_merge THEN ' after the merge' ELSE '' END"""


def change_fact_sql(s: Settings) -> str:
    """Review facts (reviews submitted up to as_of; PENDING drafts ignored; bots never count)."""
    counted = ("state = 'APPROVED' AND before_merge AND NOT is_bot AND ak IS NOT NULL AND rk <> ak "
               "AND (allow_stale OR on_head)")
    return f"""
WITH pks AS MATERIALIZED (  -- each change's person keys, once, on narrow rows (pkey is a lookup
    -- subquery: called on the wide joined rows below it made DuckDB carry them through each lookup)
    SELECT b.change_id, pkey(b.author) AS ak, pkey(b.deployer) AS dk FROM _facts_base b
), rv AS (
    SELECT b.change_id, r.review_id, r.reviewer_login AS login, r.state, r.commit_id, r.submitted_at,
           pkey(r.reviewer_login) AS rk, pks.ak, coalesce(r.reviewer_type, '') = 'Bot' AS is_bot,
           r.submitted_at <= b.merged_at AS before_merge, coalesce(r.commit_id = b.head_sha, false) AS on_head,
           prm.allow_stale_approval AS allow_stale,
           struct_pack(t := r.submitted_at, i := r.review_id) AS ord
    FROM _facts_base b JOIN reviews r ON r.repo = b.repo AND r.pr_number = b.number
    JOIN pks ON pks.change_id = b.change_id, _params prm
    WHERE b.change_kind = 'pr' AND r.submitted_at IS NOT NULL AND r.submitted_at <= prm.as_of
      AND r.state <> 'PENDING'
), agg AS (
    SELECT change_id,
        count(DISTINCT rk) FILTER (WHERE {counted}) AS independent_approvals,
        {sorted_string_agg("login || ' at ' || strftime(submitted_at, '%Y-%m-%dT%H:%MZ') || ' on head ' "
                           "|| left(commit_id, 7)", "', '", ["ord"], counted)} AS approval_evidence,
        count(*) FILTER (WHERE state = 'APPROVED' AND before_merge AND NOT is_bot AND ak IS NOT NULL
                         AND rk <> ak AND NOT on_head) AS stale_approvals,
        {sorted_string_agg(_REVIEW_TEXT, "', '", ["ord"])} AS review_evidence,
        count(*) AS review_count
    FROM rv GROUP BY change_id
), verdict AS (  -- each human reviewer's latest verdict before the merge (COMMENTED does not change it)
    SELECT change_id, rk, arg_max(login, ord) AS login, arg_max(state, ord) AS last_state
    FROM rv WHERE before_merge AND NOT is_bot AND state IN ('APPROVED', 'CHANGES_REQUESTED', 'DISMISSED')
    GROUP BY change_id, rk
), cr AS (
    SELECT change_id, count(*) AS n, string_agg(login, ', ' ORDER BY login) AS names
    FROM verdict WHERE last_state = 'CHANGES_REQUESTED' GROUP BY change_id
), fa AS (  -- the ticket's final approval: its latest move into an approval status, by whoever made it
    -- (arg_max_null: an unknown Jira user, stored as NULL, is the final approver, not skipped)
    SELECT b.change_id,
           arg_max_null(tt.author, struct_pack(t := tt.at, l := length(tt.history_id), h := tt.history_id))
               AS final_approver,
           max(tt.at) AS final_approval_at
    FROM _facts_base b JOIN ticket_transitions tt ON b.ticket_exists AND tt.key = b.ticket_key, _params prm
    WHERE tt.at <= prm.as_of AND list_contains(prm.approval_statuses, lower(tt.to_status)) GROUP BY ALL
), fak AS (
    SELECT change_id, final_approver, final_approval_at, pkey(final_approver) AS fk FROM fa
), mq AS (  -- (r2) the last AddedToMergeQueueEvent at or before the merge (arg_max_null: an event that
    -- names nobody is the last enqueue, not skipped)
    SELECT b.change_id, arg_max_null(q.enqueuer_login, struct_pack(t := q.at, i := q.event_id)) AS queued_by,
           max(q.at) AS queued_at
    FROM _facts_base b JOIN merge_queue_events q ON q.repo = b.repo AND q.pr_number = b.number
    WHERE b.change_kind = 'pr' AND q.at <= b.merged_at GROUP BY b.change_id
), qlog AS (  -- (r2) the activity log shows a merge_queue_merge that brought the merge commit onto the branch
    SELECT DISTINCT b.change_id
    FROM _facts_base b JOIN _repos rp ON rp.repo = b.repo
    JOIN branch_activity a ON a.repo = b.repo AND a.branch = rp.production_branch
                          AND a.activity_type = 'merge_queue_merge'
    LEFT JOIN commits ca ON ca.repo = a.repo AND ca.branch = a.branch AND ca.sha = a.after_sha
    LEFT JOIN commits cb ON cb.repo = a.repo AND cb.branch = a.branch AND cb.sha = a.before_sha, _params prm
    WHERE b.change_kind = 'pr' AND a.at <= prm.as_of
      AND (a.after_sha = b.sha OR (ca.position >= b.change_pos AND cb.position < b.change_pos))
), mg AS (  -- (r2) the merger: whoever queued the PR when a merge queue merged it, else merged_by
    SELECT b.change_id,
           coalesce(lower(b.merged_by) = '{QUEUE_BOT}', false) OR qlog.change_id IS NOT NULL AS merged_by_queue,
           qlog.change_id IS NOT NULL AS queue_in_log, mq.queued_at
    FROM _facts_base b LEFT JOIN qlog USING (change_id) LEFT JOIN mq USING (change_id)
    WHERE b.change_kind = 'pr'
), who AS (
    SELECT b.change_id, CASE WHEN mg.merged_by_queue THEN mq.queued_by ELSE b.merged_by END AS merger
    FROM _facts_base b LEFT JOIN mg USING (change_id) LEFT JOIN mq USING (change_id)
), whok AS (
    SELECT change_id, merger, pkey(merger) AS mk FROM who
)
SELECT b.change_id,
       {_PR_SCOPE} AS cc03_scope,
       coalesce(agg.independent_approvals, 0) AS independent_approvals,
       agg.approval_evidence, coalesce(agg.stale_approvals, 0) AS stale_approvals,
       agg.review_evidence, coalesce(agg.review_count, 0) AS review_count,
       coalesce(cr.n, 0) AS changes_requested_reviewers, cr.names AS changes_requested_by,
       {_PR_SCOPE} AS cc04_scope,
       coalesce(mg.merged_by_queue, false) AS merged_by_queue, coalesce(mg.queue_in_log, false) AS queue_in_log,
       mg.queued_at,
       whok.merger,
       coalesce(whok.mk = pks.ak, false) AS merged_by_author,
       coalesce(b.deployed_at IS NOT NULL AND pks.dk = pks.ak
                AND pks.dk NOT IN (SELECT pk FROM _role WHERE role = 'deploy_automation'), false)
           AS deployed_by_author,
       coalesce(pks.dk IN (SELECT pk FROM _role WHERE role = 'deploy_automation'), false)
           AS deployer_is_automation,
       -- (r2) a deployment whose creator GitHub does not name (deleted account, ghost) cannot be
       -- shown to be by someone other than the author: the clause fails
       (b.deployed_at IS NOT NULL AND pks.dk IS NULL) AS deployer_unknown,
       fak.final_approver AS ticket_final_approver, fak.final_approval_at AS ticket_final_approval_at,
       coalesce(fak.fk = pks.ak, false) AS ticket_approved_by_author,
       -- (r2) a final approval by a Jira user the source does not name (deleted or anonymous)
       fak.final_approval_at IS NOT NULL AND fak.fk IS NULL AS ticket_final_approver_unknown
FROM _facts_base b JOIN pks USING (change_id) LEFT JOIN agg USING (change_id) LEFT JOIN cr USING (change_id)
LEFT JOIN fak USING (change_id) LEFT JOIN mg USING (change_id) JOIN whok USING (change_id)"""


def expectations_03(s: Settings) -> list:
    c = due("cc03_scope")
    head = "" if s.review.allow_stale_approval else " on the PR's final head commit"
    return [
        gxe.ExpectColumnValuesToBeBetween(
            column="independent_approvals", min_value=s.review.min_approvals, row_condition=c,
            description=f"at least {s.review.min_approvals} APPROVED review(s) by people other than the author, "
                        f"submitted before the merge{head} (bots never count)"),
        gxe.ExpectColumnValuesToBeBetween(
            column="changes_requested_reviewers", max_value=0, row_condition=c,
            description="no reviewer's latest review before the merge is CHANGES_REQUESTED"),
    ]


def expectations_04(s: Settings) -> list:
    c = due("cc04_scope")
    # without a known author (GitHub sent no user) no clause can be judged: fail closed
    out = [gxe.ExpectColumnValuesToNotBeNull(column="author", row_condition=c,
                                             description="the PR's author is known")]
    if not s.sod.allow_self_merge:
        out += [
            gxe.ExpectColumnValuesToNotBeNull(column="merger", row_condition=c,
                                              description="the person who merged the PR is known (merge queue: "
                                                          "the person who added it to the queue)"),
            gxe.ExpectColumnValuesToBeInSet(column="merged_by_author", value_set=[False], row_condition=c,
                                            description="the author did not merge the PR (nor add it to the merge "
                                                        "queue that merged it)"),
        ]
    out += [
        gxe.ExpectColumnValuesToBeInSet(
            column="deployer_unknown", value_set=[False], row_condition=c,
            description="the creator of the production deployment is known"),
        gxe.ExpectColumnValuesToBeInSet(
            column="deployed_by_author", value_set=[False], row_condition=c,
            description="the author did not create the production deployment (deploy automation is not a person)"),
        gxe.ExpectColumnValuesToBeInSet(
            column="ticket_approved_by_author", value_set=[False], row_condition=c,
            description="the author did not give the ticket's final approval"),
        gxe.ExpectColumnValuesToBeInSet(
            column="ticket_final_approver_unknown", value_set=[False], row_condition=c,
            description="the ticket's final approver is a known person (a deleted or anonymous Jira user "
                        "cannot be shown to be someone other than the author)"),
    ]
    return out


def detail_03(row: dict, status: str, s: Settings) -> str:
    if status == "not_applicable":
        return direct_push_na(row)
    author = text(row.get("author"), "unknown author")
    n = num(row.get("review_count"))
    reviews = f"{plural(n, 'review')}: {text(row.get('review_evidence'))}" if n else "no reviews"
    if status == "pass":
        return f"approved by {text(row.get('approval_evidence'))}"
    problems = []
    need = s.review.min_approvals
    got = num(row.get("independent_approvals"))
    if got < need:
        where = "" if s.review.allow_stale_approval else f" on head {short(row.get('head_sha'))}"
        problems.append(f"{got} of {need} APPROVED review(s) by anyone but {author} before the merge{where}")
    if num(row.get("changes_requested_reviewers")):
        problems.append(f"changes still requested by {text(row.get('changes_requested_by'))}")
    return f"{'; '.join(problems)} ({reviews})"


def detail_04(row: dict, status: str, s: Settings) -> str:
    if status == "not_applicable":
        return direct_push_na(row)
    author = text(row.get("author"), "unknown author")
    key = text(row.get("ticket_key"))
    bad, good = [], []
    if not text(row.get("author")):
        bad.append("the PR's author is unknown, so segregation of duties cannot be verified")
    merged_by, merger = text(row.get("merged_by")), text(row.get("merger"))
    queue = bool(row.get("merged_by_queue"))
    via = f"merged by {merged_by or 'unknown'}{'; the activity log shows merge_queue_merge' if row.get('queue_in_log') else ''}"
    if not merger and not s.sod.allow_self_merge:
        if not queue:
            bad.append("who merged the PR is unknown")
        else:
            why = ("no AddedToMergeQueueEvent before the merge" if missing(row.get("queued_at")) else
                   f"the last AddedToMergeQueueEvent before the merge, at {ts(row.get('queued_at'))}, names no user")
            bad.append(f"the merge queue ({merged_by or 'unknown'}) merged the PR and who added it to the queue is "
                       f"unknown ({why}), so it cannot be shown to be someone other than the author")
    elif row.get("merged_by_author") and not s.sod.allow_self_merge:
        bad.append(f"{author} merged their own PR"
                   + (f": added it to the merge queue at {ts(row.get('queued_at'))} ({via})" if queue else ""))
    elif queue and merger:
        good.append(f"merged by {merger} through the merge queue (added at {ts(row.get('queued_at'))}; {via})")
    else:
        good.append(f"merged by {merger or 'unknown'}")
    deployer = text(row.get("deployer"))
    if row.get("deployer_unknown"):
        bad.append(f"the production deployment's creator is unknown (deployment {text(row.get('deployment_id'))}: "
                   "a deleted or unnamed account), so it cannot be shown to be someone other than the author")
    elif row.get("deployed_by_author"):
        bad.append(f"{author} created production deployment {text(row.get('deployment_id'))}")
    elif deployer:
        good.append(f"deployed by {deployer}{' (automation)' if row.get('deployer_is_automation') else ''}")
    else:
        good.append("not deployed yet")
    approver = text(row.get("ticket_final_approver"))
    if row.get("ticket_approved_by_author"):
        bad.append(f"{author} gave {key}'s final approval")
    elif row.get("ticket_final_approver_unknown"):
        bad.append(f"{key}'s final approval at {ts(row.get('ticket_final_approval_at'))} was given by an unknown "
                   f"Jira user (deleted or anonymous), who cannot be shown to be someone other than {author}")
    elif approver:
        good.append(f"{key} approved by {approver}")
    else:
        good.append("no ticket approval to judge" if key else "no linked ticket")
    if bad:
        return f"author {author}: {'; '.join(bad)}"
    return f"author {author}: {', '.join(good)}"


# --- detail lines as SQL (the same text, vectorised; sqltext.py) ---------------------------


def detail_sql_03(s: Settings) -> str:
    author = T("author", "unknown author")
    n = NUM("review_count")
    reviews = f"(CASE WHEN {n} <> 0 THEN {PLURAL(n, 'review')} || ': ' || {T('review_evidence')} ELSE 'no reviews' END)"
    need = int(s.review.min_approvals)
    where = "''" if s.review.allow_stale_approval else f"(' on head ' || {SHORT('head_sha')})"
    got = NUM("independent_approvals")
    p1 = (f"CASE WHEN {got} < {need} THEN CAST({got} AS VARCHAR) || ' of {need} APPROVED review(s) by anyone but ' "
          f"|| {author} || ' before the merge' || {where} END")
    p2 = f"CASE WHEN {NUM('changes_requested_reviewers')} <> 0 THEN 'changes still requested by ' || {T('changes_requested_by')} END"
    return CASE(
        (f"{ST} = 'not_applicable'", NA()),
        (f"{ST} = 'pass'", f"('approved by ' || {T('approval_evidence')})"),
        default=f"(concat_ws('; ', {p1}, {p2}) || ' (' || {reviews} || ')')")


def detail_sql_04(s: Settings) -> str:
    author = T("author", "unknown author")
    key = T("ticket_key")
    bad, good = [f"CASE WHEN NOT {PRESENT('author')} THEN "
                 "'the PR''s author is unknown, so segregation of duties cannot be verified' END"], []
    queue = TRUE("merged_by_queue")

    def or_unknown(col: str) -> str:  # Python's ``text(x) or 'unknown'``: blank is unknown too
        return f"CASE WHEN {PRESENT(col)} THEN CAST({col} AS VARCHAR) ELSE 'unknown' END"

    via = (f"('merged by ' || {or_unknown('merged_by')} || CASE WHEN {TRUE('queue_in_log')} "
           "THEN '; the activity log shows merge_queue_merge' ELSE '' END)")
    queued_good = CASE((f"{queue} AND {PRESENT('merger')}",
                        f"'merged by ' || merger || ' through the merge queue (added at ' || {TS('queued_at')} "
                        f"|| '; ' || {via} || ')'"),
                       default=f"'merged by ' || {or_unknown('merger')}")
    if s.sod.allow_self_merge:
        good.append(queued_good)
    else:
        why = CASE(("queued_at IS NULL", "'no AddedToMergeQueueEvent before the merge'"),
                   default=f"'the last AddedToMergeQueueEvent before the merge, at ' || {TS('queued_at')} "
                           "|| ', names no user'")
        merge_bad = CASE((f"NOT {PRESENT('merger')} AND NOT {queue}", "'who merged the PR is unknown'"),
                          (f"NOT {PRESENT('merger')}",
                           f"'the merge queue (' || {or_unknown('merged_by')} || ') merged the PR and who added it "
                           f"to the queue is unknown (' || {why} || '), so it cannot be shown to be someone other "
                           "than the author'"),
                          (TRUE("merged_by_author"),
                           f"{author} || ' merged their own PR' || CASE WHEN {queue} THEN ': added it to the merge "
                           f"queue at ' || {TS('queued_at')} || ' (' || {via} || ')' ELSE '' END"), default="NULL")
        bad.append(merge_bad)
        good.append(f"CASE WHEN {merge_bad} IS NULL THEN {queued_good} END")
    bad.append(CASE((TRUE("deployer_unknown"), f"'the production deployment''s creator is unknown (deployment ' "
                                               f"|| {T('deployment_id')} || ': a deleted or unnamed account), so it "
                                               "cannot be shown to be someone other than the author'"),
                    (TRUE("deployed_by_author"), f"{author} || ' created production deployment ' "
                                                 f"|| {T('deployment_id')}"), default="NULL"))
    good.append(CASE((TRUE("deployed_by_author"), "NULL"),
                      (PRESENT("deployer"), "'deployed by ' || deployer || CASE WHEN "
                                            f"{TRUE('deployer_is_automation')} THEN ' (automation)' ELSE '' END"),
                      default="'not deployed yet'"))
    bad.append(CASE((TRUE("ticket_approved_by_author"), f"{author} || ' gave ' || {key} || '''s final approval'"),
                    (TRUE("ticket_final_approver_unknown"),
                     f"{key} || '''s final approval at ' || {TS('ticket_final_approval_at')} || ' was given by an "
                     "unknown Jira user (deleted or anonymous), who cannot be shown to be someone other than ' "
                     f"|| {author}"), default="NULL"))
    good.append(CASE((TRUE("ticket_approved_by_author"), "NULL"), (TRUE("ticket_final_approver_unknown"), "NULL"),
                      (PRESENT("ticket_final_approver"), f"{key} || ' approved by ' || ticket_final_approver"),
                      default=f"CASE WHEN {key} <> '' THEN 'no ticket approval to judge' ELSE 'no linked ticket' END"))
    bads = f"concat_ws('; ', {', '.join(bad)})"
    return CASE(
        (f"{ST} = 'not_applicable'", NA()),
        (f"{bads} <> ''", f"('author ' || {author} || ': ' || {bads})"),
        default=f"('author ' || {author} || ': ' || concat_ws(', ', {', '.join(good)}))")


CONTROLS = [
    control("CC8.1-03", __name__, "cc03_scope", expectations_03, detail_03, detail_sql_03),
    control("CC8.1-04", __name__, "cc04_scope", expectations_04, detail_04, detail_sql_04),
]
