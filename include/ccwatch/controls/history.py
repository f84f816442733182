"""(r2) CC8.1-14 Production history not rewritten and CC8.1-15 Production deployments ship reviewed
branch code (one row per repository).

CC8.1-14 reads the production branch's activity log (``branch_activity``; whether the last load
could read it: ``branch_activity_reads``) and the chains earlier loads saw (``commit_sightings``):
within the window ``[as_of - lookback_days, as_of]`` no ``force_push`` and no ``branch_deletion``
of the branch, and no commit that an earlier run saw on its first-parent chain and that is no
longer on it (its latest sighting inside the window and before the as-of time: a commit a run
at or after the as-of time still saw had not disappeared by then).  An unreadable (or never read)
log fails the row: a rewrite cannot be ruled out.

CC8.1-15 reads the deployments of the production environments whose first ``success`` status is
in the window (``_dep_all`` of the shared facts, the one definition of "reached success"): each
deployed a commit of the production branch's first-parent chain, or the head commit of a pull
request into the production branch that has an APPROVED review on that head commit, submitted
before the deployment was created, by someone who is not a bot and not the pull request's author
(deploy-before-merge).  Only pull requests merged in the window are fetched: a deployment of the
head of a pull request still open at the as-of time fails (fail closed), and its detail says so.
"""

from __future__ import annotations

import great_expectations.expectations as gxe

from ccwatch.controls.base import control, due
from ccwatch.controls.text import num, plural, short, text, ts
from ccwatch.settings import Settings

LISTED = 20  # events / commits / deployments named one by one in a detail line, then "and N more"


def repo_fact_sql(s: Settings) -> str:
    return """
WITH prm AS (SELECT * FROM _params),
reads AS (
    SELECT r.repo, rd.status_code, rd.detail
    FROM _repos r LEFT JOIN branch_activity_reads rd ON rd.repo = r.repo AND rd.branch = r.production_branch
), log AS (
    SELECT a.repo,
        count(*) AS activity_entries,
        count(*) FILTER (WHERE a.activity_type IN ('force_push', 'branch_deletion')) AS history_rewrites,
        list(struct_pack(kind := a.activity_type, who := a.actor_login, at := a."at", before := a.before_sha,
                         after := a.after_sha) ORDER BY a."at", a.activity_id)
            FILTER (WHERE a.activity_type IN ('force_push', 'branch_deletion')) AS rewrite_events
    FROM branch_activity a JOIN _repos r ON r.repo = a.repo AND a.branch = r.production_branch, prm
    WHERE a."at" >= prm.window_start AND a."at" <= prm.as_of
    GROUP BY a.repo
), gone AS (
    SELECT s.repo, count(*) AS disappeared_commits,
        list(struct_pack(sha := s.sha, first_seen := s.first_seen_as_of, last_seen := s.last_seen_as_of)
             ORDER BY s.last_seen_as_of, s.sha) AS disappeared
    FROM commit_sightings s JOIN _repos r ON r.repo = s.repo AND s.branch = r.production_branch, prm
    WHERE s.last_seen_as_of >= prm.window_start AND s.last_seen_as_of < prm.as_of
      AND NOT EXISTS (SELECT 1 FROM commits c WHERE c.repo = s.repo AND c.branch = s.branch AND c.sha = s.sha)
    GROUP BY s.repo
), deps AS (
    SELECT d.*, r.production_branch FROM _dep_all d JOIN _repos r ON r.repo = d.repo, prm
    WHERE d.env_kind = 'production' AND d.success_at >= prm.window_start AND d.success_at <= prm.as_of
), heads AS (
    SELECT d.repo, d.deployment_id, min(p.number) AS pr_number,
        min(p.number) FILTER (WHERE rv.review_id IS NOT NULL) AS approved_pr
    FROM deps d JOIN pull_requests p ON p.repo = d.repo AND p.base_branch = d.production_branch
         AND p.head_sha = d.sha
    LEFT JOIN reviews rv ON rv.repo = p.repo AND rv.pr_number = p.number AND rv.state = 'APPROVED'
         AND rv.commit_id = d.sha AND rv.submitted_at < d.created_at
         AND rv.reviewer_login IS NOT NULL AND coalesce(rv.reviewer_type, '') <> 'Bot'
         AND pkey(p.author_login) IS NOT NULL AND pkey(rv.reviewer_login) <> pkey(p.author_login)
    GROUP BY ALL
), judged AS (
    SELECT d.*, h.pr_number, h.approved_pr,
        CASE WHEN d.pos IS NOT NULL THEN 'branch' WHEN h.approved_pr IS NOT NULL THEN 'approved_head'
             WHEN h.pr_number IS NOT NULL THEN 'unreviewed_head' ELSE 'off_branch' END AS verdict
    FROM deps d LEFT JOIN heads h USING (repo, deployment_id)
), dep AS (
    SELECT repo, count(*) AS production_deployments_in_window,
        count(*) FILTER (WHERE verdict = 'approved_head') AS deployed_approved_heads,
        count(*) FILTER (WHERE verdict IN ('unreviewed_head', 'off_branch')) AS unreviewed_production_deployments,
        list(struct_pack(id := deployment_id, sha := sha, creator := creator_login, at := success_at,
                         created := created_at, env := environment, verdict := verdict, pr := pr_number)
             ORDER BY success_at, deployment_id) FILTER (WHERE verdict IN ('unreviewed_head', 'off_branch'))
            AS unreviewed_deployments
    FROM judged GROUP BY repo
)
SELECT r.repo, 'due' AS cc14_scope, 'due' AS cc15_scope, prm.window_start AS history_window_start,
    coalesce(rd.status_code = 200, false) AS activity_log_readable, rd.status_code AS activity_log_status,
    rd.detail AS activity_log_detail, coalesce(log.activity_entries, 0) AS activity_entries,
    coalesce(log.history_rewrites, 0) AS history_rewrites, log.rewrite_events,
    coalesce(gone.disappeared_commits, 0) AS disappeared_commits, gone.disappeared,
    coalesce(dep.production_deployments_in_window, 0) AS production_deployments_in_window,
    coalesce(dep.deployed_approved_heads, 0) AS deployed_approved_heads,
    coalesce(dep.unreviewed_production_deployments, 0) AS unreviewed_production_deployments,
    dep.unreviewed_deployments
FROM _repos r CROSS JOIN prm LEFT JOIN reads rd USING (repo) LEFT JOIN log USING (repo)
LEFT JOIN gone USING (repo) LEFT JOIN dep USING (repo)"""


