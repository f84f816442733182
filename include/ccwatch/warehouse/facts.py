"""The facts every control shares, for one as-of time, from the normalised tables only.

``build_base_facts(con, settings, as_of)`` creates the temp table ``_facts_base``: one row per
change in the window (CONTROLS.md "What a change is") with the population columns the evidence
writer reads and the shared facts (ticket, category, production and staging deployment), plus
the config tables the controls' fact SQL joins.  ``ccwatch.controls.facts`` adds each control
family's columns and writes ``change_facts`` and ``repo_facts``.

Work tables are TEMP tables prefixed ``_``.  Config values reach SQL through the one-row
``_params`` table and small config tables, never by string formatting of values into SQL
except quoted literals made by ``sql_str``.  Events after ``as_of`` are ignored.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import duckdb

from ccwatch.common.times import naive_utc
from ccwatch.settings import Settings
from ccwatch.warehouse.ticket_history import build_ticket_history
from ccwatch.warehouse.title_keys import build_title_keys

# Population columns (CONTROLS.md "Outputs", population.csv) - always present in change_facts.
POPULATION_COLUMNS = (
    "change_id", "repo", "change_kind", "number", "sha", "title", "author", "merged_at", "merged_by",
    "ticket_key", "deployed_at", "deployer", "category", "pr_url", "ticket_url",
)


def _load_config(con: duckdb.DuckDBPyConnection, s: Settings, as_of: datetime) -> None:
    w, j = s.windows, s.jira
    lower = lambda xs: [x.lower() for x in xs]  # noqa: E731
    con.execute(
        """CREATE OR REPLACE TEMP TABLE _params AS SELECT
            ?::TIMESTAMP AS as_of, ?::TIMESTAMP AS window_start,
            ?::INTEGER AS deploy_grace_hours, ?::INTEGER AS pir_days,
            ?::INTEGER AS emergency_retro_days, ?::INTEGER AS postmortem_days,
            ?::INTEGER AS min_approvals, ?::BOOLEAN AS allow_stale_approval, ?::BOOLEAN AS allow_self_merge,
            ?::VARCHAR[] AS em_labels, ?::VARCHAR[] AS em_issue_types, ?::VARCHAR[] AS em_priorities,
            ?::VARCHAR[] AS std_labels, ?::VARCHAR[] AS approval_statuses, ?::VARCHAR AS postmortem_field""",
        [
            as_of, as_of - timedelta(days=s.lookback_days),
            w.deploy_grace_hours, w.pir_days, w.emergency_retro_days, w.postmortem_days,
            s.review.min_approvals, s.review.allow_stale_approval, s.sod.allow_self_merge,
            lower(j.emergency.labels), lower(j.emergency.issue_types), lower(j.emergency.priorities),
            lower(j.standard_change.labels), lower(j.approval_statuses), j.fields.postmortem.lower(),
        ],
    )
    repos = s.github.repositories
    con.execute("CREATE OR REPLACE TEMP TABLE _repos (repo VARCHAR, production_branch VARCHAR, has_staging BOOLEAN, "
                "required_checks VARCHAR[], production_environments VARCHAR[], staging_environments VARCHAR[])")
    if repos:
        con.executemany("INSERT INTO _repos VALUES (?, ?, ?, ?, ?, ?)", [
            [r.repo, r.production_branch, bool(r.staging_environments), list(r.required_checks),
             list(r.production_environments), list(r.staging_environments)] for r in repos])
    # (r2) required_checks entries {name, app}: the check counts only from that GitHub App (its slug)
    con.execute("CREATE OR REPLACE TEMP TABLE _check_pins (repo VARCHAR, name VARCHAR, app VARCHAR)")
    pins = [[r.repo, name, app] for r in repos for name, app in r.required_check_apps]
    if pins:
        con.executemany("INSERT INTO _check_pins VALUES (?, ?, ?)", pins)
    con.execute("CREATE OR REPLACE TEMP TABLE _envs AS SELECT repo, unnest(production_environments) AS env, "
                "'production' AS env_kind FROM _repos UNION ALL SELECT repo, unnest(staging_environments), "
                "'staging' FROM _repos")
    # identities: the warehouse people table (refreshed from config by the loader) plus the
    # config itself, so evaluation never depends on the loader having run first.
    con.execute("CREATE OR REPLACE TEMP TABLE _ident (ident VARCHAR, person VARCHAR)")
    con.execute("INSERT INTO _ident SELECT DISTINCT lower(v), person FROM (SELECT person, github AS v FROM people "
                "UNION ALL SELECT person, jira FROM people) WHERE v IS NOT NULL AND trim(v) <> ''")
    rows = [(x.lower(), i.name) for i in s.people.identities for x in (i.github, i.jira) if x]
    if rows:
        con.executemany("INSERT INTO _ident VALUES (?, ?)", rows)
    con.execute(
        "CREATE OR REPLACE TEMP MACRO pkey(x) AS CASE WHEN x IS NULL OR trim(x) = '' THEN NULL ELSE "
        "coalesce((SELECT 'p:' || min(person) FROM _ident WHERE ident = lower(trim(x))), 'x:' || lower(trim(x))) END"
    )
    con.execute("CREATE OR REPLACE TEMP TABLE _roles (role VARCHAR, ident VARCHAR)")
    roles = [("change_approver", x) for x in s.people.change_approvers]
    roles += [("emergency_approver", x) for x in s.people.emergency_approvers]
    roles += [("authorized_deployer", x) for x in s.people.authorized_deployers]
    roles += [("deploy_automation", x) for x in s.github.deploy_automation]
    if roles:
        con.executemany("INSERT INTO _roles VALUES (?, ?)", roles)
    con.execute("CREATE OR REPLACE TEMP TABLE _role AS SELECT DISTINCT role, pkey(ident) AS pk FROM _roles")


_PR_CHANGES = """
CREATE OR REPLACE TEMP TABLE _pr AS
SELECT p.* FROM pull_requests p JOIN _repos r ON p.repo = r.repo AND p.base_branch = r.production_branch, _params prm
WHERE p.merged_at IS NOT NULL AND p.merged_at >= prm.window_start AND p.merged_at <= prm.as_of
"""

# (r2) When each candidate direct push (a first-parent commit of the production branch without a
# PR into it) reached the branch, and who pushed it (CONTROLS.md "What a change is"; docs/
# CONTROLS-IMPLEMENTATION.md, "Push time").  From the activity log: among the entries (push,
# force_push, pr_merge, merge_queue_merge, branch_creation; up to as_of) whose `after` is on the
# chain at or above the commit, the earliest; its time is the push time when its `before` is
# below the commit (or not on the chain: a force push, a creation), else the commit was on the
# branch before it (then before the window when that entry is).  A suffix minimum over the
# entries' positions and an ASOF join, as for deployments.  Without a log entry: the first
# sighting by a ccwatch run other than the repository's first load, else the committer date (the
# source says which).  A sighting earlier than the log's time wins over it (the commit was on the
# branch by then).
_PUSH_TIMES = """
CREATE OR REPLACE TEMP TABLE _push_times AS
WITH ch AS (
    SELECT c.repo, c.sha, c.position AS pos FROM commits c JOIN _repos r ON c.repo = r.repo AND c.branch = r.production_branch
), ent AS (
    SELECT a.repo, ca.pos AS a_pos, struct_pack(t := a."at", id := a.activity_id, b := cb.pos, who := a.actor_login) AS e
    FROM branch_activity a JOIN _repos r ON a.repo = r.repo AND a.branch = r.production_branch
    JOIN ch ca ON ca.repo = a.repo AND ca.sha = a.after_sha
    LEFT JOIN ch cb ON cb.repo = a.repo AND cb.sha = a.before_sha
    CROSS JOIN _params prm
    WHERE a.activity_type IN ('push', 'force_push', 'pr_merge', 'merge_queue_merge', 'branch_creation')
      AND a."at" <= prm.as_of
), suffix AS (
    SELECT DISTINCT repo, a_pos, min(e) OVER (PARTITION BY repo ORDER BY a_pos
        RANGE BETWEEN CURRENT ROW AND UNBOUNDED FOLLOWING) AS best
    FROM ent
), cand AS (
    SELECT c.*, ch.pos FROM commits c JOIN _repos r ON c.repo = r.repo AND c.branch = r.production_branch
    JOIN ch ON ch.repo = c.repo AND ch.sha = c.sha
    WHERE coalesce(len(c.pr_numbers), 0) = 0
      AND NOT EXISTS (SELECT 1 FROM pull_requests m WHERE m.repo = c.repo AND m.merged_at IS NOT NULL
                      AND m.merge_commit_sha = c.sha AND m.base_branch = r.production_branch)
), logged AS (
    SELECT cand.repo, cand.sha, s.best FROM cand ASOF JOIN suffix s ON s.repo = cand.repo AND s.a_pos >= cand.pos
), seen AS (
    SELECT s.repo, s.sha, s.first_seen_as_of AS first_seen,
           min(s.first_seen_as_of) OVER (PARTITION BY s.repo) AS first_load
    FROM commit_sightings s JOIN _repos r ON s.repo = r.repo AND s.branch = r.production_branch
), x AS (
    SELECT cand.*, l.best.t AS log_at, l.best.b IS NULL OR l.best.b < cand.pos AS log_exact, l.best.who AS log_actor,
           sn.first_seen, sn.first_load, coalesce(rd.status_code = 200, false) AS log_readable, prm.window_start
    FROM cand LEFT JOIN logged l ON l.repo = cand.repo AND l.sha = cand.sha
    LEFT JOIN seen sn ON sn.repo = cand.repo AND sn.sha = cand.sha
    JOIN _repos r ON r.repo = cand.repo
    LEFT JOIN branch_activity_reads rd ON rd.repo = cand.repo AND rd.branch = r.production_branch
    CROSS JOIN _params prm
), src AS (
    SELECT *, CASE
        WHEN log_at IS NOT NULL AND log_exact AND (first_seen IS NULL OR first_seen >= log_at) THEN 'log'
        WHEN log_at IS NOT NULL AND NOT log_exact AND log_at < window_start
             AND (first_seen IS NULL OR first_seen >= log_at) THEN 'log_before'
        WHEN first_seen IS NOT NULL AND first_seen > first_load THEN 'seen'
        ELSE 'committer' END AS source
    FROM x
)
SELECT repo, sha,
       CASE source WHEN 'log' THEN log_at WHEN 'log_before' THEN log_at WHEN 'seen' THEN first_seen
            ELSE committed_at END AS push_time,
       CASE source WHEN 'log' THEN log_actor
            ELSE CASE WHEN committer_login IS NULL OR committer_login = 'web-flow' THEN author_login
                      ELSE committer_login END END AS pusher,
       CASE source WHEN 'log' THEN 'activity log' WHEN 'log_before' THEN 'activity log: on the branch before the window'
            WHEN 'seen' THEN 'first seen by the run of ' || strftime(first_seen, '%Y-%m-%dT%H:%MZ')
            WHEN 'committer' THEN CASE WHEN log_readable THEN 'committer date: not in the activity log, first run'
                                       ELSE 'committer date: no activity log on the first run' END END AS push_time_source
