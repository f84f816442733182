"""Jira REST v2/v3 double (Cloud or Server, from ``jira.deployment_type``).

Cloud: legacy ``/search`` answers 410 Gone; ``/search/jql`` pages with ``nextPageToken``/``isLast``;
users by ``accountId``; v3 rich text as Atlassian Document Format. Server: ``/rest/api/2/search``
with ``startAt``/``maxResults``/``total``; ``/search/jql`` is 404; users by ``name``/``key``.
The sandbox's "now" (``serverTime``, relative JQL dates such as ``-90d``) is ``meta.as_of``.
"""

from __future__ import annotations

import base64
import hashlib
import re
from datetime import UTC, datetime

from ccwatch.sandbox.http import SandboxRequest, SandboxResponse, json_response
from ccwatch.sandbox.jira_jql import Jql, JqlError, parse_time

CATEGORIES = {"new": (2, "To Do", "blue-gray"), "indeterminate": (4, "In Progress", "yellow"), "done": (3, "Done", "green")}
SYSTEM_FIELDS = [("summary", "Summary", "string"), ("status", "Status", "status"), ("issuetype", "Issue Type", "issuetype"),
                 ("priority", "Priority", "priority"), ("labels", "Labels", "array"), ("reporter", "Reporter", "user"),
                 ("creator", "Creator", "user"), ("assignee", "Assignee", "user"), ("created", "Created", "datetime"),
                 ("updated", "Updated", "datetime"), ("project", "Project", "project"), ("resolution", "Resolution", "resolution"),
                 ("resolutiondate", "Resolved", "datetime"), ("description", "Description", "string")]
CUSTOM_TYPES = {"textarea": ("string", "textarea"), "text": ("string", "textfield"), "textfield": ("string", "textfield"),
                "select": ("option", "select"), "number": ("number", "float"), "date": ("date", "datepicker"),
                "datetime": ("datetime", "datetime"), "user": ("user", "userpicker"), "labels": ("array", "labels")}
GONE = ("The requested API has been removed. Please migrate to the /rest/api/3/search/jql API. "
        "A full migration guideline is available at https://developer.atlassian.com/changelog/#CHANGE-2046")


def jira_error(status: int, *messages: str, warnings: list[str] | None = None) -> SandboxResponse:
    body: dict = {"errorMessages": list(messages), "errors": {}}
    if warnings is not None:
        body["warningMessages"] = warnings
    return json_response(body, status=status)


def jira_time(text: str | None) -> str | None:
    return None if not text else parse_time(text).strftime("%Y-%m-%dT%H:%M:%S.000+0000")


def adf(text: str) -> dict:
    paragraphs = [p for p in text.split("\n\n")] or [text]
    return {"type": "doc", "version": 1, "content": [
        {"type": "paragraph", "content": [{"type": "text", "text": p}] if p else []} for p in paragraphs]}


