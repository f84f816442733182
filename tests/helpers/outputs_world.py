"""Test data for the user-facing outputs (report, evidence, Slack): a warehouse with
control_results of two run dates, change_facts / repo_facts as built by warehouse/facts.py,
``change_deployments`` computed by the product's SQL from the world's PRs, commits and
deployments, and raw payloads in the real GitHub REST / Jira REST shapes."""

from __future__ import annotations

import atexit
import json
import shutil
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from ccwatch.settings import load_settings
from ccwatch.warehouse import connection

AS_OF = datetime(2026, 11, 25, tzinfo=UTC)
PREV = datetime(2026, 11, 24, tzinfo=UTC)
HOSTILE = "<script>alert(1)</script> <!channel> <http://evil.example|click> & \"q\" [PAY-8]"
SECRET = "ghp_SECRETtoken0123456789abcdef"

M12, H12 = "a" * 40, "b" * 40
M13, H13 = "c" * 40, "d" * 40
LATER = "e" * 40
PUSH = "f0" * 20
GH = "https://github.com"
API = "https://api.github.com/repos"
JIRA = "https://acme.atlassian.net"

CONTROLS = [f"CC8.1-{i:02d}" for i in range(1, 14) if i not in (11, 12)]


CONFIG = """\
lookback_days: 90
github:
  conn_id: github_default
  repositories:
    - repo: acme/payments-api
      production_branch: main
      production_environments: [production]
      staging_environments: [staging]
      required_checks: [test, build]
    - repo: acme/web-frontend
      production_branch: main
      production_environments: [production]
  deploy_automation: ["github-actions[bot]"]
jira:
  conn_id: jira_default
  project_keys: [PAY, WEB, OPS]
  ticket_key_pattern: '\\b([A-Z][A-Z0-9]+-\\d+)\\b'
  fields:
    business_justification: Business Justification
    risk_assessment: Risk Assessment
    testing_plan: Testing Plan
    postmortem: Post-Mortem
  required_fields: [Rollback Plan]
  approval_statuses: [Approved]
  emergency: {labels: [emergency], issue_types: [Emergency Change], priorities: []}
  standard_change: {labels: [standard-change]}
people:
  change_approvers: [alice@acme.example, erin@acme.example]
  emergency_approvers: [cto@acme.example]
  authorized_deployers: ["github-actions[bot]", ops-dave]
  identities:
    - {name: Carol Dev, github: carol-dev, jira: carol@acme.example}
    - {name: Dave Ops, github: ops-dave, jira: dave@acme.example}
review: {min_approvals: 1, allow_stale_approval: false}
sod: {allow_self_merge: false}
windows: {deploy_grace_hours: 72, pir_days: 14, emergency_retro_days: 3, postmortem_days: 7}
slack: {conn_id: slack_api_default, channel: "#compliance-alerts"}
"""
_SETTINGS = None


def settings():
    """Settings of a config private to these tests (the shared default config changes with the demo)."""
    global _SETTINGS
    if _SETTINGS is None:
        folder = tempfile.mkdtemp(prefix="ccwatch-outputs-")
        atexit.register(shutil.rmtree, folder, True)
        path = Path(folder) / "ccwatch.yaml"
        path.write_text(CONFIG, encoding="utf-8")
        _SETTINGS = load_settings(path)
    return _SETTINGS


def _user(login, uid=101, kind="User"):
    return {"login": login, "id": uid, "node_id": "MDQ6VXNlcjE=", "type": kind,
            "html_url": f"{GH}/{login}", "site_admin": False}


def _pull(number, title, head, merge, merged_at, author="carol-dev"):
    return {
        "url": f"{API}/acme/payments-api/pulls/{number}", "id": 900 + number, "number": number,
        "html_url": f"{GH}/acme/payments-api/pull/{number}", "state": "closed", "title": title,
        "user": _user(author), "body": "", "labels": [], "created_at": "2026-11-19T09:00:00Z",
        "closed_at": merged_at, "merged_at": merged_at, "merge_commit_sha": merge,
        "head": {"label": "acme:feat", "ref": "feat/x", "sha": head, "user": _user("acme", 1, "Organization")},
        "base": {"label": "acme:main", "ref": "main", "sha": "0" * 40},
        "merged": True, "merged_by": _user("bob-rev", 102), "draft": False,
    }


