"""Expand compact scenario objects into GitHub REST v3 shapes.

Shapes follow GitHub's REST reference and PyGithub's recorded responses (tests/ReplayData):
user objects with login/id/node_id/type/urls, repository objects, pull requests with head/base,
reviews, commits, check runs with their app, commit statuses, deployments and their statuses.
All URLs are built from the API root the client used (``http://host`` or ``http://host/api/v3``).
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import quote

KNOWN_USERS = {"web-flow": (19864447, "User"), "github-actions[bot]": (41898282, "Bot")}
APPS = {"github-actions": (15368, "GitHub Actions")}


def node_id(kind: str, ident: int | str) -> str:
    return base64.b64encode(f"0{len(kind)}:{kind}{ident}".encode()).decode()


def stable_int(text: str, lo: int = 1_000_000, span: int = 9_000_000) -> int:
    return lo + int(hashlib.sha256(text.encode()).hexdigest()[:12], 16) % span


# Ids the scenario leaves out are derived, at realistic sizes: GitHub's PR, check suite and user ids
# are past 2**31 (10-11 digits), so nothing in a test works only because an id is small (issue #12).
# Scenario ids (reviews, check runs, statuses, deployments) are the generators' to make realistic.
def repo_id(full_name: str, r: dict) -> int:
    return int(r.get("id") or stable_int(f"repo:{full_name}"))


def pull_id(full_name: str, p: dict) -> int:
    return int(p.get("id") or stable_int(f"pull:{full_name}#{p['number']}", 2_200_000_000, 7_000_000_000))


def check_suite_id(full_name: str, sha: str, cr: dict) -> int:
    """A check run's suite: its ``check_suite_id``, else one suite per app and commit."""
    app = cr.get("app", "github-actions")
    slug = app.get("slug") if isinstance(app, dict) else app
    return int(cr.get("check_suite_id") or stable_int(f"suite:{full_name}:{sha}:{slug}", 10_000_000_000,
                                                      80_000_000_000))


def label_id(full_name: str, name: str) -> int:
    return stable_int(f"label:{full_name}:{name}", 5_000_000_000, 4_000_000_000)


