"""The REST double's bodies against GitHub's published OpenAPI description (issue #12).

For every route the connectors call (scripts/cut_github_openapi.py ROUTES), the bodies the double
serves for the demo org (plus rulesets, one of them read-only, and an unreadable protection)
validate against the committed cut of ``@octokit/openapi`` and carry no key the description does
not document; and every field the connectors and normalisers read (:data:`READ`) is described by
the published schema, has its published type, and is present wherever the schema requires it.
``bypass_actors`` is optional in the published ruleset schema ("only returned if the user making
the API request has write access to the ruleset"): the double leaves it out for a read-only ruleset
and the normaliser stores NULL (unknown), never 0.
"""

from __future__ import annotations

import copy
import json
from collections import defaultdict
from typing import Any

import pytest
import requests
from ccwatch.sandbox import SandboxServer
from jsonschema import Draft4Validator

from scripts.cut_github_openapi import ROUTES
from tests.helpers.openapi_bodies import check_body, field_schemas, response_schema, values_at
from tests.helpers.paths import DEMO_SCENARIO

TOKEN = {"Authorization": "token ghp_demo"}
PAY, WEB, LOCKED = "acme/payments-api", "acme/web-frontend", "acme/locked"
R = "GET /repos/{owner}/{repo}"
# Answers GitHub gives that its description does not list, and why they are evidence: checked
# against the error shape GitHub documents for the route's other errors (basic-error).
UNDOCUMENTED_BUT_REAL = {
    (R + "/environments/{environment_name}", "404"): "API-NOTES: 404 for an environment that does not exist",
    (R + "/branches/{branch}/protection", "403"): "API-NOTES: protection needs admin rights to read",
}
ERROR_SCHEMA = (R + "/branches/{branch}/protection", "404")

# The fields ingest/github and warehouse/normalize read from each route's 200 body
# ("[]": each item of a list), checked for presence and type against the published schema.
READ: dict[str, list[str]] = {
    R: [],  # stored as evidence (repo.json) until stop 29 (now a GraphQL node), no field read
    R + "/pulls": ["[].updated_at"],  # conditional._settled
    R + "/pulls/{pull_number}": [
        "number", "title", "user.login", "user.type", "labels[].name", "base.ref", "head.sha", "merge_commit_sha",
        "merged_at", "merged", "merged_by.login", "html_url"],
    R + "/pulls/{pull_number}/reviews": [
        "[].id", "[].user.login", "[].user.type", "[].state", "[].commit_id", "[].submitted_at"],
    R + "/commits": [
        "[].sha", "[].parents[].sha", "[].author.login", "[].committer.login", "[].commit.committer.date",
        "[].commit.author.date", "[].commit.message", "[].html_url"],
    R + "/commits/{ref}/check-runs": [
        "check_runs[].id", "check_runs[].name", "check_runs[].status", "check_runs[].conclusion",
        "check_runs[].started_at", "check_runs[].completed_at", "check_runs[].html_url", "check_runs[].app.id",
        "check_runs[].app.slug"],
    R + "/commits/{ref}/statuses": [
        "[].id", "[].context", "[].state", "[].created_at", "[].target_url", "[].creator.login"],
    R + "/commits/{commit_sha}/pulls": ["[].number", "[].merged_at", "[].base.ref"],
    R + "/deployments": [
        "[].id", "[].node_id", "[].sha", "[].ref", "[].environment", "[].creator.login", "[].creator.type",
        "[].created_at"],
    R + "/deployments/{deployment_id}/statuses": ["[].id", "[].state", "[].creator.login", "[].created_at"],
    R + "/branches/{branch}": ["commit.sha"],
    R + "/branches/{branch}/protection": [
        "required_pull_request_reviews.required_approving_review_count",
        "required_pull_request_reviews.dismiss_stale_reviews",
        "required_pull_request_reviews.require_code_owner_reviews",
        "required_pull_request_reviews.require_last_push_approval",
        "required_status_checks.checks[].context", "required_status_checks.checks[].app_id",
        "required_status_checks.contexts", "required_status_checks.strict", "enforce_admins.enabled",
        "allow_force_pushes.enabled", "allow_deletions.enabled"],
    R + "/rules/branches/{branch}": [
        "[].ruleset_id", "[].type", "[].parameters", "[].ruleset_source_type", "[].ruleset_source"],
    R + "/rulesets/{ruleset_id}": ["enforcement", "bypass_actors"],
    R + "/environments/{environment_name}": [
        "name", "protection_rules[].type", "protection_rules[].reviewers", "protection_rules[].wait_timer",
        "deployment_branch_policy.protected_branches", "deployment_branch_policy.custom_branch_policies"],
}
OPTIONAL_READS = {(R + "/rulesets/{ruleset_id}", "bypass_actors")}  # absent for a read-only token (see above)