def _deployment(did, sha, env, created, creator="github-actions[bot]"):
    return {"url": f"{API}/acme/payments-api/deployments/{did}", "id": did, "node_id": "DE_kwDO", "sha": sha,
            "ref": "main", "task": "deploy", "payload": {}, "original_environment": env, "environment": env,
            "description": None, "creator": _user(creator, 41898282, "Bot"), "created_at": created,
            "updated_at": created, "statuses_url": f"{API}/acme/payments-api/deployments/{did}/statuses",
            "repository_url": f"{API}/acme/payments-api", "transient_environment": False,
            "production_environment": env == "production"}


def _dstatus(sid, did, state, created):
    return {"url": f"{API}/acme/payments-api/deployments/{did}/statuses/{sid}", "id": sid, "state": state,
            "creator": _user("github-actions[bot]", 41898282, "Bot"), "description": "", "environment": "production",
            "target_url": "", "created_at": created, "updated_at": created,
            "deployment_url": f"{API}/acme/payments-api/deployments/{did}"}


def raw_payloads():
    """(source, kind, natural_key, url, fetched_at, status_code, payload) tuples."""
    f = "2026-11-25T00:05:00"
    pr = "acme/payments-api"
    deps = [_deployment(3001, M12, "production", "2026-11-20T11:00:00Z"),
            _deployment(3002, LATER, "production", "2026-11-20T12:00:00Z"),
            _deployment(3003, LATER, "production", "2026-11-21T12:00:00Z"),
            _deployment(3009, LATER, "production", "2026-11-26T12:00:00Z")]  # after as-of: not yet happened
    recs = [
        ("github", "pull", f"{pr}#12", f"{API}/{pr}/pulls/12", f, 200,
         _pull(12, "FEAT: add login [PAY-7]", H12, M12, "2026-11-20T10:00:00Z")),
        ("github", "reviews", f"{pr}#12", f"{API}/{pr}/pulls/12/reviews?per_page=100", f, 200,
         [{"id": 801, "node_id": "PRR_kw", "user": _user("carol-dev"), "body": "", "state": "COMMENTED",
           "html_url": f"{GH}/{pr}/pull/12#pullrequestreview-801", "commit_id": H12,
           "submitted_at": "2026-11-19T12:00:00Z", "author_association": "MEMBER"}]),
        ("github", "check_runs", f"{pr}@{H12}", f"{API}/{pr}/commits/{H12}/check-runs?filter=all", f, 200,
         [{"id": 9001, "head_sha": H12, "name": "test", "status": "completed", "conclusion": "success",
           "started_at": "2026-11-19T09:10:00Z", "completed_at": "2026-11-19T09:20:00Z",
           "app": {"slug": "github-actions"}}]),
        ("github", "statuses", f"{pr}@{H12}", f"{API}/{pr}/commits/{H12}/statuses", f, 200, []),
        ("github", "pull", f"{pr}#13", f"{API}/{pr}/pulls/13?access_token={SECRET}", f, 200,
         _pull(13, HOSTILE, H13, M13, "2026-11-24T10:00:00Z")),
        ("github", "reviews", f"{pr}#13", f"{API}/{pr}/pulls/13/reviews", f, 200, []),
        ("github", "deployments", f"{pr}:production", f"{API}/{pr}/deployments?environment=production", f, 200, deps),
        ("github", "deployments", f"{pr}:staging", f"{API}/{pr}/deployments?environment=staging", f, 200,
         [_deployment(2001, M12, "staging", "2026-11-20T10:30:00Z")]),
        ("github", "deployment_statuses", f"{pr}/deployments/2001", f"{API}/{pr}/deployments/2001/statuses", f, 200,
         [_dstatus(5001, 2001, "success", "2026-11-20T10:35:00Z")]),
        ("github", "deployment_statuses", f"{pr}/deployments/3001", f"{API}/{pr}/deployments/3001/statuses", f, 200,
         [_dstatus(4002, 3001, "failure", "2026-11-20T11:05:00Z"), _dstatus(4001, 3001, "in_progress",
                                                                            "2026-11-20T11:01:00Z")]),
        ("github", "deployment_statuses", f"{pr}/deployments/3002", f"{API}/{pr}/deployments/3002/statuses", f, 200,
         [_dstatus(4004, 3002, "success", "2026-11-20T12:05:00Z")]),
        ("github", "deployment_statuses", f"{pr}/deployments/3003", f"{API}/{pr}/deployments/3003/statuses", f, 200,
         [_dstatus(4006, 3003, "success", "2026-11-21T12:05:00Z")]),
        ("jira", "issue", "PAY-7", f"{JIRA}/rest/api/2/search/jql", f, 200,
         {"id": "10007", "key": "PAY-7", "self": f"{JIRA}/rest/api/2/issue/10007",
          "fields": {"summary": "Add login", "status": {"name": "Done", "statusCategory": {"key": "done"}},
                     "issuetype": {"name": "Story"}, "labels": [], "customfield_10010": "Needed for SSO"}}),
        ("jira", "changelog", "PAY-7", f"{JIRA}/rest/api/2/issue/PAY-7/changelog", f, 200,
         [{"id": "10001", "author": {"accountId": "5b10ac8d82e05b22cc7d4ef5", "emailAddress": "alice@acme.example",
                                     "displayName": "Alice"}, "created": "2026-11-19T15:00:00.000+0000",
           "items": [{"field": "status", "fieldtype": "jira", "from": "3", "fromString": "In Review",
                      "to": "10001", "toString": "Approved"}]}]),
        ("jira", "issue_missing", "PAY-8", f"{JIRA}/rest/api/2/issue/PAY-8", f, 404,
         {"errorMessages": ["Issue does not exist or you do not have permission to see it."], "errors": {}}),
        ("github", "commits", "acme/web-frontend:main", f"{API}/acme/web-frontend/commits?sha=main", f, 200,
         [{"sha": PUSH, "commit": {"message": "hotfix", "author": {"name": "Dave", "date": "2026-11-23T08:00:00Z"}},
           "author": _user("ops-dave", 104), "committer": _user("ops-dave", 104), "parents": [{"sha": "1" * 40}],
           "html_url": f"{GH}/acme/web-frontend/commit/{PUSH}"}]),
        ("github", "commit_pulls", f"acme/web-frontend@{PUSH}", f"{API}/acme/web-frontend/commits/{PUSH}/pulls", f, 200, []),
        ("github", "repo", pr, f"{API}/{pr}", f, 200, {"id": 5001, "full_name": pr, "default_branch": "main"}),
        ("github", "branch_protection", f"{pr}:main", f"{API}/{pr}/branches/main/protection", f, 404,
         {"message": "Branch not protected", "documentation_url": "https://docs.github.com/rest", "status": "404"}),
        ("github", "branch_rules", f"{pr}:main", f"{API}/{pr}/rules/branches/main", f, 200,
         [{"type": "pull_request", "ruleset_source_type": "Repository", "ruleset_source": pr, "ruleset_id": 7,
           "parameters": {"required_approving_review_count": 1, "dismiss_stale_reviews_on_push": True}}]),
        ("github", "ruleset", f"{pr}/rulesets/7", f"{API}/{pr}/rulesets/7", f, 200,
         {"id": 7, "name": "main", "target": "branch", "enforcement": "active", "bypass_actors": []}),
        ("github", "environment", f"{pr}:production", f"{API}/{pr}/environments/production", f, 200,
         {"id": 1, "name": "production", "protection_rules": [], "deployment_branch_policy": None}),
        ("github", "activity", f"{pr}:main", f"{API}/{pr}/activity?ref=main&per_page=100", f, 200,
         [{"id": 21474844399, "node_id": "RA_kw", "before": LATER, "after": M13, "ref": "refs/heads/main",
           "timestamp": "2026-11-24T10:00:00Z", "activity_type": "pr_merge", "actor": _user("bob-rev", 102)}]),
    ]
    return recs