FROM src
"""

_BASE = """
CREATE OR REPLACE TEMP TABLE _base AS
WITH pushes AS (
    SELECT c.*, pt.push_time, pt.pusher, pt.push_time_source
    FROM commits c JOIN _repos r ON c.repo = r.repo AND c.branch = r.production_branch
    JOIN _push_times pt ON pt.repo = c.repo AND pt.sha = c.sha, _params prm
    WHERE pt.push_time >= prm.window_start AND pt.push_time <= prm.as_of
), changes AS (
    SELECT p.repo || '#' || p.number AS change_id, p.repo, 'pr' AS change_kind, p.number,
           p.merge_commit_sha AS sha, p.title, p.author_login AS author, p.author_type, p.merged_at,
           p.merged_by_login AS merged_by, p.head_sha, coalesce(p.labels, []) AS pr_label_list,
           p.html_url AS pr_url, k.ticket_key, k.title_other_keys, NULL::VARCHAR AS push_time_source
    FROM _pr p LEFT JOIN _keys k ON k.repo = p.repo AND k.number = p.number
    UNION ALL
    SELECT c.repo || '@' || c.sha, c.repo, 'direct_push', NULL, c.sha, split_part(c.message, chr(10), 1),
           c.author_login, NULL, c.push_time, c.pusher, NULL, [], c.html_url, NULL, NULL, c.push_time_source
    FROM pushes c
)
SELECT ch.*, array_to_string(ch.pr_label_list, ', ') AS pr_labels,
       coalesce(t.key IS NOT NULL, false) AS ticket_exists,
       t.status AS ticket_status, t.status_category AS ticket_status_category, t.issue_type AS ticket_issue_type,
       t.priority AS ticket_priority, array_to_string(t.labels, ', ') AS ticket_labels, t.created AS ticket_created,
       t.browse_url AS ticket_url, cp.position AS change_pos, r.has_staging,
       ch.merged_at + to_hours(prm.deploy_grace_hours) AS deploy_deadline,
       nullif(concat_ws('; ',
         CASE WHEN list_contains(list_transform(ch.pr_label_list, lambda x: lower(x)), 'emergency') THEN 'PR label emergency' END,
         CASE WHEN list_has_any(list_transform(coalesce(t.labels, []), lambda x: lower(x)), prm.em_labels)
              THEN 'ticket label ' || array_to_string(t.labels, '/') END,
         CASE WHEN list_contains(prm.em_issue_types, lower(t.issue_type)) THEN 'issue type ' || t.issue_type END,
         CASE WHEN list_contains(prm.em_priorities, lower(t.priority)) THEN 'priority ' || t.priority END), '')
         AS emergency_reason,
       list_has_any(list_transform(coalesce(t.labels, []), lambda x: lower(x)), prm.std_labels) AS standard_label
