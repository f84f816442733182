"""CC8.1-06 Final approval before deployment, CC8.1-07 Controlled deployment,
CC8.1-08 Post-implementation review, CC8.1-13 Validated before production.

The production deployment (``deployed_at``, ``deployer``) and the first staging deployment
(``staging_deployed_at``) of each change are shared facts built in ``warehouse/facts.py``.
"""

from __future__ import annotations

import great_expectations.expectations as gxe

from ccwatch.controls.base import control, due
from ccwatch.controls.sqlagg import sorted_string_agg
from ccwatch.controls.sqltext import CASE, DEPLOYED, LIT, NA, NA_OR, NO_TICKET, ST, TRUE, TS, T
from ccwatch.controls.text import direct_push_na, text, ts
from ccwatch.settings import Settings

# (r2) unknown actors: deleted or anonymous Jira users are in no list
_TRANSITION_TEXT = """to_status || ' by ' || coalesce(author, 'an unknown Jira user') || ' at '
        || strftime(moved_at, '%Y-%m-%dT%H:%MZ')
        || CASE WHEN pk IS NULL THEN ' (deleted or anonymous: in no list)'
                WHEN ak IS NOT NULL AND pk = ak THEN ' (the PR author)'
                WHEN NOT coalesce(is_approver, false) THEN ' (not in people.change_approvers)' ELSE '' END"""


def change_fact_sql(s: Settings) -> str:
    return _CHANGE_FACTS.replace("@APPROVAL_TRANSITIONS@",
                                 sorted_string_agg(_TRANSITION_TEXT, "', '", ["moved_at", "history_id"]))


_CHANGE_FACTS = """
WITH tr AS (  -- moves of the linked ticket into an approval status, up to as_of
    SELECT b.change_id, tt.author, tt.at AS moved_at, tt.to_status, tt.history_id, pkey(tt.author) AS pk, pkey(b.author) AS ak
    FROM _facts_base b JOIN ticket_transitions tt ON b.ticket_exists AND tt.key = b.ticket_key, _params prm
    WHERE tt.at <= prm.as_of AND list_contains(prm.approval_statuses, lower(tt.to_status))
), tr2 AS (
    SELECT *, pk IN (SELECT pk FROM _role WHERE role = 'change_approver') AS is_approver FROM tr
), ok AS (
    SELECT change_id, min(moved_at) AS approved_at, arg_min(author, struct_pack(t := moved_at, h := history_id)) AS approved_by
    FROM tr2 WHERE is_approver AND ak IS NOT NULL AND pk <> ak GROUP BY change_id
), ev AS (
    SELECT change_id, @APPROVAL_TRANSITIONS@ AS approval_transitions
    FROM tr2 GROUP BY change_id
), done AS (  -- status-category history of the linked ticket, up to as_of
    SELECT b.change_id, tt.at AS moved_at, tt.to_status, tt.history_id, lower(coalesce(tt.to_category, '')) = 'done' AS is_done,
           b.deployed_at
    FROM _facts_base b JOIN ticket_transitions tt ON b.ticket_exists AND tt.key = b.ticket_key, _params prm
    WHERE tt.at <= prm.as_of AND tt.to_status IS NOT NULL
), pir AS (
    SELECT d.change_id,
        min(d.moved_at) FILTER (WHERE d.is_done AND d.moved_at > d.deployed_at) AS pir_done_at,
        arg_min(d.to_status, struct_pack(t := d.moved_at, h := d.history_id)) FILTER (WHERE d.is_done AND d.moved_at > d.deployed_at)
            AS pir_done_status,
        arg_max(struct_pack(done := d.is_done, ts := d.moved_at, st := d.to_status), struct_pack(t := d.moved_at, h := d.history_id))
            FILTER (WHERE d.moved_at <= coalesce(d.deployed_at, prm.as_of)) AS last_before_deploy
    FROM done d, _params prm GROUP BY d.change_id
), f AS (
    SELECT b.change_id, b.change_kind, b.category, b.ticket_exists, b.deployed_at, b.deploy_deadline, b.has_staging,
        b.staging_deployed_at, ok.approved_at, ok.approved_by, ev.approval_transitions,
        coalesce(pkey(b.deployer) IN (SELECT pk FROM _role WHERE role = 'authorized_deployer'), false)
            AS deployer_authorized,
        pir.pir_done_at, pir.pir_done_status, b.deployed_at + to_days(prm.pir_days) AS pir_deadline,
        coalesce(pir.last_before_deploy.done, false) AS closed_before_deploy,
        CASE WHEN pir.last_before_deploy.done THEN pir.last_before_deploy.ts END AS closed_before_deploy_at,
        CASE WHEN pir.last_before_deploy.done THEN pir.last_before_deploy.st END AS closed_before_deploy_status,
        prm.as_of
    FROM _facts_base b CROSS JOIN _params prm LEFT JOIN ok USING (change_id) LEFT JOIN ev USING (change_id)
    LEFT JOIN pir USING (change_id)
)
SELECT change_id, approved_at, approved_by, approval_transitions, deployer_authorized,
    pir_done_at, pir_done_status, pir_deadline, closed_before_deploy, closed_before_deploy_at,
    closed_before_deploy_status,
    CASE WHEN change_kind <> 'pr' OR category IN ('emergency', 'standard') THEN 'not_applicable'
         WHEN ticket_exists AND approved_at IS NULL AND deployed_at IS NULL AND as_of <= deploy_deadline
         THEN 'pending' ELSE 'due' END AS cc06_scope,
    CASE WHEN change_kind <> 'pr' THEN 'not_applicable'
         WHEN deployed_at IS NULL AND as_of <= deploy_deadline THEN 'pending' ELSE 'due' END AS cc07_scope,
    CASE WHEN change_kind <> 'pr' THEN 'not_applicable'
         WHEN ticket_exists AND pir_done_at IS NULL AND NOT closed_before_deploy
              AND (deployed_at IS NULL OR as_of <= pir_deadline) THEN 'pending' ELSE 'due' END AS cc08_scope,
    CASE WHEN change_kind <> 'pr' OR NOT has_staging THEN 'not_applicable'
         WHEN deployed_at IS NULL THEN 'pending' ELSE 'due' END AS cc13_scope
FROM f"""