def change_rows():
    base = {"deployer": None, "deployed_at": None, "ticket_url": None, "pr_url": None, "number": None,
            "ticket_key": None}
    return [
        dict(base, change_id="acme/payments-api#12", repo="acme/payments-api", change_kind="pr", number=12, sha=M12,
             title="FEAT: add login [PAY-7]", author="carol-dev", merged_at=datetime(2026, 11, 20, 10),
             merged_by="bob-rev", ticket_key="PAY-7", deployed_at=datetime(2026, 11, 20, 12),
             deployer="github-actions[bot]", category="normal", pr_url=f"{GH}/acme/payments-api/pull/12",
             ticket_url=f"{JIRA}/browse/PAY-7"),
        dict(base, change_id="acme/payments-api#13", repo="acme/payments-api", change_kind="pr", number=13, sha=M13,
             title=HOSTILE, author="mallory<b>", merged_at=datetime(2026, 11, 24, 10), merged_by="bob-rev",
             ticket_key="PAY-8", category="normal", pr_url=f"{GH}/acme/payments-api/pull/13",
             ticket_url="javascript:alert(1)"),
        dict(base, change_id=f"acme/web-frontend@{PUSH}", repo="acme/web-frontend", change_kind="direct_push",
             sha=PUSH, title="hotfix", author="ops-dave", merged_at=datetime(2026, 11, 23, 8), merged_by="ops-dave",
             category="normal"),
    ]