FROM changes ch CROSS JOIN _params prm
JOIN _repos r ON r.repo = ch.repo
LEFT JOIN _ticket_asof t ON ch.change_kind = 'pr' AND t.key = ch.ticket_key  -- (r2) the ticket as of as_of
LEFT JOIN commits cp ON cp.repo = ch.repo AND cp.branch = r.production_branch AND cp.sha = ch.sha
"""

# Every deployment of a configured environment created by as_of, with whether it counts as a
# successful one: the ONE definition the controls (``_dep``, ``_first_*``) and the evidence's
# deployments.json (``_change_deployments``) share.  (r2) A deployment happened at its first
# `success` status up to as_of; later statuses do not undo it (GitHub marks superseded
# deployments `inactive`, and a later `failure`, a rollback, does not un-ship what shipped), in
# production and staging alike.  ``ord``: creation order within its repository and environment.
_DEPLOYMENTS = """
CREATE OR REPLACE TEMP TABLE _dep_all AS
WITH st AS (
    SELECT s.repo, s.deployment_id, min(s.created_at) FILTER (WHERE s.state = 'success') AS success_at
    FROM deployment_statuses s, _params prm WHERE s.created_at <= prm.as_of GROUP BY ALL
)
SELECT d.repo, d.deployment_id, d.sha, d.environment, e.env_kind, d.creator_login, d.creator_type,
       d.created_at, st.success_at, c.position AS pos, st.success_at IS NOT NULL AS counted,
       row_number() OVER (PARTITION BY d.repo, d.environment ORDER BY d.created_at, d.deployment_id) AS ord