def expectations_06(s: Settings) -> list:
    c = due("cc06_scope")
    return [
        gxe.ExpectColumnValuesToNotBeNull(
            column="approved_at", row_condition=c,
            description=f"the ticket moved into {'/'.join(s.jira.approval_statuses)} by a member of "
                        "people.change_approvers who is not the PR author"),
        gxe.ExpectColumnPairValuesAToBeGreaterThanB(
            column_A="deployed_at", column_B="approved_at", ignore_row_if="either_value_is_missing",
            row_condition=c, description="that approval came before the production deployment"),
    ]


def expectations_07(s: Settings) -> list:
    c = due("cc07_scope")
    return [
        gxe.ExpectColumnValuesToNotBeNull(
            column="deployed_at", row_condition=c,
            description=f"the change has a successful production deployment within "
                        f"{s.windows.deploy_grace_hours}h of the merge"),
        gxe.ExpectColumnValuesToBeInSet(
            column="deployer_authorized", value_set=[True], row_condition=c,
            description="the production deployment was created by a member of people.authorized_deployers"),
    ]


def expectations_08(s: Settings) -> list:
    c = due("cc08_scope")
    return [
        gxe.ExpectColumnValuesToNotBeNull(
            column="pir_done_at", row_condition=c,
            description="the ticket reached a Done status category after the production deployment"),
        gxe.ExpectColumnPairValuesAToBeGreaterThanB(
            column_A="pir_deadline", column_B="pir_done_at", or_equal=True, ignore_row_if="either_value_is_missing",
            row_condition=c, description=f"within {s.windows.pir_days} days of the deployment"),
    ]