def result_rows(as_of=AS_OF):
    d = as_of.replace(tzinfo=None)
    out = []
    for c in CONTROLS:
        status, detail = "pass", "ok"
        if c == "CC8.1-03":
            status, detail = "fail", "no APPROVED review by anyone but carol-dev (1 review: carol-dev COMMENTED)"
        if c == "CC8.1-08":
            status, detail = "pending", "deployed 2026-11-20T12:00Z; ticket not Done yet"
        out.append((d, "acme/payments-api#12", "acme/payments-api", c, status, detail))
        status, detail = "pass", "ok"
        if c == "CC8.1-01":
            status, detail = "fail", f"ticket PAY-8 does not exist in Jira; title {HOSTILE}"
        if c in ("CC8.1-06", "CC8.1-07"):
            status, detail = "pending", "not deployed yet"
        out.append((d, "acme/payments-api#13", "acme/payments-api", c, status, detail))
        status = "fail" if c == "CC8.1-10" else "not_applicable"
        detail = f"commit {PUSH[:7]} pushed by ops-dave without a pull request" if c == "CC8.1-10" else "direct push"
        out.append((d, f"acme/web-frontend@{PUSH}", "acme/web-frontend", c, status, detail))
    out += [(d, "acme/payments-api", "acme/payments-api", "CC8.1-11", "fail", "classic protection: Branch not protected"),
            (d, "acme/payments-api", "acme/payments-api", "CC8.1-12", "pass", "production: branch policy"),
            (d, "acme/web-frontend", "acme/web-frontend", "CC8.1-11", "pass", "protected"),
            (d, "acme/web-frontend", "acme/web-frontend", "CC8.1-12", "fail", "production: environment missing")]
    return out