RULES = {"required_approving_review_count": 1, "dismiss_stale_reviews_on_push": True,
         "require_code_owner_review": False, "require_last_push_approval": False,
         "required_review_thread_resolution": False}
CHECKS = {"strict_required_status_checks_policy": True,
          "required_status_checks": [{"context": "test", "integration_id": 15368}]}


def scenario() -> dict:
    """The demo org, plus rulesets (7 writable with a bypass actor, 8 read-only) and a repository
    whose protection the token cannot read."""
    sc = copy.deepcopy(json.loads(DEMO_SCENARIO.read_text(encoding="utf-8")))
    repos = sc["github"]["repos"]
    repos[PAY]["rules"]["main"] = [{"type": "pull_request", "ruleset_id": 7, "parameters": RULES},
                                   {"type": "required_status_checks", "ruleset_id": 7, "parameters": CHECKS}]
    repos[PAY]["rulesets"]["7"] = {
        "id": 7, "name": "main rules", "target": "branch", "enforcement": "active",
        "bypass_actors": [{"actor_id": 5, "actor_type": "RepositoryRole", "bypass_mode": "always"}],
        "conditions": {"ref_name": {"include": ["~DEFAULT_BRANCH"], "exclude": []}},
        "rules": [{"type": "pull_request", "parameters": RULES},
                  {"type": "required_status_checks", "parameters": CHECKS}]}
    repos[WEB]["rules"]["main"] = [{"type": "deletion", "ruleset_id": 8}, {"type": "non_fast_forward", "ruleset_id": 8}]
    repos[WEB]["rulesets"]["8"] = {"id": 8, "name": "org baseline", "target": "branch", "enforcement": "active",
                                   "source_type": "Organization", "source": "acme", "read_only": True,
                                   "bypass_actors": [{"actor_id": 1, "actor_type": "OrganizationAdmin",
                                                      "bypass_mode": "always"}],
                                   "rules": [{"type": "deletion"}, {"type": "non_fast_forward"}]}
    repos[PAY]["environments"]["production"]["protection_rules"].append({"type": "wait_timer", "wait_timer": 30})
    repos[LOCKED] = {"id": 812_345_003, "default_branch": "main", "branches": {"main": {"protected": True}},
                     "protection": {"main": "forbidden"}, "commits": repos[WEB]["commits"][:1]}
    return sc


def get(sb, path: str, **params) -> tuple[int, Any]:
    r = requests.get(sb.url + path, params=params, headers=TOKEN, timeout=10)
    return r.status_code, r.json()


def get_all(sb, path: str, **params) -> list:
    out, page = [], 1
    while True:
        r = requests.get(sb.url + path, params={**params, "per_page": 100, "page": page}, headers=TOKEN, timeout=10)
        assert r.status_code == 200, (path, r.text)
        out += r.json()
        if 'rel="next"' not in r.headers.get("Link", ""):
            return out
        page += 1


@pytest.fixture(scope="module")
def bodies() -> dict[tuple[str, str], list]:
    """(route, HTTP status) -> the bodies the double served, fetched as the connectors ask."""
    got: dict[tuple[str, str], list] = defaultdict(list)

    def keep(route: str, status: int, body: Any) -> None:
        got[(route, str(status))].append(body)

    with SandboxServer(scenario()) as sb:
        for full in (PAY, WEB):
            base = f"/repos/{full}"
            keep(R, *get(sb, base))
            pulls = get_all(sb, base + "/pulls", state="closed", base="main", sort="updated", direction="desc")
            keep(R + "/pulls", 200, pulls)
            for p in [p for p in pulls if p["merged_at"]]:
                n, sha = p["number"], p["head"]["sha"]
                keep(R + "/pulls/{pull_number}", *get(sb, f"{base}/pulls/{n}"))
                keep(R + "/pulls/{pull_number}/reviews", 200, get_all(sb, f"{base}/pulls/{n}/reviews"))
                keep(R + "/commits/{ref}/check-runs", *get(sb, f"{base}/commits/{sha}/check-runs", filter="all",
                                                           per_page=100))
                keep(R + "/commits/{ref}/statuses", 200, get_all(sb, f"{base}/commits/{sha}/statuses"))
            commits = get_all(sb, base + "/commits", sha="main")
            keep(R + "/commits", 200, commits)
            for c in commits[:30]:
                keep(R + "/commits/{commit_sha}/pulls", 200, get_all(sb, f"{base}/commits/{c['sha']}/pulls"))
            for env in ("production", "staging"):
                deps = get_all(sb, base + "/deployments", environment=env)
                keep(R + "/deployments", 200, deps)
                for d in deps:
                    keep(R + "/deployments/{deployment_id}/statuses", 200,
                         get_all(sb, f"{base}/deployments/{d['id']}/statuses"))
            keep(R + "/branches/{branch}", *get(sb, base + "/branches/main"))
            keep(R + "/branches/{branch}/protection", *get(sb, base + "/branches/main/protection"))
            rules = get_all(sb, base + "/rules/branches/main")
            keep(R + "/rules/branches/{branch}", 200, rules)
            for rid in sorted({x["ruleset_id"] for x in rules}):
                keep(R + "/rulesets/{ruleset_id}", *get(sb, f"{base}/rulesets/{rid}"))
            for env in ("production", "no-such-environment"):
                keep(R + "/environments/{environment_name}", *get(sb, f"{base}/environments/{env}"))
        keep(R + "/branches/{branch}/protection", *get(sb, f"/repos/{LOCKED}/branches/main/protection"))
    return dict(got)