def expectations_13(s: Settings) -> list:
    c = due("cc13_scope")
    return [
        gxe.ExpectColumnValuesToNotBeNull(
            column="staging_deployed_at", row_condition=c,
            description="a successful staging deployment of the change (its merge commit or a later one)"),
        gxe.ExpectColumnPairValuesAToBeGreaterThanB(
            column_A="deployed_at", column_B="staging_deployed_at", ignore_row_if="either_value_is_missing",
            row_condition=c, description="the staging deployment happened before the production deployment"),
    ]


def _deployed(row: dict) -> str:
    return (f"production deployment {text(row.get('deployment_id'))} to {text(row.get('deploy_environment'))} "
            f"at {ts(row.get('deployed_at'))} by {text(row.get('deployer'), 'unknown')}")


def detail_06(row: dict, status: str, s: Settings) -> str:
    if status == "not_applicable":
        if row.get("change_kind") != "pr":
            return direct_push_na(row)
        return f"{row.get('category')} change: no final approval required before deployment"
    key = text(row.get("ticket_key"))
    if not key or not row.get("ticket_exists"):
        return "no linked Jira ticket to approve (see CC8.1-01)"
    seen = text(row.get("approval_transitions"), "no approval transitions")
    if status == "pending":
        return f"{key} not approved yet ({seen}); undeployed, due by {ts(row.get('deploy_deadline'))}"
    approved = f"{key} approved by {text(row.get('approved_by'))} at {ts(row.get('approved_at'))}"
    if status == "pass":
        dep = _deployed(row) if text(row.get("deployed_at")) else "not deployed yet"
        return f"{approved}, before {dep}" if text(row.get("deployed_at")) else f"{approved}; {dep}"
    if text(row.get("approved_at")):
        return f"{approved}, not before {_deployed(row)}"
    return f"{key} has no approval by a change approver other than {text(row.get('author'))} ({seen})"


def detail_07(row: dict, status: str, s: Settings) -> str:
    if status == "not_applicable":
        return direct_push_na(row)
    if status == "pending":
        return f"not deployed to production yet; due by {ts(row.get('deploy_deadline'))}"
    if not text(row.get("deployed_at")):
        return (f"no successful production deployment within {s.windows.deploy_grace_hours}h of the merge "
                f"at {ts(row.get('merged_at'))}")
    if status == "fail":
        return f"{_deployed(row)}: {text(row.get('deployer'), 'unknown')} is not in people.authorized_deployers"
    return _deployed(row)


def detail_08(row: dict, status: str, s: Settings) -> str:
    if status == "not_applicable":
        return direct_push_na(row)
    key = text(row.get("ticket_key"))
    if not key or not row.get("ticket_exists"):
        return "no linked Jira ticket to close after deployment (see CC8.1-01)"
    deployed = row.get("deployed_at") if text(row.get("deployed_at")) else None
    if status == "pending":
        if not deployed:
            return f"{key} awaits the production deployment before its post-implementation review"
        return f"{key} not Done yet; review due by {ts(row.get('pir_deadline'))} (deployed {ts(deployed)})"
    done = f"{key} moved to {text(row.get('pir_done_status'))} at {ts(row.get('pir_done_at'))}"
    if status == "pass":
        return f"{done}, {s.windows.pir_days}-day review window after deployment at {ts(deployed)}"
    if row.get("closed_before_deploy") and not text(row.get("pir_done_at")):
        when = f"deployment at {ts(deployed)}" if deployed else "any production deployment"
        return (f"{key} closed ({text(row.get('closed_before_deploy_status'))}) at "
                f"{ts(row.get('closed_before_deploy_at'))}, before {when}")
    if text(row.get("pir_done_at")):
        return f"{done}, after the deadline {ts(row.get('pir_deadline'))}"
    return f"{key} not Done within {s.windows.pir_days} days of the deployment at {ts(deployed)}"


def detail_13(row: dict, status: str, s: Settings) -> str:
    if status == "not_applicable":
        if row.get("change_kind") != "pr":
            return direct_push_na(row)
        return f"{row.get('repo')} lists no staging_environments"
    staging = (f"staging deployment {text(row.get('staging_deployment_id'))} to "
               f"{text(row.get('staging_environment'))} at {ts(row.get('staging_deployed_at'))}")
    if status == "pending":
        return "not deployed to production yet" + (f" ({staging})" if text(row.get("staging_deployed_at")) else "")
    if not text(row.get("staging_deployed_at")):
        return f"no successful staging deployment of the change; {_deployed(row)}"
    if status == "fail":
        return f"{staging} is not before {_deployed(row)}"
    return f"{staging}, before {_deployed(row)}"


