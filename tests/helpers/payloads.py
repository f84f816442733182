"""Raw payloads in the real API shapes (trimmed) as the connectors stage them, for the normaliser
and load tests: GitHub REST items, Jira issues and fields."""

from __future__ import annotations

from ccwatch.ingest.records import RawRecord

REPO = "acme/payments-api"
API = "https://api.github.com/repos/acme/payments-api"
SHA_A, SHA_B, SHA_C, SHA_D, SHA_F = ("a" * 40, "b" * 40, "c" * 40, "d" * 40, "f" * 40)


def rec(source, kind, key, payload, status=200):
    return RawRecord(source=source, kind=kind, natural_key=key, url=f"{API}/x", fetched_at="2026-11-25T00:00:01Z",
                     payload=payload, status_code=status)


def user(login, typ="User", uid=1):
    return {"login": login, "id": uid, "node_id": "MDQ6VXNlcjE=", "type": typ, "site_admin": False,
            "url": f"https://api.github.com/users/{login}", "html_url": f"https://github.com/{login}"}


def pull(number=12, merged=True):
    # shape of GET /repos/{o}/{r}/pulls/{n}
    return {
        "url": f"{API}/pulls/{number}", "id": 9000 + number, "number": number, "state": "closed",
        "title": "FEAT: add login [PAY-7]", "user": user("carol-dev"), "body": "",
        "labels": [{"id": 1, "name": "emergency", "color": "ff0000", "default": False}],
        "created_at": "2026-11-01T09:00:00Z", "closed_at": "2026-11-02T10:00:00Z",
        "merged_at": "2026-11-02T10:00:00Z" if merged else None,
        "merge_commit_sha": SHA_C, "html_url": f"https://github.com/{REPO}/pull/{number}",
        "head": {"label": "acme:feat/x", "ref": "feat/x", "sha": SHA_B, "user": user("acme", "Organization")},
        "base": {"label": "acme:main", "ref": "main", "sha": SHA_A, "user": user("acme", "Organization")},
        "merged": merged, "merged_by": user("bob-rev") if merged else None,
    }


def commit(sha, parents, login="carol-dev", date="2026-11-02T10:00:00Z", msg="msg"):
    # item of GET /repos/{o}/{r}/commits
    return {
        "sha": sha, "node_id": "C_x", "url": f"{API}/commits/{sha}", "html_url": f"https://github.com/{REPO}/commit/{sha}",
        "commit": {"author": {"name": login, "email": f"{login}@x", "date": date},
                   "committer": {"name": "GitHub", "email": "noreply@github.com", "date": date}, "message": msg,
                   "tree": {"sha": "e" * 40, "url": "u"}},
        "author": user(login), "committer": user("web-flow"),
        "parents": [{"sha": p, "url": f"{API}/commits/{p}", "html_url": "h"} for p in parents],
    }


def jira_user(email=None, account="5b10ac8d82e05b22cc7d4ef5", name=None):
    u = {"self": "https://acme.atlassian.net/rest/api/3/user?accountId=" + account, "accountId": account,
         "displayName": "Someone", "active": True, "accountType": "atlassian"}
    if email:
        u["emailAddress"] = email
    if name:
        u = {"self": "https://jira.acme/rest/api/2/user?username=" + name, "name": name, "key": name,
             "displayName": "Someone", "active": True}
    return u


FIELDS = [  # GET /rest/api/2/field
    {"id": "summary", "key": "summary", "name": "Summary", "custom": False, "clauseNames": ["summary"]},
    {"id": "customfield_10010", "key": "customfield_10010", "name": "Business Justification", "custom": True},
    {"id": "customfield_10011", "key": "customfield_10011", "name": "Risk Assessment", "custom": True},
    {"id": "customfield_10012", "key": "customfield_10012", "name": "Testing Plan", "custom": True},
    {"id": "customfield_10013", "key": "customfield_10013", "name": "Post-Mortem", "custom": True},
    {"id": "customfield_10014", "key": "customfield_10014", "name": "Rollback Plan", "custom": True},
]


def adf(*paragraphs):
    return {"type": "doc", "version": 1,
            "content": [{"type": "paragraph", "content": [{"type": "text", "text": p}]} for p in paragraphs]}


def issue(key="PAY-7", status=("Done", "10002", "done"), bj=None, rollback=None):
    return {
        "expand": "renderedFields", "id": "10007", "self": "https://acme.atlassian.net/rest/api/3/issue/10007", "key": key,
        "fields": {
            "summary": "Add login", "issuetype": {"id": "10001", "name": "Story"},
            "project": {"id": "10000", "key": key.split("-")[0], "name": "Payments"},
            "status": {"name": status[0], "id": status[1],
                       "statusCategory": {"id": 3, "key": status[2], "name": "Done", "colorName": "green"}},
            "priority": {"name": "Medium", "id": "3"}, "labels": ["standard-change"],
            "reporter": jira_user(email="carol@acme.example"),
            "created": "2026-10-30T09:00:00.000+0000", "updated": "2026-11-10T12:30:00.000+0100",
            "customfield_10010": bj if bj is not None else adf("Customers asked", "for SSO"),
            "customfield_10011": "Low: behind a flag", "customfield_10012": adf("   "),
            "customfield_10013": None, "customfield_10014": rollback,
        },
    }


CLASSIC = {  # GET /branches/main/protection
    "url": f"{API}/branches/main/protection",
    "required_status_checks": {"url": "u", "strict": True, "contexts": ["test"], "contexts_url": "u",
                               "checks": [{"context": "test", "app_id": 15368}]},
    "required_pull_request_reviews": {"url": "u", "dismiss_stale_reviews": False, "require_code_owner_reviews": True,
                                      "required_approving_review_count": 2, "require_last_push_approval": False},
    "enforce_admins": {"url": "u", "enabled": False},
    "required_linear_history": {"enabled": False}, "allow_force_pushes": {"enabled": False},
    "allow_deletions": {"enabled": True}, "required_conversation_resolution": {"enabled": False},
}
