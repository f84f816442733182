"""GitHub REST v3 double, repository settings routes: branches, branch protection, rules,
rulesets and environments.

A mixin of :class:`ccwatch.sandbox.github.GithubApi`: it relies on the class's
``branch_head``, ``commit_index`` and ``paginate``.
"""

from __future__ import annotations

from ccwatch.sandbox.github_http import DOCS, gh_error, not_found
from ccwatch.sandbox.http import json_response
from ccwatch.sandbox.render import fill_protection_urls


class ProtectionRoutes:
    # ------------------------------------------------------------------ branches, protection, rules
    def _branch_exists(self, r, b):
        return b in (r.get("branches") or {}) or b == r.get("default_branch", "main") or self.branch_head(r, b) is not None

    def r_branch(self, req, ctx, full, r, b):
        if not self._branch_exists(r, b):
            return gh_error(404, "Branch not found", f"{DOCS}/branches/branches#get-a-branch")
        head = self.branch_head(r, b)
        c = self.commit_index(r).get(head or "") or {"sha": head or "0" * 40, "parents": [], "date": None}
        info = (r.get("branches") or {}).get(b) or {}
        prot = (r.get("protection") or {}).get(b)
        protected = bool(info.get("protected", isinstance(prot, dict) or bool((r.get("rules") or {}).get(b))))
        url = f"{ctx.api}/repos/{full}/branches/{b}"
        checks = (prot or {}).get("required_status_checks") if isinstance(prot, dict) else None
        return json_response({
            "name": b, "commit": ctx.commit(full, c),
            "_links": {"self": url, "html": f"{ctx.html}/{full}/tree/{b}"}, "protected": protected,
            "protection": {"enabled": protected, "required_status_checks": {
                "enforcement_level": "non_admins" if checks else "off",
                "contexts": (checks or {}).get("contexts", []), "checks": (checks or {}).get("checks", [])}},
            "protection_url": f"{url}/protection",
        })

    def r_protection(self, req, ctx, full, r, b):
        doc = f"{DOCS}/branches/branch-protection#get-branch-protection"
        if not self._branch_exists(r, b):
            return gh_error(404, "Branch not found", doc)
        prot = (r.get("protection") or {}).get(b)
        if prot == "forbidden":
            return gh_error(403, "Resource not accessible by integration", doc)
        if not isinstance(prot, dict):
            return gh_error(404, "Branch not protected", doc)
        return json_response(fill_protection_urls(prot, f"{ctx.api}/repos/{full}/branches/{b}/protection"))

    def r_branch_rules(self, req, ctx, full, r, b):
        rows = []
        for rule in (r.get("rules") or {}).get(b, []):
            rule = dict(rule)
            rule.setdefault("ruleset_source_type", "Repository")
            rule.setdefault("ruleset_source", full)
            rows.append(rule)
        return self.paginate(req, rows)

    def r_rulesets(self, req, ctx, full, r):
        rows = [ctx.ruleset(full, rs, full=False) for _, rs in sorted((r.get("rulesets") or {}).items(), key=lambda kv: int(kv[0]))]
        return self.paginate(req, rows)

    def r_ruleset(self, req, ctx, full, r, id):
        rs = (r.get("rulesets") or {}).get(str(int(id)))
        if not rs:
            return not_found()
        # (r2) "bypass_actors is only returned if the user making the API request has write access
        # to the ruleset": a token without admin on the repository (its ``permissions``) cannot write it
        if (r.get("permissions") or {}).get("admin", True) is False:
            rs = {**rs, "read_only": True}
        return json_response(ctx.ruleset(full, rs, full=True))

    # ------------------------------------------------------------------ environments
    def r_environments(self, req, ctx, full, r):
        rows = [ctx.environment(full, n, e or {}) for n, e in (r.get("environments") or {}).items()]
        return self.paginate(req, rows, wrap=lambda chunk: {"total_count": len(rows), "environments": chunk})

    def r_environment(self, req, ctx, full, r, name):
        envs = r.get("environments") or {}
        if name not in envs:
            return gh_error(404, "Not Found", f"{DOCS}/deployments/environments#get-an-environment")
        return json_response(ctx.environment(full, name, envs[name] or {}))
