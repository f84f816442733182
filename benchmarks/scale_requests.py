"""Counting a benchmark run's requests from the API double's log (``bench_scale.py``): GitHub
core REST by kind (304s apart: they are free), GraphQL by operation, Jira by kind, and GitHub
requests per repository (REST path, GraphQL owner/name, or a deployment node id's repository)."""

from __future__ import annotations

import re
from collections import Counter

from ccwatch.sandbox import SandboxServer
from ccwatch.sandbox.render import node_id

REST_KINDS = [
    ("pulls list", r"/pulls$"), ("pull", r"/pulls/\d+$"), ("reviews", r"/reviews$"),
    ("check runs", r"/check-runs$"), ("statuses", r"/commits/[^/]+/statuses$|/statuses/[^/]+$"),
    ("commits list", r"/repos/[^/]+/[^/]+/commits$"), ("commit pulls", r"/commits/[^/]+/pulls$"),
    ("deployments list", r"/deployments$"), ("deployment statuses", r"/deployments/\d+/statuses$"),
]
REPO_OF = re.compile(r"/repos/([^/]+/[^/]+)")
# finer REST kinds for the per-repository breakdown (changed vs unchanged repositories)
REST_DETAIL = [
    ("repository", r"/repos/[^/]+/[^/]+$"), ("branch", r"/branches/[^/]+$"), ("protection", r"/protection$"),
    ("rules", r"/rules/branches/"), ("ruleset", r"/rulesets/\d+$"), ("activity", r"/activity$"),
    ("environment", r"/environments/[^/]+$"), ("commit", r"/commits/[0-9a-f]{40}$"), ("compare", r"/compare/"),
    *REST_KINDS,
]



def points_used(server: SandboxServer) -> tuple[int, int]:
    """The double's own rate-limit accounting: (core requests charged, GraphQL points charged)."""
    gql = getattr(server.github, "graphql", None)
    return server.github.used, (gql.snapshot()["used"] if gql is not None else 0)


def node_repos(server: SandboxServer) -> dict[str, str]:
    """GraphQL node id of every deployment -> its repository (to attribute CcwatchDeploymentStatuses)."""
    out = {}
    for full, r in server.github.repos.values():
        for d in r.get("deployments") or []:
            out[node_id("Deployment", int(d["id"]))] = full.lower()
    return out


def classify(requests: list[dict], nodes: dict[str, str] | None = None) -> dict:
    """Request counts: GitHub core REST (by kind; 304 separately), GraphQL (by operation), Jira;
    and GitHub requests per repository (REST path, GraphQL owner/name or deployment node ids; a
    lookup whose node ids belong to several repositories counts as org-wide)."""
    core, free, gql, jira = Counter(), 0, Counter(), Counter()
    per_repo: Counter = Counter()
    per_repo_kind: Counter = Counter()  # (repository or "(org-wide)", kind) -> counted requests
    for r in requests:
        if r["service"] == "jira":
            kind = "search" if "/search" in r["path"] else "changelog" if r["path"].endswith("/changelog") else "other"
            jira[kind] += 1
            continue
        if r["service"] != "github":
            continue
        if r["path"].endswith("/graphql"):
            info = r.get("graphql") or {}
            op = info.get("operationName") or "unnamed"
            gql[op] += 1
            repo = None
            if info.get("owner") and info.get("name"):
                repo = f"{info['owner']}/{info['name']}".lower()
            elif isinstance(info.get("repos"), list) and len(set(info["repos"])) == 1:  # a batch of one repository
                repo = info["repos"][0].lower()
            elif isinstance(info.get("ids"), list) and info["ids"] and nodes:
                owners = {nodes.get(i, "?") for i in info["ids"]}
                repo = owners.pop() if len(owners) == 1 else None  # several repositories: org-wide
            if repo is not None:
                per_repo[repo] += 1
            per_repo_kind[(repo or "(org-wide)", f"GraphQL {op}")] += 1
            continue
        m = REPO_OF.search(r["path"])
        if r["status"] == 304:
            free += 1
            continue
        if m:
            per_repo[m.group(1).lower()] += 1
        core[next((k for k, pat in REST_KINDS if re.search(pat, r["path"])), "repo settings/other")] += 1
        detail = next((k for k, pat in REST_DETAIL if re.search(pat, r["path"])), "other")
        per_repo_kind[(m.group(1).lower() if m else "(org-wide)", f"REST {detail}")] += 1
    return {"github_core": sum(core.values()), "github_304": free, "graphql": sum(gql.values()),
            "jira": sum(jira.values()), "core_by_kind": dict(core), "graphql_by_operation": dict(gql),
            "jira_by_kind": dict(jira), "per_repo": per_repo,
            "per_repo_kind": per_repo_kind}