def test_every_route_the_connectors_call_is_checked(bodies):
    assert sorted({route for route, status in bodies if status == "200"}) == sorted(ROUTES)
    assert set(READ) == set(ROUTES)


@pytest.mark.parametrize("route", ROUTES)
def test_bodies_validate_against_the_published_description(bodies, route):
    problems = defaultdict(int)
    for (r, status), served in bodies.items():
        if r != route:
            continue
        for body in served:
            if (r, status) in UNDOCUMENTED_BUT_REAL:
                schema = response_schema(*ERROR_SCHEMA)
                found = [f"schema: {e.message}" for e in Draft4Validator(schema).iter_errors(body)]
            else:
                found = check_body(route, status, body)
            for p in found:
                problems[f"HTTP {status} {p}"] += 1
    assert dict(problems) == {}


@pytest.mark.parametrize("route", ROUTES)
def test_the_fields_the_connectors_read_are_published_typed_and_present(bodies, route):
    schema = response_schema(route)
    served = bodies[(route, "200")]
    for field in READ[route]:
        path = field.split(".")
        described = field_schemas(schema, path)
        assert described, f"{route} {field}: not in the published schema"
        required = any(req for _, req in described)
        seen = 0
        for body in served:
            for value, present in values_at(body, path):
                if not present:
                    assert not required, f"{route} {field}: required by the published schema, absent"
                    continue
                seen += 1
                assert any(Draft4Validator(s).is_valid(value) for s, _ in described), (
                    f"{route} {field}: {value!r} is not of the published type")
        if (route, field) not in OPTIONAL_READS:
            assert seen, f"{route} {field}: never served, so never checked"


def test_bypass_actors_is_optional_and_absent_for_a_read_only_ruleset(bodies):
    route = R + "/rulesets/{ruleset_id}"
    schema = response_schema(route)
    assert "bypass_actors" in schema["properties"] and "bypass_actors" not in schema["required"]
    by_id = {b["id"]: b for b in bodies[(route, "200")]}
    assert by_id[7]["bypass_actors"] == [{"actor_id": 5, "actor_type": "RepositoryRole", "bypass_mode": "always"}]
    assert "bypass_actors" not in by_id[8]  # the token may read the ruleset but not write it
    assert check_body(route, "200", by_id[8]) == []


def test_a_read_only_ruleset_loads_as_unknown_bypass_never_zero(tmp_path):
    from datetime import UTC, datetime

    from ccwatch.common.endpoints import Endpoint
    from ccwatch.ingest.github.fetch import fetch_github_repo
    from ccwatch.settings import RepoConfig, load_settings
    from ccwatch.warehouse.connection import connect
    from ccwatch.warehouse.store import load_records

    from tests.helpers.paths import CONFIG

    settings = load_settings(CONFIG)
    with SandboxServer(scenario()) as sb:
        ep = Endpoint(sb.url, token="ghp_demo")
        records = [rec for full in (PAY, WEB) for rec in fetch_github_repo(
            settings, ep, datetime(2026, 11, 25, tzinfo=UTC), RepoConfig(repo=full, production_branch="main",
                                                                        production_environments=("production",)))]
    con = connect(str(tmp_path / "w.duckdb"))
    load_records(con, records, settings)
    rows = con.execute("SELECT repo, ruleset_id, rule_type, bypass_actors FROM branch_rules WHERE source = 'ruleset' "
                       "ORDER BY ALL").fetchall()
    con.close()
    assert rows == [(PAY, 7, "pull_request", 1), (PAY, 7, "required_status_checks", 1),
                    (WEB, 8, "deletion", None), (WEB, 8, "non_fast_forward", None)]
