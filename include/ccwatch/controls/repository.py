"""CC8.1-11 Production branch protected and CC8.1-12 Deployment access restricted (one row per repo).

Branch protection comes from ``branch_rules`` (rulesets vocabulary, see warehouse/schema.py).
A rule is in force when it comes from classic protection, or from a ruleset whose
enforcement is ``active`` (``evaluate`` and ``disabled`` rulesets are ignored; the rules API
only lists rulesets that target the branch).  A setting applies to administrators when a
ruleset without bypass actors provides it, or classic protection provides it with
``enforce_admins`` on.  Classic protection the token cannot read is never assumed, nor are
bypass actors the token cannot see (``bypass_actors`` NULL): such a ruleset does not apply to admins.
"""

from __future__ import annotations

import great_expectations.expectations as gxe

from ccwatch.controls.base import control, due
from ccwatch.controls.text import num, text
from ccwatch.settings import Settings

# (fact column, what the setting is, how it reads in a detail when missing)
SETTINGS = (
    ("requires_pull_request", "requires a pull request"),
    ("requires_approving_review", "requires at least one approving review"),
    ("dismisses_stale_reviews", "dismisses stale approvals on push"),
    ("requires_status_checks", "requires status checks"),
    ("forbids_force_pushes", "forbids force pushes"),
    ("forbids_deletion", "forbids deletion"),
)

_SETTING_SQL = {
    "requires_pull_request": "rule_type = 'pull_request'",
    "requires_approving_review": "rule_type = 'pull_request' AND coalesce(TRY_CAST(json_extract(parameters, "
                                 "'$.required_approving_review_count') AS INTEGER), 0) >= 1",
    "dismisses_stale_reviews": "rule_type = 'pull_request' AND coalesce(TRY_CAST(json_extract(parameters, "
                               "'$.dismiss_stale_reviews_on_push') AS BOOLEAN), TRY_CAST(json_extract(parameters, "
                               "'$.dismiss_stale_reviews') AS BOOLEAN), false)",
    "requires_status_checks": "rule_type = 'required_status_checks'",
    "forbids_force_pushes": "rule_type = 'non_fast_forward'",
    "forbids_deletion": "rule_type = 'deletion'",
}


def repo_fact_sql(s: Settings) -> str:
    flags = ",\n".join(
        f"bool_or({cond}) AS {col}, bool_or(({cond}) AND admin_enforced) AS {col}_admin"
        for col, cond in _SETTING_SQL.items()
    )
    provided = " OR ".join(col for col, _ in SETTINGS)
    admin_ok = " AND ".join(f"(NOT {col} OR {col}_admin)" for col, _ in SETTINGS)
    bypass = " || ".join(f"CASE WHEN {col} AND NOT {col}_admin THEN '{col}, ' ELSE '' END" for col, _ in SETTINGS)
    return f"""
WITH br AS (
    SELECT b.*, r.production_branch FROM branch_rules b JOIN _repos r ON r.repo = b.repo AND b.branch = r.production_branch
), classic_admins AS (
    SELECT repo, bool_or(coalesce(TRY_CAST(json_extract(parameters, '$.enabled') AS BOOLEAN), true)) AS on
    FROM br WHERE source = 'classic' AND rule_type = 'enforce_admins' GROUP BY repo
), rules AS (
    SELECT br.*, CASE WHEN source = 'classic' THEN coalesce(ca.on, false)
                      ELSE coalesce(bypass_actors = 0, false) END AS admin_enforced
    FROM br LEFT JOIN classic_admins ca USING (repo)
    WHERE rule_type NOT IN ('unreadable', 'not_protected', 'enforce_admins')
      AND (source = 'classic' OR lower(coalesce(enforcement, '')) = 'active')
), f AS (SELECT repo, {flags} FROM rules GROUP BY repo
), ub AS (  -- (r2) active rulesets in force whose bypass_actors GitHub left out (token without write access)
    SELECT repo, string_agg(DISTINCT CAST(ruleset_id AS VARCHAR), ', ' ORDER BY CAST(ruleset_id AS VARCHAR))
               AS unknown_bypass_rulesets
    FROM rules WHERE source = 'ruleset' AND bypass_actors IS NULL GROUP BY repo
), ev AS (
    SELECT repo,
        string_agg(DISTINCT CASE WHEN source = 'classic' AND rule_type = 'unreadable'
                                 THEN coalesce(detail, 'classic branch protection could not be read') END, '; ')
            AS classic_unreadable,
        bool_or(source = 'classic' AND rule_type = 'not_protected') AS classic_not_protected,
        string_agg(DISTINCT CASE WHEN source = 'ruleset' THEN 'ruleset ' || ruleset_id || ' ('
                   || coalesce(enforcement, '?') || ', ' || coalesce(bypass_actors::VARCHAR, 'unknown (unreadable)') || ' bypass actors)' END, ', ')
            AS rulesets_seen,
        count(*) AS rule_rows
    FROM br GROUP BY repo
), envs AS (
    SELECT x.repo,
        count(*) FILTER (WHERE e.name IS NULL OR NOT e.env_exists) AS production_environments_missing,
        string_agg(x.env, ', ' ORDER BY x.env) FILTER (WHERE e.name IS NULL OR NOT e.env_exists) AS missing_environments,
        count(*) FILTER (WHERE e.env_exists AND NOT (coalesce(e.required_reviewers, 0) > 0
                                                     OR coalesce(e.protected_branches, false)))
            AS production_environments_unrestricted,
        string_agg(x.env, ', ' ORDER BY x.env) FILTER (WHERE e.env_exists AND NOT (coalesce(e.required_reviewers, 0) > 0
                                                     OR coalesce(e.protected_branches, false))) AS unrestricted_environments,
        string_agg(x.env || ': ' || CASE WHEN e.name IS NULL THEN 'not fetched' WHEN NOT e.env_exists THEN 'does not exist'
                   ELSE coalesce(e.required_reviewers, 0) || ' required reviewers, '
                        || CASE WHEN e.protected_branches THEN 'protected branches only'
                                WHEN e.custom_branch_policies THEN 'custom branch policies'
                                ELSE 'any branch' END END, '; ' ORDER BY x.env) AS environment_evidence
    FROM _envs x LEFT JOIN environments e ON e.repo = x.repo AND e.name = x.env
    WHERE x.env_kind = 'production' GROUP BY x.repo
)
SELECT r.repo, 'due' AS cc11_scope, 'due' AS cc12_scope,
    {", ".join(f"coalesce(f.{c}, false) AS {c}" for c, _ in SETTINGS)},
    coalesce(({provided}) AND {admin_ok}, false) AS enforced_for_admins,
    nullif(rtrim(coalesce({bypass}, ''), ', '), '') AS admin_bypassable_settings,
    ub.unknown_bypass_rulesets,
    ev.classic_unreadable, coalesce(ev.classic_not_protected, false) AS classic_not_protected,
    ev.rulesets_seen, coalesce(ev.rule_rows, 0) AS protection_evidence_rows,
    coalesce(envs.production_environments_missing, 0) AS production_environments_missing, envs.missing_environments,
    coalesce(envs.production_environments_unrestricted, 0) AS production_environments_unrestricted,
    envs.unrestricted_environments, envs.environment_evidence
FROM _repos r LEFT JOIN f USING (repo) LEFT JOIN ev USING (repo) LEFT JOIN envs USING (repo)
LEFT JOIN ub USING (repo)"""


