"""GitHub repository settings -> rows of ``branch_rules`` and ``environments`` (pure functions).

Classic branch protection (``GET /branches/{b}/protection``) is expressed in the rulesets
vocabulary, next to the rules of ``GET /rules/branches/{b}`` (with enforcement and bypass
actors from their ``/rulesets/{id}``); an environment's 404 is a row saying it does not exist.
"""

from __future__ import annotations

from typing import Any

from ccwatch.ingest.records import RawRecord
from ccwatch.warehouse.normalize.base import Context, NormalizeError, payload_dict, payload_list, split_key


def _rule(repo: str, branch: str, source: str, rid: int, rtype: str, **kw: Any) -> dict[str, Any]:
    row = {"repo": repo, "branch": branch, "source": source, "ruleset_id": rid, "rule_type": rtype,
           "enforcement": "active", "bypass_actors": None, "parameters": None, "detail": None}
    row.update(kw)
    return row


def classic_rule_rows(rec: RawRecord) -> list[dict[str, Any]]:
    """Classic branch protection in the rulesets vocabulary; a row exists only for a rule in force."""
    repo, branch = split_key(rec.natural_key, ":")
    p = rec.payload if isinstance(rec.payload, dict) else {}
    if rec.status_code in (403, 404):
        msg = p.get("message") or ("forbidden" if rec.status_code == 403 else "not found")
        # only GitHub's explicit "Branch not protected" proves absence; any other 403/404 hides it
        rtype = "not_protected" if rec.status_code == 404 and "not protected" in msg.lower() else "unreadable"
        return [_rule(repo, branch, "classic", 0, rtype, enforcement=None, detail=f"HTTP {rec.status_code}: {msg}")]
    if rec.status_code != 200:
        raise NormalizeError(f"github branch_protection {rec.natural_key}: unexpected status {rec.status_code}")
    rows = []
    prr = p.get("required_pull_request_reviews")
    if isinstance(prr, dict):
        params = {"required_approving_review_count": prr.get("required_approving_review_count"),
                  "dismiss_stale_reviews_on_push": bool(prr.get("dismiss_stale_reviews")),
                  "require_code_owner_review": bool(prr.get("require_code_owner_reviews")),
                  "require_last_push_approval": bool(prr.get("require_last_push_approval"))}
        rows.append(_rule(repo, branch, "classic", 0, "pull_request", parameters=params))
    rsc = p.get("required_status_checks")
    if isinstance(rsc, dict):
        checks = rsc.get("checks")
        if checks is None:
            checks = [{"context": c} for c in rsc.get("contexts") or []]
        params = {"required_status_checks": checks, "strict_required_status_checks_policy": bool(rsc.get("strict"))}
        rows.append(_rule(repo, branch, "classic", 0, "required_status_checks", parameters=params))
    if (p.get("enforce_admins") or {}).get("enabled") is True:
        rows.append(_rule(repo, branch, "classic", 0, "enforce_admins"))
    if (p.get("allow_force_pushes") or {}).get("enabled") is False:
        rows.append(_rule(repo, branch, "classic", 0, "non_fast_forward"))
    if (p.get("allow_deletions") or {}).get("enabled") is False:
        rows.append(_rule(repo, branch, "classic", 0, "deletion"))
    return rows


def ruleset_rule_rows(rec: RawRecord, ctx: Context) -> list[dict[str, Any]]:
    """``/rules/branches/{b}`` items, with enforcement and bypass actors from ``/rulesets/{id}``."""
    repo, branch = split_key(rec.natural_key, ":")
    rows: dict[tuple[int, str], dict[str, Any]] = {}
    for item in payload_list(rec):
        rid = int(item.get("ruleset_id") or 0)
        ruleset = ctx.lookup("github", "ruleset", f"{repo}/rulesets/{rid}")
        enforcement, bypass = "active", None  # the endpoint lists rules of active rulesets only
        if isinstance(ruleset, dict):
            enforcement = ruleset.get("enforcement", enforcement)
            if isinstance(ruleset.get("bypass_actors"), list):
                bypass = len(ruleset["bypass_actors"])
        rows[(rid, item["type"])] = _rule(
            repo, branch, "ruleset", rid, item["type"], enforcement=enforcement, bypass_actors=bypass,
            parameters=item.get("parameters"),
            detail=f"{item.get('ruleset_source_type', '')} {item.get('ruleset_source', '')}".strip() or None,
        )
    return list(rows.values())


def environment_row(rec: RawRecord) -> dict[str, Any]:
    repo, name = split_key(rec.natural_key, ":")
    if rec.status_code == 404:
        return {"repo": repo, "name": name, "env_exists": False, "required_reviewers": None, "wait_timer": None,
                "protected_branches": None, "custom_branch_policies": None}
    p = payload_dict(rec)
    reviewers = wait = None
    for rule in p.get("protection_rules") or []:
        if rule.get("type") == "required_reviewers":
            reviewers = len(rule.get("reviewers") or [])
        elif rule.get("type") == "wait_timer":
            wait = rule.get("wait_timer")
    dbp = p.get("deployment_branch_policy") or {}
    return {"repo": repo, "name": p.get("name", name), "env_exists": True, "required_reviewers": reviewers,
            "wait_timer": wait, "protected_branches": dbp.get("protected_branches"),
            "custom_branch_policies": dbp.get("custom_branch_policies")}
