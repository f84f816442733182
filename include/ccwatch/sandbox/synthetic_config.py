"""The ccwatch.yaml of a synthetic org (``ccwatch.sandbox.synthetic``): every repository, the
approvers, deployers and identities the generator used, a lookback covering its months."""

from __future__ import annotations

from ccwatch.sandbox.synthetic import BOT, PROJECTS, email, people


def org_config(scenario: dict, lookback_days: int | None = None) -> str:
    """A ccwatch.yaml (include/config/ccwatch.yaml's format) for the synthetic org: every repository."""
    syn = scenario["meta"]["synthetic"]
    devs, leads, ops = people(syn["devs"])
    lookback = lookback_days or int(syn["months"] * 30.44) + 1
    lines = [f"# synthetic org {syn['org']} (ccwatch.sandbox.synthetic, seed {syn['seed']})",
             f"lookback_days: {lookback}", "github:", "  conn_id: github_default", "  repositories:"]
    for name, prof in syn["repos"].items():
        lines.append(f"    - repo: {name}")
        lines.append("      production_branch: main")
        lines.append("      production_environments: [production]")
        if prof["staging"]:
            lines.append("      staging_environments: [staging]")
        lines.append("      required_checks: [test, build]")
    lines += [f'  deploy_automation: ["{BOT}"]', "jira:", "  conn_id: jira_default",
              f"  project_keys: [{', '.join(PROJECTS)}]", "  ticket_key_pattern: '\\b([A-Z][A-Z0-9]+-\\d+)\\b'",
              "  fields:", "    business_justification: Business Justification", "    risk_assessment: Risk Assessment",
              "    testing_plan: Testing Plan", "    postmortem: Post-Mortem", "  required_fields: [Rollback Plan]",
              "  approval_statuses: [Approved]",
              "  emergency: {labels: [emergency], issue_types: [Emergency Change], priorities: []}",
              "  standard_change: {labels: [standard-change]}", "people:",
              f"  change_approvers: [{', '.join(email(x) for x in leads)}]",
              f"  emergency_approvers: [{email('cto')}]",
              f'  authorized_deployers: ["{BOT}", {", ".join(ops)}]', "  identities:"]
    lines += [f"    - {{name: {u.upper()}, github: {u}, jira: {email(u)}}}" for u in devs + ops]
    lines += ["review: {min_approvals: 1, allow_stale_approval: false}", "sod: {allow_self_merge: false}",
              "windows: {deploy_grace_hours: 72, pir_days: 14, emergency_retro_days: 3, postmortem_days: 7}",
              'slack: {conn_id: slack_api_default, channel: "#compliance-alerts"}']
    return "\n".join(lines) + "\n"