# --- detail lines as SQL (the same text, vectorised; sqltext.py) ---------------------------


def detail_sql_06(s: Settings) -> str:
    key = T("ticket_key")
    seen = T("approval_transitions", "no approval transitions")
    approved = f"({key} || ' approved by ' || {T('approved_by')} || ' at ' || {TS('approved_at')})"
    return CASE(
        (f"{ST} = 'not_applicable'", NA_OR(f"{T('category', 'None')} || ' change: no final approval required "
                                            "before deployment'")),
        (NO_TICKET(), "'no linked Jira ticket to approve (see CC8.1-01)'"),
        (f"{ST} = 'pending'", f"({key} || ' not approved yet (' || {seen} || '); undeployed, due by ' "
                              f"|| {TS('deploy_deadline')})"),
        (f"{ST} = 'pass'", f"(CASE WHEN deployed_at IS NOT NULL THEN {approved} || ', before ' || {DEPLOYED()} "
                           f"ELSE {approved} || '; not deployed yet' END)"),
        ("approved_at IS NOT NULL", f"({approved} || ', not before ' || {DEPLOYED()})"),
        default=f"({key} || ' has no approval by a change approver other than ' || {T('author')} || ' (' || {seen} || ')')")


def detail_sql_07(s: Settings) -> str:
    return CASE(
        (f"{ST} = 'not_applicable'", NA()),
        (f"{ST} = 'pending'", f"('not deployed to production yet; due by ' || {TS('deploy_deadline')})"),
        ("deployed_at IS NULL", f"({LIT(f'no successful production deployment within {s.windows.deploy_grace_hours}h')}"
                                f" || ' of the merge at ' || {TS('merged_at')})"),
        (f"{ST} = 'fail'", f"({DEPLOYED()} || ': ' || {T('deployer', 'unknown')} || ' is not in people.authorized_deployers')"),
        default=DEPLOYED())


def detail_sql_08(s: Settings) -> str:
    key = T("ticket_key")
    done = f"({key} || ' moved to ' || {T('pir_done_status')} || ' at ' || {TS('pir_done_at')})"
    days = int(s.windows.pir_days)
    return CASE(
        (f"{ST} = 'not_applicable'", NA()),
        (NO_TICKET(), "'no linked Jira ticket to close after deployment (see CC8.1-01)'"),
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


def detail_sql_13(s: Settings) -> str:
    staging = (f"('staging deployment ' || {T('staging_deployment_id')} || ' to ' || {T('staging_environment')} "
               f"|| ' at ' || {TS('staging_deployed_at')})")
    return CASE(
        (f"{ST} = 'not_applicable'", NA_OR(f"{T('repo', 'None')} || ' lists no staging_environments'")),
        (f"{ST} = 'pending'", f"('not deployed to production yet' || CASE WHEN staging_deployed_at IS NOT NULL "
                              f"THEN ' (' || {staging} || ')' ELSE '' END)"),
        ("staging_deployed_at IS NULL", f"('no successful staging deployment of the change; ' || {DEPLOYED()})"),
        (f"{ST} = 'fail'", f"({staging} || ' is not before ' || {DEPLOYED()})"),
        default=f"({staging} || ', before ' || {DEPLOYED()})")


CONTROLS = [
    control("CC8.1-06", __name__, "cc06_scope", expectations_06, detail_06, detail_sql_06),
    control("CC8.1-07", __name__, "cc07_scope", expectations_07, detail_07, detail_sql_07),
    control("CC8.1-08", __name__, "cc08_scope", expectations_08, detail_08, detail_sql_08),
    control("CC8.1-13", __name__, "cc13_scope", expectations_13, detail_13, detail_sql_13),
]