def build(con=None, with_results=True):
    con = con or connection.connect(":memory:")
    con.executemany("INSERT INTO raw_payloads VALUES (?, ?, ?, ?, ?, NULL, ?, ?)",
                    [(s, k, n, u, f, c, json.dumps(p)) for s, k, n, u, f, c, p in raw_payloads()])
    con.execute("""CREATE OR REPLACE TABLE change_facts (change_id VARCHAR, repo VARCHAR, change_kind VARCHAR,
        number INTEGER, sha VARCHAR, title VARCHAR, author VARCHAR, merged_at TIMESTAMP, merged_by VARCHAR,
        ticket_key VARCHAR, deployed_at TIMESTAMP, deployer VARCHAR, category VARCHAR, pr_url VARCHAR,
        ticket_url VARCHAR, extra_col VARCHAR)""")
    cols = ["change_id", "repo", "change_kind", "number", "sha", "title", "author", "merged_at", "merged_by",
            "ticket_key", "deployed_at", "deployer", "category", "pr_url", "ticket_url"]
    con.executemany(f"INSERT INTO change_facts ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
                    [[r[c] for c in cols] for r in change_rows()])
    con.execute("CREATE OR REPLACE TABLE repo_facts (change_id VARCHAR, repo VARCHAR, production_branch VARCHAR)")
    con.executemany("INSERT INTO repo_facts VALUES (?, ?, 'main')",
                    [("acme/payments-api", "acme/payments-api"), ("acme/web-frontend", "acme/web-frontend")])
    con.executemany("INSERT INTO commits (repo, branch, sha, position, html_url) VALUES (?, 'main', ?, ?, ?)",
                    [("acme/payments-api", M12, 0, None), ("acme/payments-api", M13, 2, None),
                     ("acme/payments-api", LATER, 1, None),
                     ("acme/web-frontend", PUSH, 0, f"{GH}/acme/web-frontend/commit/{PUSH}")])
    change_deployments(con)
    if with_results:
        set_results(con, AS_OF, result_rows(AS_OF))
        prev = [r for r in result_rows(PREV) if r[1] != "acme/payments-api#13"]
        set_results(con, PREV, [(r[0], r[1], r[2], r[3], "pass", "ok") if r[3] == "CC8.1-03" else r for r in prev])
    return con


FIRST_PARENT = {"acme/payments-api": [(M12, [12]), (LATER, [14]), (M13, [13])],  # LATER: a PR of no window
                "acme/web-frontend": [(PUSH, [])]}


def change_deployments(con) -> None:
    """``change_deployments`` as warehouse/facts.py builds it for this world: the product's SQL on a
    scratch warehouse holding the world's PRs, first-parent commits and the deployments and
    statuses of raw_payloads() (#12: failed 3001 on its merge commit, then successful 3002 on a
    later commit, not 3003 after the first success; staging 2001; nothing carries #13)."""
    from ccwatch.warehouse.facts import build_base_facts

    scratch = connection.connect(":memory:")
    try:
        for c in change_rows():
            if c["change_kind"] == "pr":
                scratch.execute("INSERT INTO pull_requests (repo, number, title, base_branch, merge_commit_sha, "
                                "merged_at) VALUES (?, ?, ?, 'main', ?, ?)",
                                [c["repo"], c["number"], c["title"], c["sha"], c["merged_at"]])
        for repo, line in FIRST_PARENT.items():
            for pos, (sha, prs) in enumerate(line):
                scratch.execute("INSERT INTO commits (repo, branch, sha, position, committed_at, pr_numbers) "
                                "VALUES (?, 'main', ?, ?, ?, ?)", [repo, sha, pos, datetime(2026, 11, 23, 8), prs])
        for source, kind, key, _url, _f, _code, payload in raw_payloads():
            if (source, kind) == ("github", "deployments"):
                repo = key.split(":")[0]
                for d in payload:
                    scratch.execute("INSERT INTO deployments (repo, deployment_id, sha, environment, created_at) "
                                    "VALUES (?, ?, ?, ?, ?)", [repo, d["id"], d["sha"], d["environment"],
                                                               d["created_at"].rstrip("Z")])
            elif (source, kind) == ("github", "deployment_statuses"):
                repo, dep = key.split("/deployments/")
                for st in payload:
                    scratch.execute("INSERT INTO deployment_statuses (repo, deployment_id, status_id, state, "
                                    "created_at) VALUES (?, ?, ?, ?, ?)",
                                    [repo, int(dep), st["id"], st["state"], st["created_at"].rstrip("Z")])
        build_base_facts(scratch, settings(), AS_OF)
        rows = scratch.execute("SELECT ?::TIMESTAMP, change_id, environment, env_kind, deployment_id, ord "
                               "FROM _change_deployments", [AS_OF.replace(tzinfo=None)]).fetchall()
    finally:
        scratch.close()
    con.execute("DELETE FROM change_deployments")
    con.executemany("INSERT INTO change_deployments VALUES (?, ?, ?, ?, ?, ?)", rows)