@dataclass
class Ctx:
    """Where the client called from, and the scenario's user table."""

    api: str  # e.g. http://127.0.0.1:5000/api/v3
    html: str  # e.g. http://127.0.0.1:5000
    users: dict[str, dict]
    #: the repository's last push (GitHub's ``pushed_at`` moves with every push to any branch)
    last_push: Callable[[dict], str | None] | None = None

    def user_info(self, login: str) -> tuple[int, str]:
        info = self.users.get(login) or {}
        if "id" in info:
            return int(info["id"]), info.get("type") or ("Bot" if login.endswith("[bot]") else "User")
        if login in KNOWN_USERS:
            return KNOWN_USERS[login]
        return (stable_int(f"user:{login}", 2_200_000_000, 7_000_000_000),
                info.get("type") or ("Bot" if login.endswith("[bot]") else "User"))

    def user(self, login: str | None, kind: str | None = None) -> dict | None:
        if not login:
            return None
        uid, utype = self.user_info(login)
        utype = kind or utype
        url = f"{self.api}/users/{quote(login)}"
        html = f"{self.html}/apps/{login[:-5]}" if utype == "Bot" and login.endswith("[bot]") else f"{self.html}/{login}"
        return {
            "login": login, "id": uid, "node_id": node_id(utype, uid),
            "avatar_url": f"https://avatars.githubusercontent.com/u/{uid}?v=4", "gravatar_id": "",
            "url": url, "html_url": html, "followers_url": f"{url}/followers",
            "following_url": f"{url}/following{{/other_user}}", "gists_url": f"{url}/gists{{/gist_id}}",
            "starred_url": f"{url}/starred{{/owner}}{{/repo}}", "subscriptions_url": f"{url}/subscriptions",
            "organizations_url": f"{url}/orgs", "repos_url": f"{url}/repos", "events_url": f"{url}/events{{/privacy}}",
            "received_events_url": f"{url}/received_events", "type": utype, "user_view_type": "public",
            "site_admin": False,
        }

    def full_user(self, login: str) -> dict:
        info = self.users.get(login) or {}
        out = self.user(login) or {}
        out.update({"name": info.get("name", login), "company": None, "blog": "", "location": None,
                    "email": info.get("email"), "hireable": None, "bio": None, "twitter_username": None,
                    "public_repos": 0, "public_gists": 0, "followers": 0, "following": 0,
                    "created_at": "2020-01-01T00:00:00Z", "updated_at": "2020-01-01T00:00:00Z"})
        return out

    def app(self, slug: str | dict | None) -> dict | None:
        """GitHub's App object (a check run's ``app``); a scenario dict overrides the derived fields."""
        if slug is None:
            return None
        if isinstance(slug, dict):
            base = self.app(slug["slug"]) if slug.get("slug") else {}
            out = {**(base or {}), **slug}
            if "id" in slug and "node_id" not in slug:
                out["node_id"] = node_id("App", int(slug["id"]))
            return out
        app_id, name = APPS.get(slug, (stable_int(f"app:{slug}", 100_000, 900_000), slug))
        return {
            "id": app_id, "slug": slug, "client_id": f"Iv1.{app_id:016x}", "node_id": node_id("App", app_id),
            "owner": self.user("github", kind="Organization"), "name": name, "description": "",
            "external_url": f"{self.html}/apps/{slug}", "html_url": f"{self.html}/apps/{slug}",
            "created_at": "2018-07-30T09:30:17Z", "updated_at": "2024-04-10T20:33:16Z",
            "permissions": {"checks": "write", "contents": "write", "deployments": "write", "statuses": "write"},
            "events": ["check_run", "check_suite", "deployment", "status"],
        }

    # ------------------------------------------------------------------ repository
    def _pushed_at(self, r: dict, created: str) -> str:
        pushed = r.get("pushed_at", created)
        last = self.last_push(r) if self.last_push else None
        return max(pushed, last) if last else pushed

    def repo(self, full_name: str, r: dict, full: bool = False) -> dict:
        """A repository object: GitHub's ``repository`` (nested in PRs), or ``full-repository``
        (``GET /repos/{o}/{r}``, ``full=True``: with ``network_count``/``subscribers_count``)."""
        owner, name = full_name.split("/", 1)
        rid = repo_id(full_name, r)
        url = f"{self.api}/repos/{full_name}"
        html = f"{self.html}/{full_name}"
        owner_kind = "User" if (self.users.get(owner) or {}).get("type") == "User" else "Organization"
        created = r.get("created_at", "2020-01-01T00:00:00Z")
        out = {
            "id": rid, "node_id": node_id("Repository", rid), "name": name, "full_name": full_name,
            "private": bool(r.get("private", True)), "owner": self.user(owner, kind=owner_kind), "html_url": html,
            "description": r.get("description"), "fork": False, "url": url,
        }
        for key, suffix in (
            ("forks_url", "/forks"), ("keys_url", "/keys{/key_id}"), ("collaborators_url", "/collaborators{/collaborator}"),
            ("teams_url", "/teams"), ("hooks_url", "/hooks"), ("events_url", "/events"),
            ("branches_url", "/branches{/branch}"), ("tags_url", "/tags"), ("statuses_url", "/statuses/{sha}"),
            ("languages_url", "/languages"), ("contributors_url", "/contributors"), ("commits_url", "/commits{/sha}"),
            ("git_commits_url", "/git/commits{/sha}"), ("comments_url", "/comments{/number}"),
            ("issues_url", "/issues{/number}"), ("pulls_url", "/pulls{/number}"), ("labels_url", "/labels{/name}"),
            ("releases_url", "/releases{/id}"), ("deployments_url", "/deployments"),
            ("archive_url", "/{archive_format}{/ref}"), ("assignees_url", "/assignees{/user}"),
            ("blobs_url", "/git/blobs{/sha}"), ("compare_url", "/compare/{base}...{head}"),
            ("contents_url", "/contents/{+path}"), ("downloads_url", "/downloads"),
            ("git_refs_url", "/git/refs{/sha}"), ("git_tags_url", "/git/tags{/sha}"),
            ("issue_comment_url", "/issues/comments{/number}"), ("issue_events_url", "/issues/events{/number}"),
            ("merges_url", "/merges"), ("milestones_url", "/milestones{/number}"),
            ("notifications_url", "/notifications{?since,all,participating}"), ("stargazers_url", "/stargazers"),
            ("subscribers_url", "/subscribers"), ("subscription_url", "/subscription"), ("trees_url", "/git/trees{/sha}"),
        ):
            out[key] = url + suffix
        out.update({
            "created_at": created, "updated_at": r.get("updated_at", created), "pushed_at": self._pushed_at(r, created),
            "git_url": f"git://{self.html.split('://', 1)[1]}/{full_name}.git", "ssh_url": f"git@sandbox:{full_name}.git",
            "clone_url": f"{html}.git", "svn_url": html, "homepage": None, "size": 0, "stargazers_count": 0,
            "watchers_count": 0, "language": r.get("language"), "has_issues": True, "has_projects": True,
            "has_downloads": True, "has_wiki": False, "has_pages": False, "has_discussions": False, "forks_count": 0,
            "mirror_url": None, "archived": bool(r.get("archived", False)), "disabled": False, "open_issues_count": 0,
            "license": None, "allow_forking": False, "is_template": False, "web_commit_signoff_required": False,
            "topics": [], "visibility": "private" if r.get("private", True) else "public", "forks": 0,
            "open_issues": 0, "watchers": 0, "default_branch": r.get("default_branch", "main"),
            "permissions": r.get("permissions") or {"admin": True, "maintain": True, "push": True, "triage": True, "pull": True},
        })
        if full:
            out.update({"network_count": 0, "subscribers_count": 0})
        return out

    # ------------------------------------------------------------------ pull requests
    def label(self, full_name: str, name: str) -> dict:
        lid = label_id(full_name, name)
        return {"id": lid, "node_id": node_id("Label", lid), "url": f"{self.api}/repos/{full_name}/labels/{quote(name)}",
                "name": name, "color": "ededed", "default": False, "description": ""}

    def pull(self, full_name: str, r: dict, p: dict, base_sha: str, single: bool) -> dict:
        n = int(p["number"])
        url = f"{self.api}/repos/{full_name}/pulls/{n}"
        html = f"{self.html}/{full_name}/pull/{n}"
        pid = pull_id(full_name, p)
        repo_obj = self.repo(full_name, r)
        owner = full_name.split("/", 1)[0]
        created = p["created_at"]
        updated = p.get("updated_at") or max(x for x in (created, p.get("closed_at"), p.get("merged_at")) if x)
        head_ref = p.get("head_ref", f"pr-{n}")
        base_ref = p.get("base", r.get("default_branch", "main"))
        state = p.get("state") or ("closed" if p.get("merged_at") or p.get("closed_at") else "open")
        out = {
            "url": url, "id": pid, "node_id": node_id("PullRequest", pid), "html_url": html,
            "diff_url": f"{html}.diff", "patch_url": f"{html}.patch",
            "issue_url": f"{self.api}/repos/{full_name}/issues/{n}", "number": n, "state": state,
            "locked": False, "title": p.get("title", ""), "user": self.user(p.get("user")), "body": p.get("body"),
            "created_at": created, "updated_at": updated, "closed_at": p.get("closed_at"),
            "merged_at": p.get("merged_at"), "merge_commit_sha": p.get("merge_commit_sha"),
            "assignee": None, "assignees": [], "requested_reviewers": [], "requested_teams": [],
            "labels": [self.label(full_name, lb) for lb in p.get("labels", [])], "milestone": None,
            "draft": bool(p.get("draft", False)), "commits_url": f"{url}/commits",
            "review_comments_url": f"{url}/comments",
            "review_comment_url": f"{self.api}/repos/{full_name}/pulls/comments{{/number}}",
            "comments_url": f"{self.api}/repos/{full_name}/issues/{n}/comments",
            "statuses_url": f"{self.api}/repos/{full_name}/statuses/{p.get('head_sha')}",
            "head": {"label": f"{owner}:{head_ref}", "ref": head_ref, "sha": p.get("head_sha"),
                     "user": repo_obj["owner"], "repo": repo_obj},
            "base": {"label": f"{owner}:{base_ref}", "ref": base_ref, "sha": base_sha,
                     "user": repo_obj["owner"], "repo": repo_obj},
            "_links": {
                "self": {"href": url}, "html": {"href": html},
                "issue": {"href": f"{self.api}/repos/{full_name}/issues/{n}"},
                "comments": {"href": f"{self.api}/repos/{full_name}/issues/{n}/comments"},
                "review_comments": {"href": f"{url}/comments"},
                "review_comment": {"href": f"{self.api}/repos/{full_name}/pulls/comments{{/number}}"},
                "commits": {"href": f"{url}/commits"},
                "statuses": {"href": f"{self.api}/repos/{full_name}/statuses/{p.get('head_sha')}"},
            },
            "author_association": p.get("author_association", "MEMBER"), "auto_merge": None,
            "active_lock_reason": None,
        }
        if single:
            merged = bool(p.get("merged_at"))
            out.update({
                "merged": merged, "mergeable": None if state == "closed" else True, "rebaseable": None,
                "mergeable_state": "unknown" if state == "closed" else "clean",
                "merged_by": self.user(p.get("merged_by")) if merged else None,
                "comments": 0, "review_comments": 0, "maintainer_can_modify": False,
                "commits": int(p.get("commits", len(p.get("commit_shas", [])) or 1)),
                "additions": int(p.get("additions", 0)), "deletions": int(p.get("deletions", 0)),
                "changed_files": int(p.get("changed_files", 0)),
            })
        return out

    def review(self, full_name: str, n: int, rv: dict) -> dict:
        rid = int(rv["id"])
        pr_url = f"{self.api}/repos/{full_name}/pulls/{n}"
        html = f"{self.html}/{full_name}/pull/{n}#pullrequestreview-{rid}"
        out = {
            "id": rid, "node_id": node_id("PullRequestReview", rid), "user": self.user(rv.get("user")),
            "body": rv.get("body", ""), "state": rv.get("state", "COMMENTED"), "html_url": html,
            "pull_request_url": pr_url, "author_association": rv.get("author_association", "MEMBER"),
            "_links": {"html": {"href": html}, "pull_request": {"href": pr_url}},
            "commit_id": rv.get("commit_id"),
        }
        if rv.get("state") != "PENDING":
            out["submitted_at"] = rv.get("submitted_at")
        return out

    # ------------------------------------------------------------------ commits
    def commit(self, full_name: str, c: dict, single: bool = False) -> dict:
        sha = c["sha"]
        url = f"{self.api}/repos/{full_name}/commits/{sha}"
        html = f"{self.html}/{full_name}/commit/{sha}"

        def git_person(login: str | None, name_key: str, email_key: str, date: str) -> dict:
            uid, _ = self.user_info(login) if login else (0, "User")
            info = self.users.get(login or "") or {}
            name = c.get(name_key) or info.get("name") or login or "unknown"
            email = c.get(email_key) or info.get("email") or f"{uid}+{login}@users.noreply.github.com"
            if login == "web-flow":
                name, email = "GitHub", "noreply@github.com"
            return {"name": name, "email": email, "date": date}

        date = c.get("date")
        author_login = c.get("author")
        committer_login = c.get("committer", author_login)
        tree_sha = hashlib.sha1(f"tree:{sha}".encode()).hexdigest()
        out = {
            "sha": sha, "node_id": node_id("Commit", sha[:20]),
            "commit": {
                "author": git_person(author_login, "author_name", "author_email", c.get("author_date", date)),
                "committer": git_person(committer_login, "committer_name", "committer_email", c.get("committer_date", date)),
                "message": c.get("message", ""),
                "tree": {"sha": tree_sha, "url": f"{self.api}/repos/{full_name}/git/trees/{tree_sha}"},
                "url": f"{self.api}/repos/{full_name}/git/commits/{sha}", "comment_count": 0,
                "verification": {"verified": committer_login == "web-flow", "reason": "valid" if committer_login == "web-flow" else "unsigned",
                                 "signature": None, "payload": None, "verified_at": None},
            },
            "url": url, "html_url": html, "comments_url": f"{url}/comments",
            "author": self.user(author_login), "committer": self.user(committer_login),
            "parents": [{"sha": ps, "url": f"{self.api}/repos/{full_name}/commits/{ps}",
                         "html_url": f"{self.html}/{full_name}/commit/{ps}"} for ps in c.get("parents", [])],
        }
        if single:
            out["stats"] = {"total": 0, "additions": 0, "deletions": 0}
            out["files"] = c.get("files", [])
        return out

    def check_run(self, full_name: str, sha: str, cr: dict) -> dict:
        cid = int(cr["id"])
        url = f"{self.api}/repos/{full_name}/check-runs/{cid}"
        html = f"{self.html}/{full_name}/runs/{cid}"
        suite = check_suite_id(full_name, sha, cr)
        return {
            "id": cid, "name": cr["name"], "node_id": node_id("CheckRun", cid), "head_sha": sha,
            "external_id": cr.get("external_id", ""), "url": url, "html_url": html,
            "details_url": cr.get("details_url", html), "status": cr.get("status", "completed"),
            "conclusion": cr.get("conclusion"), "started_at": cr.get("started_at"),
            "completed_at": cr.get("completed_at"),
            "output": {"title": cr.get("title"), "summary": cr.get("summary"), "text": None, "annotations_count": 0,
                       "annotations_url": f"{url}/annotations"},
            "check_suite": {"id": suite}, "app": self.app(cr.get("app", "github-actions")), "pull_requests": [],
        }

    def status(self, full_name: str, sha: str, st: dict) -> dict:
        sid = int(st["id"])
        creator = self.user(st.get("creator"))
        return {
            "url": f"{self.api}/repos/{full_name}/statuses/{sha}",
            "avatar_url": creator["avatar_url"] if creator else None, "id": sid,
            "node_id": node_id("StatusContext", sid), "state": st["state"], "description": st.get("description"),
            "target_url": st.get("target_url"), "context": st.get("context", "default"),
            "created_at": st["created_at"], "updated_at": st.get("updated_at", st["created_at"]), "creator": creator,
        }

    # ------------------------------------------------------------------ deployments
    def deployment(self, full_name: str, d: dict) -> dict:
        did = int(d["id"])
        url = f"{self.api}/repos/{full_name}/deployments/{did}"
        env = d.get("environment", "production")
        return {
            "url": url, "id": did, "node_id": node_id("Deployment", did), "task": d.get("task", "deploy"),
            "original_environment": d.get("original_environment", env), "environment": env,
            "description": d.get("description"), "created_at": d["created_at"],
            "updated_at": d.get("updated_at", d["created_at"]), "statuses_url": f"{url}/statuses",
            "repository_url": f"{self.api}/repos/{full_name}", "creator": self.user(d.get("creator")),
            "sha": d["sha"], "ref": d.get("ref", d["sha"]), "payload": d.get("payload", {}),
            "transient_environment": bool(d.get("transient_environment", False)),
            "production_environment": bool(d.get("production_environment", env == "production")),
            "performed_via_github_app": None,
        }

    def deployment_status(self, full_name: str, d: dict, s: dict) -> dict:
        sid = int(s["id"])
        durl = f"{self.api}/repos/{full_name}/deployments/{d['id']}"
        return {
            "url": f"{durl}/statuses/{sid}", "id": sid, "node_id": node_id("DeploymentStatus", sid),
            "state": s["state"], "creator": self.user(s.get("creator")), "description": s.get("description", ""),
            "environment": s.get("environment", d.get("environment", "production")),
            "target_url": s.get("target_url", ""), "created_at": s["created_at"],
            "updated_at": s.get("updated_at", s["created_at"]), "deployment_url": durl,
            "repository_url": f"{self.api}/repos/{full_name}", "environment_url": s.get("environment_url", ""),
            "log_url": s.get("log_url", ""), "performed_via_github_app": None,
        }

    # ------------------------------------------------------------------ environments and rules
    def environment(self, full_name: str, name: str, e: dict) -> dict:
        eid = int(e.get("id") or stable_int(f"env:{full_name}:{name}"))
        rules = []
        for i, rule in enumerate(e.get("protection_rules") or []):
            rule = dict(rule)
            rid = int(rule.get("id") or stable_int(f"envrule:{full_name}:{name}:{i}"))
            rule.setdefault("id", rid)
            rule.setdefault("node_id", node_id("Gate", rid))
            if rule.get("type") == "required_reviewers":
                rule.setdefault("prevent_self_review", False)
                rule["reviewers"] = [
                    {"type": "User", "reviewer": self.user(rv)} if isinstance(rv, str) else rv
                    for rv in rule.get("reviewers", [])
                ]
            rules.append(rule)
        return {
            "id": eid, "node_id": node_id("Environment", eid), "name": name,
            "url": f"{self.api}/repos/{full_name}/environments/{quote(name, safe='')}",
            "html_url": f"{self.html}/{full_name}/deployments/activity_log?environments_filter={quote(name)}",
            "created_at": e.get("created_at", "2020-01-01T00:00:00Z"), "updated_at": e.get("updated_at", "2020-01-01T00:00:00Z"),
            "protection_rules": rules, "deployment_branch_policy": e.get("deployment_branch_policy"),
        }

    def ruleset(self, full_name: str, rs: dict, full: bool) -> dict:
        rid = int(rs["id"])
        out = {
            "id": rid, "name": rs.get("name", f"ruleset {rid}"), "target": rs.get("target", "branch"),
            "source_type": rs.get("source_type", "Repository"), "source": rs.get("source", full_name),
            "enforcement": rs.get("enforcement", "active"), "node_id": node_id("RepositoryRuleset", rid),
            "_links": {"self": {"href": f"{self.api}/repos/{full_name}/rulesets/{rid}"},
                       "html": {"href": f"{self.html}/{full_name}/rules/{rid}"}},
            "created_at": rs.get("created_at", "2020-01-01T00:00:00Z"), "updated_at": rs.get("updated_at", "2020-01-01T00:00:00Z"),
        }
        if full:
            out.update({"bypass_actors": rs.get("bypass_actors", []), "conditions": rs.get("conditions"),
                        "rules": rs.get("rules", []),
                        "current_user_can_bypass": rs.get("current_user_can_bypass", "never")})
            if rs.get("read_only"):
                # GitHub: "the bypass_actors property is only returned if the user making the API
                # request has write access to the ruleset" (published description of this route)
                del out["bypass_actors"]
        return out


def fill_protection_urls(payload: dict, url: str) -> dict:
    """Add the ``url`` members GitHub puts in a classic protection payload when the scenario left them out."""
    out = dict(payload)
    out.setdefault("url", url)
    subs = {"required_status_checks": "required_status_checks", "enforce_admins": "enforce_admins",
            "required_pull_request_reviews": "required_pull_request_reviews",
            "required_signatures": "required_signatures", "restrictions": "restrictions"}
    for key, suffix in subs.items():
        if isinstance(out.get(key), dict):
            sub = dict(out[key])
            sub.setdefault("url", f"{url}/{suffix}")
            if key == "required_status_checks":
                sub.setdefault("contexts", [c.get("context") for c in sub.get("checks", []) if isinstance(c, dict)])
                sub.setdefault("contexts_url", f"{url}/{suffix}/contexts")
                sub.setdefault("checks", [{"context": c, "app_id": None} for c in sub.get("contexts", [])])
            out[key] = sub
    return out