class JiraApi:
    def __init__(self, scenario: dict):
        j = scenario.get("jira") or {}
        auth = scenario.get("auth") or {}
        self.user_login, self.user_token = auth.get("jira_user"), auth.get("jira_token")
        self.cloud = str(j.get("deployment_type", "Cloud")).lower() == "cloud"
        self.now = parse_time((scenario.get("meta") or {}).get("as_of") or datetime.now(UTC).isoformat())
        self.users: dict[str, dict] = j.get("users") or {}
        self.fields: list[dict] = j.get("fields") or []
        self.field_by_name = {f["name"]: f for f in self.fields}
        self.statuses: dict[str, str] = j.get("statuses") or {}
        self.status_ids = {name: str(10000 + i) for i, name in enumerate(self.statuses)}
        self.issues: dict[str, dict] = j.get("issues") or {}
        self.issue_ids = {k: str(v.get("id") or 10000 + i) for i, (k, v) in enumerate(self.issues.items())}
        self.projects = sorted({v.get("project", k.split("-")[0]) for k, v in self.issues.items()} | set(j.get("projects") or []))
        self.strict = j.get("validate_query", "strict")
        # O(1) lookups at 100k tickets: issue id -> key, user alias -> email, JQL -> result keys
        self.key_of_id = {i: k for k, i in self.issue_ids.items()}
        self._aliases: dict[str, str] = {}
        for email, u in self.users.items():
            for alias in (u.get("accountId"), u.get("name"), u.get("key")):
                if alias:
                    self._aliases.setdefault(alias, email)
        self.jql = Jql(self.issues, self.projects, self.now)

    # ------------------------------------------------------------------ entry
    def handle(self, req: SandboxRequest) -> SandboxResponse:
        m = re.match(r"^/rest/api/(2|3|latest)/(.+?)/?$", req.path)
        if not m:
            return jira_error(404, "null for uri: " + req.path)
        version, rest = ("2" if m.group(1) == "latest" else m.group(1)), m.group(2)
        if rest == "serverInfo":
            return json_response(self.server_info(req))
        denied = self._check_auth(req)
        if denied is not None:
            return denied
        base = f"{req.origin}/rest/api/{version}"
        if rest == "myself":
            me = self.user(self.user_login or "sandbox@example.invalid", base)
            return json_response({**me, "groups": {"size": 1, "items": []}, "applicationRoles": {"size": 1, "items": []}, "expand": "groups,applicationRoles"})
        if rest == "field":
            return json_response(self.field_list())
        if rest == "status":
            return json_response([self.status(n, base) for n in self.statuses])
        if rest == "search":
            if self.cloud:
                return jira_error(410, GONE)
            if version == "3":
                return jira_error(404, "null for uri: " + req.path)
            return self.search_legacy(req, base, version)
        if rest == "search/jql":
            if not self.cloud:
                return jira_error(404, "null for uri: " + req.path)
            return self.search_jql(req, base, version)
        m = re.match(r"^issue/([^/]+)(/changelog)?$", rest)
        if m:
            key = self._issue_key(m.group(1))
            if key is None:
                return jira_error(404, "Issue does not exist or you do not have permission to see it.")
            if m.group(2):
                return self.changelog_page(req, base, key)
            expand = req.arg("expand") or ""
            return json_response(self.issue(key, base, version, self._fields_param(req.arg("fields")), expand, 100))
        return jira_error(404, "null for uri: " + req.path)

    def _check_auth(self, req: SandboxRequest) -> SandboxResponse | None:
        header = req.headers.get("Authorization") or ""
        scheme, _, cred = header.partition(" ")
        ok = False
        if scheme.lower() == "basic" and cred:
            try:
                user, _, token = base64.b64decode(cred.strip()).decode("utf-8").partition(":")
            except (ValueError, UnicodeDecodeError):
                user, token = "", ""
            ok = bool(user and token) and (self.user_login is None or (user == self.user_login and token == self.user_token))
        elif scheme.lower() == "bearer" and cred:
            ok = self.user_token is None or cred.strip() == self.user_token
        if ok:
            return None
        return SandboxResponse(status=401, raw=b"Client must be authenticated to access this resource.",
                               content_type="text/plain;charset=UTF-8",
                               headers={"X-Seraph-LoginReason": "AUTHENTICATED_FAILED",
                                        "WWW-Authenticate": 'Basic realm="protected-area"'})

    def _issue_key(self, ident: str) -> str | None:
        if ident in self.issues:
            return ident
        return self.key_of_id.get(ident)

    # ------------------------------------------------------------------ shapes
    def server_info(self, req: SandboxRequest) -> dict:
        stime = self.now.strftime("%Y-%m-%dT%H:%M:%S.000+0000")
        if self.cloud:
            return {"baseUrl": req.origin, "displayUrl": req.origin, "version": "1001.0.0-SNAPSHOT",
                    "versionNumbers": [1001, 0, 0], "deploymentType": "Cloud", "buildNumber": 100284,
                    "buildDate": "2025-01-01T00:00:00.000+0000", "serverTime": stime, "scmInfo": "sandbox",
                    "serverTitle": "Jira", "defaultLocale": {"locale": "en_US"}, "serverTimeZone": "Etc/UTC"}
        return {"baseUrl": req.origin, "version": "9.12.15", "versionNumbers": [9, 12, 15], "deploymentType": "Server",
                "buildNumber": 9120015, "buildDate": "2024-10-01T00:00:00.000+0000", "databaseBuildNumber": 9120015,
                "serverTime": stime, "scmInfo": "sandbox", "serverTitle": "Jira"}

    def user(self, ref: str | None, base: str) -> dict | None:
        if not ref:
            return None
        alias = self._aliases.get(ref)
        info = self.users.get(ref) or (self.users[alias] | {"_email": alias} if alias in self.users else None) or {}
        email = info.get("_email") or (ref if "@" in ref else info.get("emailAddress"))
        avatars = {s: f"https://avatar.example.invalid/{s}" for s in ("48x48", "24x24", "16x16", "32x32")}
        out: dict = {}
        if self.cloud:
            account = info.get("accountId") or "5b10" + hashlib.sha256(ref.encode()).hexdigest()[:20]
            out = {"self": f"{base}/user?accountId={account}", "accountId": account}
        else:
            name = info.get("name") or (email.split("@")[0] if email else ref)
            out = {"self": f"{base}/user?username={name}", "name": name, "key": info.get("key") or f"JIRAUSER{int(hashlib.sha256(name.encode()).hexdigest()[:6], 16)}"}
        if email and info.get("email_visible", True):
            out["emailAddress"] = email
        out.update({"avatarUrls": avatars, "displayName": info.get("displayName") or ref, "active": info.get("active", True),
                    "timeZone": "Etc/UTC"})
        if self.cloud:
            out["accountType"] = info.get("accountType", "atlassian")
        return out

    def status(self, name: str, base: str) -> dict:
        cat = self.statuses.get(name, "indeterminate")
        cid, cname, color = CATEGORIES[cat]
        sid = self.status_ids.get(name, "1")
        return {"self": f"{base}/status/{sid}", "description": "", "iconUrl": f"{base}/images/icons/statuses/generic.png",
                "name": name, "id": sid,
                "statusCategory": {"self": f"{base}/statuscategory/{cid}", "id": cid, "key": cat, "colorName": color, "name": cname}}

    def field_list(self) -> list[dict]:
        out = [{"id": fid, "key": fid, "name": name, "custom": False, "orderable": True, "navigable": True, "searchable": True,
                "clauseNames": [fid], "schema": {"type": typ, "system": fid}} for fid, name, typ in SYSTEM_FIELDS]
        for f in self.fields:
            typ, custom = CUSTOM_TYPES.get(f.get("type", "text"), ("string", f.get("type", "textfield")))
            num = int(f["id"].rsplit("_", 1)[-1])
            out.append({"id": f["id"], "key": f["id"], "name": f["name"], "untranslatedName": f["name"], "custom": True,
                        "orderable": True, "navigable": True, "searchable": True,
                        "clauseNames": [f"cf[{num}]", f["name"], f"{f['name']}[Paragraph]" if typ == "string" else f["name"]],
                        "schema": {"type": typ, "custom": f"com.atlassian.jira.plugin.system.customfieldtypes:{custom}", "customId": num}})
        return out

    def _custom_value(self, f: dict, value, base: str, version: str):
        if value is None or value == "":
            return None
        ftype = f.get("type", "text")
        if ftype == "textarea" and version == "3" and isinstance(value, str):
            return adf(value)
        if ftype == "select" and isinstance(value, str):
            oid = str(10000 + int(hashlib.sha256(value.encode()).hexdigest()[:4], 16))
            return {"self": f"{base}/customFieldOption/{oid}", "value": value, "id": oid}
        if ftype == "user" and isinstance(value, str):
            return self.user(value, base)
        return value

    def _history(self, key: str, h: dict, i: int, base: str) -> dict:
        items = []
        for it in h.get("items", []):
            field = it.get("field", "")
            f = self.field_by_name.get(field)
            item = {"field": field, "fieldtype": "custom" if f else "jira", "fieldId": f["id"] if f else field.lower(),
                    "from": None, "fromString": it.get("fromString"), "to": None, "toString": it.get("toString")}
            if field.lower() == "status":
                item["from"], item["to"] = self.status_ids.get(it.get("fromString")), self.status_ids.get(it.get("toString"))
            item.update({k: v for k, v in it.items() if k in ("from", "to", "fieldId", "fieldtype")})
            items.append(item)
        hid = str(h.get("id") or int(self.issue_ids[key]) * 1000 + i)
        return {"id": hid, "author": self.user(h.get("author"), base), "created": jira_time(h.get("created")), "items": items}

    def histories(self, key: str, base: str) -> list[dict]:
        raw = self.issues[key].get("changelog") or []
        rows = [self._history(key, h, i, base) for i, h in enumerate(raw)]
        return sorted(rows, key=lambda h: (h["created"] or "", int(h["id"]) if h["id"].isdigit() else 0))

    def issue(self, key: str, base: str, version: str, wanted: set[str] | None, expand: str, max_histories: int) -> dict:
        src = self.issues[key]
        iid = self.issue_ids[key]
        project = src.get("project", key.split("-")[0])
        pid = str(10000 + self.projects.index(project)) if project in self.projects else "10000"
        itype = src.get("issuetype", "Task")
        prio = src.get("priority")
        desc = src.get("description")
        fields = {
            "summary": src.get("summary", ""),
            "issuetype": {"self": f"{base}/issuetype/{10000 + len(itype)}", "id": str(10000 + len(itype)), "description": "",
                          "iconUrl": "", "name": itype, "subtask": False, "avatarId": 10300, "hierarchyLevel": 0},
            "status": self.status(src.get("status", "To Do"), base),
            "priority": {"self": f"{base}/priority/3", "iconUrl": "", "name": prio, "id": "3"} if prio else None,
            "labels": list(src.get("labels", [])),
            "reporter": self.user(src.get("reporter"), base), "creator": self.user(src.get("creator") or src.get("reporter"), base),
            "assignee": self.user(src.get("assignee"), base),
            "created": jira_time(src.get("created")), "updated": jira_time(src.get("updated") or src.get("created")),
            "project": {"self": f"{base}/project/{pid}", "id": pid, "key": project, "name": project,
                        "projectTypeKey": "software", "simplified": False, "avatarUrls": {}},
            "resolution": {"self": f"{base}/resolution/10000", "id": "10000", "description": "", "name": src["resolution"]} if src.get("resolution") else None,
            "resolutiondate": jira_time(src.get("resolutiondate")),
            "description": (adf(desc) if version == "3" else desc) if desc else None,
        }
        for f in self.fields:
            fields[f["id"]] = None
        for name, value in (src.get("fields") or {}).items():
            f = self.field_by_name.get(name) or next((x for x in self.fields if x["id"] == name), None)
            if f is not None:
                fields[f["id"]] = self._custom_value(f, value, base, version)
        if wanted is not None:
            fields = {k: v for k, v in fields.items() if k in wanted}
        out = {"expand": "renderedFields,names,schema,operations,editmeta,changelog,versionedRepresentations",
               "id": iid, "self": f"{base}/issue/{iid}", "key": key, "fields": fields}
        if "changelog" in expand.split(","):
            hist = self.histories(key, base)
            shown = list(reversed(hist))[:max_histories]
            out["changelog"] = {"startAt": 0, "maxResults": len(shown), "total": len(hist), "histories": shown}
        if "names" in expand.split(","):
            out["names"] = {f["id"]: f["name"] for f in self.field_list() if f["id"] in fields}
        return out

    def _fields_param(self, value) -> set[str] | None:
        if value is None:
            return None
        names = value if isinstance(value, list) else str(value).split(",")
        names = [n.strip() for n in names if n.strip()]
        if not names or any(n in ("*all", "*navigable") for n in names):
            return None
        ids = set()
        for n in names:
            f = self.field_by_name.get(n)
            ids.add(f["id"] if f else n)
        return ids

    def changelog_page(self, req: SandboxRequest, base: str, key: str) -> SandboxResponse:
        hist = self.histories(key, base)
        start = max(int(req.arg("startAt", "0") or 0), 0)
        size = min(max(int(req.arg("maxResults", "100") or 100), 1), 100)
        page = hist[start:start + size]
        is_last = start + size >= len(hist)
        url = f"{base}/issue/{key}/changelog"
        body = {"self": f"{url}?maxResults={size}&startAt={start}", "maxResults": size, "startAt": start,
                "total": len(hist), "isLast": is_last, "values": page}
        if not is_last:
            body["nextPage"] = f"{url}?maxResults={size}&startAt={start + size}"
        return json_response(body)

    # ------------------------------------------------------------------ search
    def _params(self, req: SandboxRequest) -> dict:
        if req.method == "POST":
            return req.json_body() or {}
        return {k: (",".join(v) if k in ("fields", "expand") else v[-1]) for k, v in req.query.items()}

    def search_legacy(self, req: SandboxRequest, base: str, version: str) -> SandboxResponse:
        p = self._params(req)
        validate = str(p.get("validateQuery", self.strict)).lower()
        keys, warnings, err = self.run_jql(str(p.get("jql") or ""), strict=validate in ("strict", "true"))
        if err is not None:
            return err
        start = max(int(p.get("startAt") or 0), 0)
        size = min(max(int(p.get("maxResults", 50)), 0), 1000)
        expand = p.get("expand") or ""
        expand = ",".join(expand) if isinstance(expand, list) else str(expand)
        wanted = self._fields_param(p.get("fields"))
        issues = [self.issue(k, base, version, wanted, expand, 100) for k in keys[start:start + size]]
        body = {"expand": "schema,names", "startAt": start, "maxResults": size, "total": len(keys), "issues": issues}
        if warnings:
            body["warningMessages"] = warnings
        return json_response(body)

    def search_jql(self, req: SandboxRequest, base: str, version: str) -> SandboxResponse:
        p = self._params(req)
        jql = str(p.get("jql") or "")
        keys, _, err = self.run_jql(jql, strict=True)
        if err is not None:
            return err
        size = min(max(int(p.get("maxResults") or 50), 1), 100)
        digest = hashlib.sha256(jql.encode()).hexdigest()[:12]
        start = 0
        token = p.get("nextPageToken")
        if token:
            try:
                offset, tdigest = base64.urlsafe_b64decode(str(token).encode()).decode().split(":", 1)
                start = int(offset)
                if tdigest != digest:
                    raise ValueError
            except (ValueError, UnicodeDecodeError):
                return jira_error(400, "The provided next page token is invalid or expired.")
        expand = p.get("expand") or ""
        expand = ",".join(expand) if isinstance(expand, list) else str(expand)
        fields = p.get("fields")
        wanted = {"id"} if fields is None else self._fields_param(fields)
        issues = [self.issue(k, base, version, wanted, expand, 40) for k in keys[start:start + size]]
        body: dict = {"issues": issues}
        if start + size < len(keys):
            body["nextPageToken"] = base64.urlsafe_b64encode(f"{start + size}:{digest}".encode()).decode()
            body["isLast"] = False
        else:
            body["isLast"] = True
        return json_response(body)

    def run_jql(self, jql: str, strict: bool) -> tuple[list[str], list[str], SandboxResponse | None]:
        """Evaluate the supported JQL subset (``sandbox.jira_jql``). Returns (keys, warnings, error
        response or None)."""
        try:
            keys, warnings = self.jql.run(jql, strict)
        except JqlError as e:
            return [], [], jira_error(400, *e.messages)
        return keys, warnings, None