def set_results(con, as_of, rows):
    con.execute("DELETE FROM control_results WHERE CAST(as_of AS DATE) = ?", [as_of.date()])
    con.executemany("INSERT INTO control_results (as_of, change_id, repo, control_id, status, detail) "
                    "VALUES (?, ?, ?, ?, ?, ?)", rows)


#: an exceptions register for this world: EX-1 applies to #12's failing CC8.1-03; EX-2 (hostile text)
#: expired before the as-of time; EX-3 names a repository control and an approver who is not one
REGISTER = """\
# accepted risks of the outputs world
- id: EX-1
  change_id: acme/payments-api#12
  control_id: CC8.1-03
  justification: pair-programmed with the only other engineer; accepted until the team grows
  approved_by: erin@acme.example
  approved_at: 2026-11-21T09:00:00Z
  expires: 2027-02-21
- id: EX-2
  change_id: acme/payments-api#13
  control_id: CC8.1-01
  justification: '=HYPERLINK("http://evil.example") <script>alert(1)</script> <!channel> & more'
  approved_by: alice@acme.example
  approved_at: 2026-10-01
  expires: 2026-11-01
- id: EX-3
  repo: acme/payments-api
  control_id: CC8.1-11
  justification: branch protection arrives with the GitHub Enterprise upgrade
  approved_by: bob@acme.example
  approved_at: 2026-11-01
  expires: 2027-01-01
"""


def set_exceptions(con, as_of=AS_OF, text: str = REGISTER):
    """Evaluate ``text`` as the register of ``as_of``'s run (as pipeline.evaluate_controls does after
    writing the date's results); returns the Register."""
    from ccwatch.controls.exceptions import apply_exceptions
    from ccwatch.controls.register import load_register

    folder = tempfile.mkdtemp(prefix="ccwatch-register-")
    atexit.register(shutil.rmtree, folder, True)
    path = Path(folder) / "exceptions.yaml"
    path.write_text(text, encoding="utf-8")
    register = load_register(path)
    apply_exceptions(con, settings(), as_of, register)
    return register


def gx_results():
    """A GX 1.24 ExpectationSuiteValidationResult.to_json_dict() (captured from a real run, trimmed)."""
    return [{
        "success": False, "suite_name": "cc8_1_03_peer_review", "suite_parameters": {}, "id": None,
        "statistics": {"evaluated_expectations": 2, "successful_expectations": 1, "unsuccessful_expectations": 1,
                       "success_percent": 50.0},
        "meta": {"great_expectations_version": "1.24.1", "validation_time": "2026-11-25T00:06:00+00:00"},
        "results": [
            {"success": False, "meta": {},
             "expectation_config": {"type": "expect_column_values_to_be_in_set", "meta": {}, "id": "cc102f39",
                                    "severity": "critical",
                                    "kwargs": {"batch_id": "p-control_results", "column": "status",
                                               "value_set": ["pass", "not_applicable"]}},
             "result": {"element_count": 3, "unexpected_count": 1, "unexpected_percent": 33.3,
                        "partial_unexpected_list": ["<img src=x onerror=alert(1)>"],
                        "partial_unexpected_counts": [{"value": "fail", "count": 1}]},
             "exception_info": {"raised_exception": False, "exception_traceback": None, "exception_message": None}},
            {"success": True, "meta": {},
             "expectation_config": {"type": "expect_column_values_to_not_be_null", "meta": {}, "id": "3b2cf26d",
                                    "kwargs": {"batch_id": "p-control_results", "column": "change_id"}},
             "result": {"element_count": 3, "unexpected_count": 0, "unexpected_percent": 0.0,
                        "partial_unexpected_list": []},
             "exception_info": {"raised_exception": False, "exception_traceback": None, "exception_message": None}},
        ],
    }]


POPULATION_TITLE = "FEAT: add login, as evaluated on 2026-11-25 [PAY-7]"
ENDPOINTS = {"github": "https://api.github.com", "jira": "https://acme.atlassian.net"}


