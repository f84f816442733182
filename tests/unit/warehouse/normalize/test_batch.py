"""Raw payloads (real API shapes, trimmed) -> normalised rows."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

import pytest
from ccwatch.ingest.github.history import first_parent_chain
from ccwatch.settings import load_settings
from ccwatch.warehouse.normalize.base import Context, NormalizeError
from ccwatch.warehouse.normalize.batch import normalize_batch
from ccwatch.warehouse.normalize.jira import field_text, flatten_adf, jira_person, resolve_field

from tests.helpers.paths import CONFIG
from tests.helpers.payloads import (
    API,
    CLASSIC,
    FIELDS,
    REPO,
    SHA_A,
    SHA_B,
    SHA_C,
    SHA_D,
    adf,
    commit,
    issue,
    jira_user,
    pull,
    rec,
    user,
)


@pytest.fixture(scope="module")
def settings():
    return load_settings(str(CONFIG))


def rows(batch, table):
    return batch.rows.get(table, [])


def test_pull_and_reviews(settings):
    reviews = [
        {"id": 801, "node_id": "PRR_x", "user": user("bob-rev"), "body": "", "state": "APPROVED",
         "html_url": "h", "pull_request_url": f"{API}/pulls/12", "submitted_at": "2026-11-02T09:00:00Z",
         "commit_id": SHA_B, "author_association": "MEMBER"},
        {"id": 802, "node_id": "PRR_y", "user": user("dependabot[bot]", "Bot"), "body": "", "state": "PENDING",
         "html_url": "h", "pull_request_url": f"{API}/pulls/12", "commit_id": SHA_A},
    ]
    b = normalize_batch([rec("github", "pull", f"{REPO}#12", pull()), rec("github", "reviews", f"{REPO}#12", reviews)],
                        settings)
    [pr] = rows(b, "pull_requests")
    assert pr["labels"] == ["emergency"] and pr["merged_by_login"] == "bob-rev" and pr["author_type"] == "User"
    assert pr["merged_at"] == datetime(2026, 11, 2, 10, 0) and pr["head_sha"] == SHA_B and pr["base_branch"] == "main"
    r1, r2 = rows(b, "reviews")
    assert (r1["reviewer_login"], r1["state"], r1["commit_id"], r1["pr_number"]) == ("bob-rev", "APPROVED", SHA_B, 12)
    assert r2["reviewer_type"] == "Bot" and r2["submitted_at"] is None
    assert b.scopes["reviews"] == [{"repo": REPO, "pr_number": 12}]


def test_checks_and_statuses(settings):
    runs = [{"id": 9001, "head_sha": SHA_B, "name": "test", "status": "completed", "conclusion": "failure",
             "started_at": "2026-11-02T08:00:00Z", "completed_at": "2026-11-02T08:05:00Z", "html_url": "h1",
             "app": {"slug": "github-actions"}}]
    statuses = [{"url": "u", "id": 7001, "state": "success", "description": "ok", "target_url": "https://ci/1",
                 "context": "ci/jenkins", "created_at": "2026-11-02T08:10:00Z", "creator": user("jenkins-bot")}]
    b = normalize_batch([rec("github", "check_runs", f"{REPO}@{SHA_B}", runs),
                         rec("github", "statuses", f"{REPO}@{SHA_B}", statuses)], settings)
    run, st = sorted(rows(b, "checks"), key=lambda r: r["kind"])
    assert (run["kind"], run["name"], run["conclusion"], run["sha"]) == ("check_run", "test", "failure", SHA_B)
    assert (st["kind"], st["name"], st["conclusion"], st["status"]) == ("status", "ci/jenkins", "success", None)
    assert st["completed_at"] == datetime(2026, 11, 2, 8, 10) and st["html_url"] == "https://ci/1"


def test_first_parent_chain_and_pr_numbers(settings):
    # main: A <- C (merge of PR 12, second parent B on the feature branch) <- D (direct push)
    listed = [commit(SHA_D, [SHA_C], "ops-dave"), commit(SHA_C, [SHA_A, SHA_B]), commit(SHA_B, [SHA_A]),
              commit(SHA_A, [])]
    pulls_c = [pull(12)]
    open_pr = dict(pull(13, merged=False), state="open")
    batch = [
        rec("github", "branch", f"{REPO}:main", {"name": "main", "commit": {"sha": SHA_D}, "protected": True}),
        rec("github", "commits", f"{REPO}:main", listed),
        rec("github", "commit_pulls", f"{REPO}@{SHA_C}", pulls_c),
        rec("github", "commit_pulls", f"{REPO}@{SHA_D}", [open_pr]),
        rec("github", "commit_pulls", f"{REPO}@{SHA_A}", []),
    ]
    b = normalize_batch(batch, settings)
    got = [(r["sha"], r["position"], r["parent_sha"], r["pr_numbers"]) for r in rows(b, "commits")]
    assert got == [(SHA_A, 0, None, []), (SHA_C, 1, SHA_A, [12]), (SHA_D, 2, SHA_C, [])]
    assert rows(b, "commits")[2]["author_login"] == "ops-dave"
    # the branch tip decides the line even when the list is not in child-before-parent order
    assert [c["sha"] for c in first_parent_chain(list(reversed(listed)), SHA_D)] == [SHA_A, SHA_C, SHA_D]


@pytest.mark.parametrize("stored_rest_tip", [None, SHA_C])
def test_the_tip_of_the_graphql_node_decides_the_line(settings, stored_rest_tip):
    """(stop 31) The repository's GraphQL node (``productionBranch``, asked every night) holds the tip;
    REST's branch, asked only for its flag, may be an older night's copy and is not read for it."""
    listed = [commit(SHA_D, [SHA_C], "ops-dave"), commit(SHA_C, [SHA_A, SHA_B]), commit(SHA_A, [])]
    node = {"nameWithOwner": REPO, "productionBranch": {"name": "main", "target": {"oid": SHA_D}}}
    batch = [rec("github", "gql_repository", REPO, node), rec("github", "commits", f"{REPO}:main", listed)]
    if stored_rest_tip:
        batch.append(rec("github", "branch", f"{REPO}:main", {"name": "main", "commit": {"sha": stored_rest_tip},
                                                             "protected": False}))
    b = normalize_batch(batch, settings)
    assert [r["sha"] for r in rows(b, "commits")] == [SHA_A, SHA_C, SHA_D]


def test_pr_numbers_count_only_prs_merged_into_the_commits_branch(settings):
    """r2: /commits/{sha}/pulls lists a PR merged into `release` for the commit: it does not cover the
    commit on main (REST ``base.ref``; GraphQL ``baseRefName`` normalised to the same shape)."""
    into_release = dict(pull(14), base=dict(pull(14)["base"], ref="release", label="acme:release"))
    batch = [
        rec("github", "branch", f"{REPO}:main", {"name": "main", "commit": {"sha": SHA_C}, "protected": True}),
        rec("github", "commits", f"{REPO}:main", [commit(SHA_C, [SHA_A]), commit(SHA_A, [])]),
        rec("github", "commit_pulls", f"{REPO}@{SHA_C}", [into_release]),
        rec("github", "gql_commit_pulls", f"{REPO}@{SHA_A}", {
            "oid": SHA_A, "committedDate": "2026-11-01T10:00:00Z", "parents": {"nodes": []},
            "associatedPullRequests": {"nodes": [{"number": 15, "baseRefName": "release",
                                                   "mergedAt": "2026-11-01T10:00:00Z"}]}}),
    ]
    b = normalize_batch(batch, settings)
    assert [(r["sha"], r["pr_numbers"]) for r in rows(b, "commits")] == [(SHA_A, []), (SHA_C, [])]


def activity(i, kind, before, after, ref="refs/heads/main", actor="mallory", at="2026-11-05T22:00:00Z"):
    # item of GET /repos/{o}/{r}/activity (the published Activity schema: every key required)
    return {"id": i, "node_id": "RA_x", "before": before, "after": after, "ref": ref, "timestamp": at,
            "activity_type": kind, "actor": user(actor) if actor else None}


def test_activity_log_rows_and_readability(settings):
    log = [activity(21474844399, "force_push", SHA_C, SHA_D), activity(21474836480, "branch_creation", "0" * 40, SHA_A,
                                                                      actor=None, at="2026-09-01T10:00:00Z"),
           activity(21474840000, "push", SHA_A, SHA_B, ref="refs/heads/feature")]  # another branch: not ours
    b = normalize_batch([rec("github", "activity", f"{REPO}:main", log)], settings)
    got = [(r["activity_id"], r["activity_type"], r["at"], r["actor_login"], r["before_sha"], r["after_sha"])
           for r in rows(b, "branch_activity")]
    assert got == [(21474844399, "force_push", datetime(2026, 11, 5, 22), "mallory", SHA_C, SHA_D),
                   (21474836480, "branch_creation", datetime(2026, 9, 1, 10), None, None, SHA_A)]
    assert rows(b, "branch_activity_reads") == [{"repo": REPO, "branch": "main", "status_code": 200, "detail": None}]
    assert b.scopes["branch_activity"] == [{"repo": REPO, "branch": "main"}]


def test_unreadable_activity_log_keeps_the_stored_entries(settings):
    b = normalize_batch([rec("github", "activity", f"{REPO}:main",
                             {"message": "Resource not accessible by integration", "status": "403"}, 403)], settings)
    assert "branch_activity" not in b.scopes, "a 403 never deletes what an earlier read stored"
    assert rows(b, "branch_activity_reads") == [{"repo": REPO, "branch": "main", "status_code": 403,
                                                 "detail": "HTTP 403: Resource not accessible by integration"}]


def test_activity_entry_without_a_time_is_a_clear_error(settings):
    bad = dict(activity(1, "push", SHA_A, SHA_B), timestamp=None)
    with pytest.raises(NormalizeError, match=r"github activity acme/payments-api:main: an entry has no id"):
        normalize_batch([rec("github", "activity", f"{REPO}:main", [bad])], settings)


def test_a_commit_fetched_alone_joins_the_chain(settings):
    """(r2) main: A <- P (dated before the listing, fetched alone as kind `commit`) <- D."""
    p = dict(commit(SHA_C, [SHA_A], "mallory", date="2026-03-01T10:00:00Z"), stats={"total": 1}, files=[])
    batch = [
        rec("github", "branch", f"{REPO}:main", {"name": "main", "commit": {"sha": SHA_D}, "protected": True}),
        rec("github", "commits", f"{REPO}:main", [commit(SHA_D, [SHA_C]), commit(SHA_A, [])]),
        rec("github", "commit", f"{REPO}@{SHA_C}", p),
    ]
    got = [(r["sha"], r["position"], r["author_login"]) for r in rows(normalize_batch(batch, settings), "commits")]
    assert got == [(SHA_A, 0, "carol-dev"), (SHA_C, 1, "mallory"), (SHA_D, 2, "carol-dev")]


def test_deployments_and_statuses(settings):
    deps = [{"url": "u", "id": 3001, "sha": SHA_C, "ref": "main", "task": "deploy", "environment": "production",
             "creator": user("github-actions[bot]", "Bot"), "created_at": "2026-11-03T10:00:00Z"}]
    sts = [{"url": "u", "id": 4002, "state": "success", "creator": user("github-actions[bot]", "Bot"),
            "created_at": "2026-11-03T10:05:00Z", "environment": "production"},
           {"url": "u", "id": 4001, "state": "in_progress", "creator": user("github-actions[bot]", "Bot"),
            "created_at": "2026-11-03T10:01:00Z"}]
    b = normalize_batch([rec("github", "deployments", f"{REPO}:production", deps),
                         rec("github", "deployment_statuses", f"{REPO}/deployments/3001", sts)], settings)
    [d] = rows(b, "deployments")
    assert (d["deployment_id"], d["creator_type"], d["environment"]) == (3001, "Bot", "production")
    assert [s["state"] for s in rows(b, "deployment_statuses")] == ["success", "in_progress"]
    assert b.scopes["deployment_statuses"] == [{"repo": REPO, "deployment_id": 3001}]


def test_classic_protection_mapping(settings):
    b = normalize_batch([rec("github", "branch_protection", f"{REPO}:main", CLASSIC)], settings)
    by_type = {r["rule_type"]: r for r in rows(b, "branch_rules")}
    assert set(by_type) == {"pull_request", "required_status_checks", "non_fast_forward"}  # admins not enforced, deletion allowed
    assert by_type["pull_request"]["parameters"]["required_approving_review_count"] == 2
    assert by_type["pull_request"]["parameters"]["dismiss_stale_reviews_on_push"] is False
    assert by_type["required_status_checks"]["parameters"]["required_status_checks"] == [{"context": "test", "app_id": 15368}]
    assert all(r["source"] == "classic" and r["ruleset_id"] == 0 for r in by_type.values())


@pytest.mark.parametrize("status,body,rtype", [
    (404, {"message": "Branch not protected", "documentation_url": "https://docs.github.com/rest"}, "not_protected"),
    (403, {"message": "Resource not accessible by integration", "status": "403"}, "unreadable"),
])
def test_classic_protection_404_403_are_data(settings, status, body, rtype):
    b = normalize_batch([rec("github", "branch_protection", f"{REPO}:main", body, status)], settings)
    [r] = rows(b, "branch_rules")
    assert r["rule_type"] == rtype and body["message"] in r["detail"] and str(status) in r["detail"]


def test_ruleset_rules_take_enforcement_and_bypass_from_ruleset(settings):
    rules = [  # GET /rules/branches/main
        {"type": "pull_request", "ruleset_source_type": "Repository", "ruleset_source": REPO, "ruleset_id": 7,
         "parameters": {"required_approving_review_count": 1, "dismiss_stale_reviews_on_push": True,
                        "require_code_owner_review": False, "require_last_push_approval": False,
                        "required_review_thread_resolution": False}},
        {"type": "deletion", "ruleset_source_type": "Organization", "ruleset_source": "acme", "ruleset_id": 9},
    ]
    ruleset7 = {"id": 7, "name": "main", "target": "branch", "source_type": "Repository", "source": REPO,
                "enforcement": "active", "bypass_actors": [{"actor_id": 5, "actor_type": "RepositoryRole",
                                                             "bypass_mode": "always"}],
                "conditions": {"ref_name": {"include": ["~DEFAULT_BRANCH"], "exclude": []}}, "rules": []}
    b = normalize_batch([rec("github", "branch_rules", f"{REPO}:main", rules),
                         rec("github", "ruleset", f"{REPO}/rulesets/7", ruleset7)], settings)
    by_id = {r["ruleset_id"]: r for r in rows(b, "branch_rules")}
    assert by_id[7]["bypass_actors"] == 1 and by_id[7]["parameters"]["dismiss_stale_reviews_on_push"] is True
    assert by_id[9]["bypass_actors"] is None and by_id[9]["enforcement"] == "active"  # org ruleset not readable


def test_environments(settings):
    env = {"id": 1, "name": "production", "url": "u", "html_url": "h",
           "protection_rules": [{"id": 3, "type": "wait_timer", "wait_timer": 30},
                                {"id": 4, "type": "required_reviewers", "prevent_self_review": True,
                                 "reviewers": [{"type": "User", "reviewer": user("alice-lead")},
                                               {"type": "Team", "reviewer": {"id": 1, "slug": "ops"}}]},
                                {"id": 5, "type": "branch_policy"}],
           "deployment_branch_policy": {"protected_branches": True, "custom_branch_policies": False}}
    b = normalize_batch([rec("github", "environment", f"{REPO}:production", env),
                         rec("github", "environment", f"{REPO}:staging",
                             {"message": "Not Found", "documentation_url": "d"}, 404)], settings)
    envs = {r["name"]: r for r in rows(b, "environments")}
    assert envs["production"]["required_reviewers"] == 2 and envs["production"]["protected_branches"] is True
    assert envs["staging"]["env_exists"] is False


def test_ticket_fields_by_name_adf_and_required(settings):
    b = normalize_batch([rec("jira", "fields", "fields", FIELDS),
                         rec("jira", "issue", "PAY-7", issue(rollback=adf("git revert", "redeploy")))], settings)
    [t] = rows(b, "tickets")
    assert t["business_justification"] == "Customers asked\nfor SSO"
    assert t["risk_assessment"] == "Low: behind a flag" and t["testing_plan"] is None and t["postmortem"] is None
    assert t["required_fields"] == {"Rollback Plan": "git revert\nredeploy"}
    assert (t["status"], t["status_category"], t["reporter"]) == ("Done", "done", "carol@acme.example")
    assert t["updated"] == datetime(2026, 11, 10, 11, 30)  # +0100 -> UTC
    assert t["browse_url"] == "https://acme.atlassian.net/browse/PAY-7" and t["ticket_exists"] is True


def test_ambiguous_or_unknown_field_name_names_the_config_key(settings):
    dup = FIELDS + [{"id": "customfield_10099", "name": "Risk Assessment", "custom": True}]
    with pytest.raises(NormalizeError, match=r"jira\.fields\.risk_assessment.*ambiguous.*customfield_10011"):
        normalize_batch([rec("jira", "fields", "fields", dup), rec("jira", "issue", "PAY-7", issue())], settings)
    s2 = replace(settings, jira=replace(settings.jira, required_fields=("Rollback Plan", "Nope")))
    with pytest.raises(NormalizeError, match=r"jira\.required_fields\[1\].*'Nope'"):
        normalize_batch([rec("jira", "fields", "fields", FIELDS), rec("jira", "issue", "PAY-7", issue())], s2)
    assert resolve_field("k", "customfield_10099", dup) == "customfield_10099"  # an id is never ambiguous


def test_missing_ticket(settings):
    body = {"errorMessages": ["An issue with key 'PAY-999' does not exist for field 'key'."], "errors": {}}
    b = normalize_batch([rec("jira", "issue_missing", "PAY-999", body, 400)], settings)
    [t] = rows(b, "tickets")
    assert t["ticket_exists"] is False and t["project"] == "PAY"


def test_changelog_transitions_and_field_changes(settings):
    hist = [  # values of GET /rest/api/3/issue/PAY-7/changelog, oldest first
        {"id": "10001", "author": jira_user(account="557058:alice"), "created": "2026-11-01T10:00:00.000+0000",
         "items": [{"field": "status", "fieldtype": "jira", "fieldId": "status", "from": "3", "fromString": "In Review",
                    "to": "10005", "toString": "Approved"}]},
        {"id": "10002", "author": jira_user(email="carol@acme.example"), "created": "2026-11-05T10:00:00.000+0000",
         "items": [{"field": "Post-Mortem", "fieldtype": "custom", "fieldId": "customfield_10013", "from": None,
                    "fromString": None, "to": None, "toString": "root cause: x"},
                   {"field": "status", "fieldtype": "jira", "fieldId": "status", "from": "10005",
                    "fromString": "Approved", "to": "10002", "toString": "Done"}]},
    ]
    ctx = Context(status_categories={"10005": "indeterminate"})
    b = normalize_batch([rec("jira", "issue", "PAY-7", issue()), rec("jira", "fields", "fields", FIELDS),
                         rec("jira", "changelog", "PAY-7", hist)], settings, ctx)
    tr = rows(b, "ticket_transitions")
    assert [(t["to_status"], t["to_category"], t["author"]) for t in tr] == [
        ("Approved", "indeterminate", "557058:alice"), ("Done", "done", "carol@acme.example")]
    [fc] = rows(b, "ticket_field_changes")
    assert (fc["field"], fc["field_id"], fc["to_string"], fc["at"]) == (
        "Post-Mortem", "customfield_10013", "root cause: x", datetime(2026, 11, 5, 10, 0))


def test_transition_category_from_the_status_list(settings):
    # GET /rest/api/2/status items: categories of statuses no loaded issue is in right now
    statuses = [{"self": "s", "description": "", "iconUrl": "i", "name": "Closed", "id": "6",
                 "statusCategory": {"self": "s", "id": 3, "key": "done", "colorName": "green", "name": "Done"}}]
    hist = [{"id": "1", "author": jira_user(name="jdoe"), "created": "2026-11-01T10:00:00.000+0000",
             "items": [{"field": "status", "fieldtype": "jira", "from": "3", "fromString": "Open", "to": "6",
                        "toString": "Closed"}]}]
    b = normalize_batch([rec("jira", "statuses", "statuses", statuses), rec("jira", "changelog", "OPS-1", hist)],
                        settings)
    assert [(t["to_status"], t["to_category"], t["author"]) for t in rows(b, "ticket_transitions")] == [
        ("Closed", "done", "jdoe")]


def test_jira_person_and_field_text():
    assert jira_person(jira_user(email="a@x", account="acc")) == "a@x"
    assert jira_person(jira_user(account="acc")) == "acc"
    assert jira_person(jira_user(name="jdoe")) == "jdoe"
    assert field_text({"self": "s", "value": "High", "id": "1"}) == "High"
    assert field_text("  ") is None and field_text(None) is None
    doc = {"type": "doc", "version": 1, "content": [
        {"type": "heading", "attrs": {"level": 2}, "content": [{"type": "text", "text": "Plan"}]},
        {"type": "bulletList", "content": [
            {"type": "listItem", "content": [{"type": "paragraph", "content": [
                {"type": "text", "text": "ask "}, {"type": "mention", "attrs": {"id": "1", "text": "@Alice"}}]}]}]},
        {"type": "paragraph", "content": [{"type": "text", "text": "a"}, {"type": "hardBreak"},
                                          {"type": "text", "text": "b", "marks": [{"type": "strong"}]}]}]}
    assert flatten_adf(doc) == "Plan\nask @Alice\na\nb"


def test_malformed_payload_is_a_clear_error(settings):
    with pytest.raises(NormalizeError, match=r"reviews acme/payments-api#12"):
        normalize_batch([rec("github", "reviews", f"{REPO}#12", {"message": "oops"})], settings)