def expectations_14(s: Settings) -> list:
    c = due("cc14_scope")
    return [
        gxe.ExpectColumnValuesToBeInSet(column="activity_log_readable", value_set=[True], row_condition=c,
                                        description="the production branch's activity log could be read"),
        gxe.ExpectColumnValuesToBeBetween(column="history_rewrites", max_value=0, row_condition=c,
                                          description="no force push to and no deletion of the production branch "
                                                      "in the window"),
        gxe.ExpectColumnValuesToBeBetween(column="disappeared_commits", max_value=0, row_condition=c,
                                          description="no commit an earlier run saw on the production branch's "
                                                      "first-parent history has disappeared from it"),
    ]


def expectations_15(s: Settings) -> list:
    return [
        gxe.ExpectColumnValuesToBeBetween(
            column="unreviewed_production_deployments", max_value=0, row_condition=due("cc15_scope"),
            description="every production deployment that reached success in the window shipped a commit of the "
                        "production branch's first-parent history or the approved head of a pull request into it"),
    ]


def _more(items: list, shown: int = LISTED) -> str:
    return f"; and {len(items) - shown} more" if len(items) > shown else ""


def _event(e: dict) -> str:
    kind = {"force_push": "force push", "branch_deletion": "branch deletion"}.get(text(e.get("kind")), text(e.get("kind")))
    who = text(e.get("who"), "an unknown actor")
    before, after = e.get("before"), e.get("after")
    return (f"{kind} by {who} at {ts(e.get('at'))} ({short(before) if before else 'none'} -> "
            f"{short(after) if after else 'none'})")


def detail_14(row: dict, status: str, s: Settings) -> str:
    branch = text(row.get("production_branch"), "the production branch")
    since = ts(row.get("history_window_start"))
    problems = []
    if not row.get("activity_log_readable"):
        why = text(row.get("activity_log_detail"), "it was not fetched")
        problems.append(f"the activity log of {branch} could not be read ({why}): force pushes and deletions "
                        f"cannot be ruled out")
    events = list(row.get("rewrite_events") or [])
    if events:
        problems.append(f"{plural(len(events), 'rewrite')} of {branch} since {since}: "
                        + "; ".join(_event(e) for e in events[:LISTED]) + _more(events))
    gone = list(row.get("disappeared") or [])
    if gone:
        problems.append(f"{plural(len(gone), 'commit')} an earlier run saw on {branch} disappeared from it: "
                        + "; ".join(f"{short(g.get('sha'))} (last seen by the run of {ts(g.get('last_seen'))})"
                                    for g in gone[:LISTED]) + _more(gone))
    if status == "pass" or not problems:
        n = num(row.get("activity_entries"))
        return (f"{branch}: no force push, branch deletion or disappeared commit since {since} "
                f"({n} activity log {'entry' if n == 1 else 'entries'} in the window)")
    return "; ".join(problems)


def _deployment(d: dict, branch: str) -> str:
    if d.get("verdict") == "unreviewed_head":
        why = f"head of PR #{text(d.get('pr'))} without an APPROVED review on it before the deployment"
    else:
        why = f"not on {branch}'s first-parent history nor the head of a pull request into {branch} merged in the window"
    return (f"deployment {text(d.get('id'))} of {short(d.get('sha'))} by {text(d.get('creator'), 'unknown')} "
            f"at {ts(d.get('at'))} to {text(d.get('env'))} ({why})")


def detail_15(row: dict, status: str, s: Settings) -> str:
    branch = text(row.get("production_branch"), "the production branch")
    since = ts(row.get("history_window_start"))
    total, heads = num(row.get("production_deployments_in_window")), num(row.get("deployed_approved_heads"))
    bad = list(row.get("unreviewed_deployments") or [])
    if status == "pass" or not bad:
        if total == 0:
            return f"no production deployment reached success since {since}"
        early = f"; {heads} the approved head of a pull request before its merge" if heads else ""
        return (f"{plural(total, 'production deployment')} since {since}, each of {branch}'s first-parent history "
                f"or an approved pull request head{early}")
    return (f"{len(bad)} of {plural(total, 'production deployment')} since {since} shipped code that is neither on "
            f"{branch}'s first-parent history nor an approved pull request head: "
            + "; ".join(_deployment(d, branch) for d in bad[:LISTED]) + _more(bad))


CONTROLS = [
    control("CC8.1-14", __name__, "cc14_scope", expectations_14, detail_14),
    control("CC8.1-15", __name__, "cc15_scope", expectations_15, detail_15),
]