def build_home(home: Path, runs: int = 2) -> Path:
    """A CCWATCH_HOME holding this world's warehouse file (two dates; the newer one's population
    stored, with #12's title as evaluated then, which differs from today's change_facts) and
    the newer date's evidence written ``runs`` times (a rerun's archive is ``.1``, ``.2``, ...)."""
    from ccwatch.common.paths import warehouse_path
    from ccwatch.publish.evidence.write import write_evidence
    from ccwatch.warehouse.population import store_population

    home.mkdir(parents=True, exist_ok=True)
    con = connection.connect(str(warehouse_path(home)))
    try:
        build(con)
        store_population(con, AS_OF)
        con.execute("UPDATE population SET title = ? WHERE change_id = 'acme/payments-api#12'", [POPULATION_TITLE])
        for _ in range(runs):
            write_evidence(con, settings(), AS_OF, home, gx_results(), "<html>report</html>\n", ENDPOINTS)
    finally:
        con.close()
    return home


# --- three run dates, for the report's history (day-over-day change, failure ages, views) -------

FIRST = datetime(2026, 11, 23, tzinfo=UTC)
LEFT = "acme/payments-api#11"  # fails on 11-23 and 11-24, no longer in the population on 11-25


def build_three(con=None):
    """``build`` plus a first run date, 2026-11-23, and a history with one case of each kind.

    | change / control               | 11-23   | 11-24          | 11-25   | on 11-25                 |
    |--------------------------------|---------|----------------|---------|--------------------------|
    | #12 CC8.1-03                   | fail    | pass           | fail    | newly failing, first 25  |
    | #13 CC8.1-01                   | -       | - (not yet)    | fail    | newly failing, first 25  |
    | push CC8.1-10                  | fail    | fail           | fail    | open since 23 (3 runs)   |
    | #12 CC8.1-05                   | pass    | fail           | pass    | resolved                 |
    | #11 CC8.1-02                   | fail    | fail           | -       | left the population      |
    | payments-api CC8.1-11          | fail    | fail           | fail    | open since 23            |
    | web-frontend CC8.1-12          | pass    | fail           | fail    | open since 24            |
    """
    con = build(con)
    first = [r for r in result_rows(FIRST) if r[1] != "acme/payments-api#13"]
    first = [(r[0], r[1], r[2], r[3], "pass", "ok") if (r[1], r[3]) == ("acme/web-frontend", "CC8.1-12") else r
             for r in first]
    d23, d24 = FIRST.replace(tzinfo=None), PREV.replace(tzinfo=None)
    first += [(d23, LEFT, "acme/payments-api", c, "fail" if c == "CC8.1-02" else "pass",
               "PAY-1 has blank Business Justification" if c == "CC8.1-02" else "ok") for c in CONTROLS]
    set_results(con, FIRST, first)
    con.execute("UPDATE control_results SET status = 'fail', detail = 'head abc1234: test failure' "
                "WHERE as_of = ? AND change_id = 'acme/payments-api#12' AND control_id = 'CC8.1-05'", [d24])
    con.executemany("INSERT INTO control_results (as_of, change_id, repo, control_id, status, detail) VALUES (?, ?, ?, ?, ?, ?)",
                    [(d24, LEFT, "acme/payments-api", c, "fail" if c == "CC8.1-02" else "pass",
                      "PAY-1 has blank Business Justification" if c == "CC8.1-02" else "ok") for c in CONTROLS])
    return con


def streaks_by_walking(con, day) -> dict[tuple[str, str], tuple]:
    """(change, control) -> (first failed, run dates in the streak) of the pairs failing on ``day``,
    computed the slow, obvious way (walk back over the run dates) to check the product's SQL."""
    dates = [r[0] for r in con.execute("SELECT DISTINCT CAST(as_of AS DATE) d FROM control_results "
                                       "WHERE CAST(as_of AS DATE) <= ? ORDER BY d", [day]).fetchall()]
    status = {(d, c, k): s for d, c, k, s in con.execute(
        "SELECT CAST(as_of AS DATE), change_id, control_id, status FROM control_results").fetchall()}
    out = {}
    for c, k in {(c, k) for (d, c, k), s in status.items() if d == day and s == "fail"}:
        first, n = day, 0
        for d in reversed(dates):
            if status.get((d, c, k)) != "fail":
                break
            first, n = d, n + 1
        out[(c, k)] = (first, n)
    return out