FROM deployments d JOIN _envs e ON e.repo = d.repo AND e.env = d.environment
JOIN _repos r ON r.repo = d.repo
LEFT JOIN st ON st.repo = d.repo AND st.deployment_id = d.deployment_id
LEFT JOIN commits c ON c.repo = d.repo AND c.branch = r.production_branch AND c.sha = d.sha
CROSS JOIN _params prm
WHERE d.created_at <= prm.as_of;
CREATE OR REPLACE TEMP TABLE _dep AS
SELECT repo, deployment_id, sha, environment, env_kind, creator_login, creator_type, success_at, pos
FROM _dep_all WHERE counted
"""

# The deployments that carry each change, per environment, in creation order, up to the first
# that counts as successful (what deployments.json of the change's evidence folder lists): those
# of its sha or of a later first-parent commit.  Per (repository, environment) a suffix minimum
# over positions gives the creation rank of the first deployment at or after a position, and
# of the first successful one; the ranks between are expanded (a few per change), never a
# changes x deployments join.  A change whose commit has no position is matched by sha alone.
_CHANGE_DEPLOYMENTS = """
CREATE OR REPLACE TEMP TABLE _change_deployments AS
WITH suffix AS (
    SELECT DISTINCT repo, environment, pos,
        min(ord) OVER w AS first_any, min(ord) FILTER (WHERE counted) OVER w AS first_ok
    FROM _dep_all WHERE pos IS NOT NULL
    WINDOW w AS (PARTITION BY repo, environment ORDER BY pos RANGE BETWEEN CURRENT ROW AND UNBOUNDED FOLLOWING)
), last_ord AS (
    SELECT repo, environment, max(ord) AS n FROM _dep_all GROUP BY ALL
), ranges AS (
    SELECT b.change_id, b.repo, e.env AS environment, b.change_pos, s.first_any, coalesce(s.first_ok, l.n) AS last
    FROM _base b JOIN _envs e ON e.repo = b.repo
    ASOF JOIN suffix s ON s.repo = b.repo AND s.environment = e.env AND s.pos >= b.change_pos
    JOIN last_ord l ON l.repo = b.repo AND l.environment = e.env
    WHERE b.change_pos IS NOT NULL
), by_pos AS (
    SELECT r.change_id, d.environment, d.env_kind, d.deployment_id, d.ord, d.counted
    FROM (SELECT *, unnest(range(first_any, last + 1)) AS o FROM ranges) r
    JOIN _dep_all d ON d.repo = r.repo AND d.environment = r.environment AND d.ord = r.o
    WHERE d.pos >= r.change_pos
), by_sha AS (
    SELECT b.change_id, d.environment, d.env_kind, d.deployment_id, d.ord, d.counted
    FROM _base b JOIN _dep_all d ON d.repo = b.repo AND d.sha = b.sha
    WHERE b.change_pos IS NULL
), cands AS (SELECT * FROM by_pos UNION ALL SELECT * FROM by_sha)
SELECT change_id, environment, env_kind, deployment_id, ord FROM (
    SELECT *, count(*) FILTER (WHERE counted) OVER (PARTITION BY change_id, environment ORDER BY ord
                                                   ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS ok_before
    FROM cands)
WHERE coalesce(ok_before, 0) = 0
"""

# Earliest successful deployment (by its first success status) of the change's commit or a
# later first-parent commit: a suffix minimum over positions, then an ASOF join.
_FIRST_DEPLOY = """
CREATE OR REPLACE TEMP TABLE _first_{kind} AS
WITH suffix AS (
    SELECT DISTINCT repo, pos, min(struct_pack(t := success_at, id := deployment_id)) OVER (
        PARTITION BY repo ORDER BY pos RANGE BETWEEN CURRENT ROW AND UNBOUNDED FOLLOWING) AS best
    FROM _dep WHERE env_kind = '{kind}' AND pos IS NOT NULL
), by_pos AS (
    SELECT b.change_id, s.best FROM _base b ASOF JOIN suffix s ON s.repo = b.repo AND s.pos >= b.change_pos
), by_sha AS (
    SELECT b.change_id, min(struct_pack(t := d.success_at, id := d.deployment_id)) AS best
    FROM _base b JOIN _dep d ON d.repo = b.repo AND d.sha = b.sha AND d.env_kind = '{kind}' GROUP BY ALL
), best AS (
    SELECT change_id, min(best) AS best FROM (SELECT * FROM by_pos UNION ALL SELECT * FROM by_sha) GROUP BY ALL
)
SELECT best.change_id, best.best.t AS at, d.deployment_id, d.environment, d.creator_login, d.creator_type, d.sha
FROM best JOIN _dep d ON d.deployment_id = best.best.id AND d.env_kind = '{kind}'
"""

_CHANGE_FACTS_BASE = """
SELECT b.change_id, b.repo, b.change_kind, b.number, b.sha, b.title, b.author, b.author_type, b.merged_at,
       b.merged_by, b.head_sha, b.pr_labels, b.pr_url, b.ticket_key, b.title_other_keys, b.ticket_exists,
       b.ticket_status, b.ticket_status_category, b.ticket_issue_type, b.ticket_priority, b.ticket_labels,
       b.ticket_created, b.ticket_url, b.change_pos, b.has_staging, b.deploy_deadline, b.emergency_reason,
       b.push_time_source,
       CASE WHEN b.change_kind <> 'pr' THEN 'normal' WHEN b.emergency_reason IS NOT NULL THEN 'emergency'
            WHEN b.standard_label THEN 'standard' ELSE 'normal' END AS category,
       fp.at AS deployed_at, fp.deployment_id, fp.environment AS deploy_environment, fp.creator_login AS deployer,
       fp.creator_type AS deployer_type, fp.sha AS deploy_sha,
       fs.at AS staging_deployed_at, fs.deployment_id AS staging_deployment_id,
       fs.environment AS staging_environment, fs.sha AS staging_sha
FROM _base b LEFT JOIN _first_production fp USING (change_id) LEFT JOIN _first_staging fs USING (change_id)
ORDER BY b.change_id
"""


#: the per-change work tables ``build_base_facts`` leaves for the controls' fact SQL (the config
#: tables stay); ``ccwatch.controls.facts`` drops them once change_facts and repo_facts are written
BASE_WORK_TABLES = ("_facts_base", "_change_deployments", "_dep_all", "_ticket_field_history")


def drop_work_tables(con: duckdb.DuckDBPyConnection, names) -> None:
    """Drop temp work tables that nothing reads any more.  Temp tables are held in memory and count
    against DuckDB's memory limit: at 1M changes the dead ones made the rest of the build spill
    ~1.9 GB to disk under the pipeline's 2 GB (docs/PERFORMANCE.md, "Evaluation at 1M changes")."""
    for name in names:
        con.execute(f'DROP TABLE IF EXISTS temp."{name}"')


def build_base_facts(con: duckdb.DuckDBPyConnection, settings: Settings, as_of: datetime) -> None:
    """The temp tables every control's fact SQL reads, for ``as_of``: ``_params``, ``_repos``,
    ``_envs``, ``_role``, the ``pkey`` macro, ``_facts_base`` (one row per change of the window),
    ``_change_deployments`` (the deployments that carry each change, for its evidence), ``_dep_all``
    and ``_ticket_field_history`` (``BASE_WORK_TABLES``); the intermediate ones are dropped as soon
    as nothing reads them."""
    t = naive_utc(as_of)
    _load_config(con, settings, t)
    con.execute(_PR_CHANGES)
    build_title_keys(con, settings.jira.ticket_key_pattern, settings.jira.project_keys)  # _keys
    build_ticket_history(con, settings)
    con.execute(_PUSH_TIMES)
    con.execute(_BASE)
    drop_work_tables(con, ("_pr", "_keys", "_ticket_asof", "_push_times"))
    con.execute(_DEPLOYMENTS)
    con.execute(_CHANGE_DEPLOYMENTS)
    for kind in ("production", "staging"):
        con.execute(_FIRST_DEPLOY.format(kind=kind))
    con.execute(f"CREATE OR REPLACE TEMP TABLE _facts_base AS {_CHANGE_FACTS_BASE}")
    drop_work_tables(con, ("_base", "_dep", "_first_production", "_first_staging"))