def expectations_11(s: Settings) -> list:
    c = due("cc11_scope")
    out = [gxe.ExpectColumnValuesToBeInSet(column=col, value_set=[True], row_condition=c,
                                           description=f"the production branch {what}") for col, what in SETTINGS]
    out.append(gxe.ExpectColumnValuesToBeInSet(
        column="enforced_for_admins", value_set=[True], row_condition=c,
        description="these settings apply to administrators (classic enforce_admins; rulesets without bypass actors)"))
    return out


def expectations_12(s: Settings) -> list:
    c = due("cc12_scope")
    return [
        gxe.ExpectColumnValuesToBeBetween(column="production_environments_missing", max_value=0, row_condition=c,
                                          description="every production environment exists"),
        gxe.ExpectColumnValuesToBeBetween(
            column="production_environments_unrestricted", max_value=0, row_condition=c,
            description="every production environment has required reviewers or a protected-branches-only policy"),
    ]


def detail_11(row: dict, status: str, s: Settings) -> str:
    branch = text(row.get("production_branch"))
    sources = []
    if text(row.get("rulesets_seen")):
        sources.append(text(row.get("rulesets_seen")))
    if row.get("classic_not_protected"):
        sources.append("no classic protection")
    if status == "pass":
        return f"{branch}: all protection settings in force for everyone ({'; '.join(sources) or 'classic protection'})"
    if num(row.get("protection_evidence_rows")) == 0:
        return f"{branch}: no branch protection evidence was fetched (classic or rulesets)"
    missing = [what for col, what in SETTINGS if not row.get(col)]
    bypass = text(row.get("admin_bypassable_settings"))
    unknown = text(row.get("unknown_bypass_rulesets"))
    if not row.get("enforced_for_admins") and any(row.get(c) for c, _ in SETTINGS):
        if unknown:  # (r2) absent is unknown, not empty: say what could not be verified and why
            missing.append(f"applies to administrators (cannot be verified: bypass list unknown for ruleset "
                           f"{unknown}: GitHub returns bypass_actors only to a token with write access to the "
                           "ruleset)" + (f" (not enforced for admins: {bypass.replace('_', ' ')})" if bypass else ""))
        else:
            missing.append("applies to administrators" + (f" (bypassable: {bypass.replace('_', ' ')})" if bypass else ""))
    unreadable = text(row.get("classic_unreadable"))
    if unreadable:
        return (f"{branch}: could not verify that it {', '.join(missing)}: classic branch protection unreadable "
                f"({unreadable}; reading it needs admin rights) and rulesets do not provide it")
    return f"{branch}: missing: {', '.join(missing)} ({'; '.join(sources) or 'classic protection'})"


def detail_12(row: dict, status: str, s: Settings) -> str:
    ev = text(row.get("environment_evidence"), "no production environment configured")
    if status == "pass":
        return ev
    problems = []
    if num(row.get("production_environments_missing")):
        problems.append(f"missing environment(s): {text(row.get('missing_environments'))}")
    if num(row.get("production_environments_unrestricted")):
        problems.append(f"no required reviewers nor protected-branches policy: "
                        f"{text(row.get('unrestricted_environments'))}")
    return f"{'; '.join(problems)} ({ev})"


CONTROLS = [
    control("CC8.1-11", __name__, "cc11_scope", expectations_11, detail_11),
    control("CC8.1-12", __name__, "cc12_scope", expectations_12, detail_12),
]
