"""Jira payloads -> tickets, ticket_transitions, ticket_field_changes (pure functions).

Issues arrive with fields by id (``customfield_10010``); the config names fields by name
or id, so names are resolved through the ``fields`` record (``GET /rest/api/2/field``):
exact match, and an error naming the config key when two fields share the name.
Rich-text fields are plain text on API v2 and Atlassian Document Format (ADF) on v3;
both end up as plain text.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from ccwatch.common.changes import ticket_project
from ccwatch.common.times import parse_ts
from ccwatch.ingest.records import RawRecord
from ccwatch.settings import Settings
from ccwatch.warehouse.normalize.base import NormalizeError

#: Atlassian's indication of an account deleted at the user's request (the other properties are
#: blank or defaulted): Jira Cloud ``User``/``UserDetails`` documentation
DELETED_DISPLAY_NAME = "former user"


def jira_person(user: Any) -> str | None:
    """emailAddress when visible, else accountId (Cloud), else name (Server); ``None`` for an actor
    Jira does not name (CONTROLS.md "People", r2: *unknown*, in no list, never the same person as
    anyone): no user object (an anonymous change, or a user whose record is gone), an object naming
    no identifier, a corrupted record (``accountId`` or ``accountType`` ``unknown``), or an account
    deleted at the user's request (inactive, ``displayName`` "Former user", no email).  A deactivated
    account that still names someone is that person."""
    if not isinstance(user, dict):
        return None
    if str(user.get("accountId") or "").lower() == "unknown" or str(user.get("accountType") or "").lower() == "unknown":
        return None
    if (user.get("active") is False and not user.get("emailAddress")
            and str(user.get("displayName") or "").strip().lower() == DELETED_DISPLAY_NAME):
        return None
    for k in ("emailAddress", "accountId", "name"):
        if user.get(k):
            return str(user[k])
    return None


# --- rich text ------------------------------------------------------------------

_BLOCKS = {"paragraph", "heading", "blockquote", "codeBlock", "listItem", "bulletList", "orderedList",
           "panel", "rule", "tableRow", "mediaSingle", "mediaGroup", "expand", "nestedExpand",
           "decisionItem", "taskItem", "blockCard", "table"}


def flatten_adf(node: Any) -> str:
    """Plain text of an ADF document: text nodes in order, one line per block."""
    out: list[str] = []

    def walk(n: Any) -> None:
        if isinstance(n, list):
            for c in n:
                walk(c)
            return
        if not isinstance(n, dict):
            return
        t = n.get("type")
        attrs = n.get("attrs") or {}
        if t == "text":
            out.append(n.get("text", ""))
        elif t == "hardBreak":
            out.append("\n")
        elif t in ("mention", "emoji"):
            out.append(attrs.get("text") or attrs.get("shortName") or "")
        elif t in ("inlineCard", "blockCard"):
            out.append(attrs.get("url") or "")
        elif t == "date" and attrs.get("timestamp"):
            ts = datetime.fromtimestamp(int(attrs["timestamp"]) / 1000, UTC)
            out.append(ts.strftime("%Y-%m-%d"))
        elif t == "status":
            out.append(attrs.get("text") or "")
        walk(n.get("content"))
        if t in _BLOCKS:
            out.append("\n")

    walk(node)
    return re.sub(r"\n{2,}", "\n", "".join(out)).strip()


def field_text(value: Any) -> str | None:
    """Any Jira field value as plain text; blank -> None."""
    if value is None:
        return None
    if isinstance(value, dict):
        if value.get("type") == "doc":
            text = flatten_adf(value)
        elif "value" in value:  # select option (child in "child")
            text = str(value["value"] or "")
            if isinstance(value.get("child"), dict):
                text += " - " + str(value["child"].get("value") or "")
        else:
            text = str(value.get("name") or value.get("displayName") or value.get("key") or "")
    elif isinstance(value, list):
        parts = [field_text(v) for v in value]
        text = ", ".join(p for p in parts if p)
    else:
        text = str(value)
    text = text.strip()
    return text or None


# --- field names -> ids ---------------------------------------------------------


def resolve_field(config_key: str, ref: str, fields_payload: Any) -> str:
    """The Jira field id for a configured name or id."""
    fields = fields_payload if isinstance(fields_payload, list) else None
    if fields is None:
        if re.fullmatch(r"customfield_\d+", ref):
            return ref
        raise NormalizeError(f"{config_key}: cannot resolve Jira field {ref!r}: no field list was fetched")
    if any(f.get("id") == ref for f in fields):
        return ref
    matches = [f["id"] for f in fields if f.get("name") == ref]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise NormalizeError(f"{config_key}: no Jira field is named {ref!r} (use its exact name or its id)")
    raise NormalizeError(
        f"{config_key}: Jira field name {ref!r} is ambiguous ({', '.join(matches)}): configure the id instead"
    )


def configured_fields(settings: Settings, fields_payload: Any) -> dict[str, str]:
    """Column / required-field name -> field id, for every field the config names."""
    jf = settings.jira.fields
    out = {col: resolve_field(f"jira.fields.{col}", getattr(jf, col), fields_payload)
           for col in ("business_justification", "risk_assessment", "testing_plan", "postmortem")}
    for i, name in enumerate(settings.jira.required_fields):
        out[f"required:{name}"] = resolve_field(f"jira.required_fields[{i}]", name, fields_payload)
    return out


# --- rows -----------------------------------------------------------------------


def browse_url(issue: dict[str, Any]) -> str | None:
    self_url = issue.get("self")
    if not isinstance(self_url, str) or "/rest/api/" not in self_url:
        return None
    return f"{self_url.split('/rest/api/', 1)[0]}/browse/{issue.get('key')}"


def ticket_row(rec: RawRecord, settings: Settings, fields_payload: Any) -> dict[str, Any]:
    issue = rec.payload
    if not isinstance(issue, dict) or not isinstance(issue.get("fields"), dict):
        raise NormalizeError(f"jira issue {rec.natural_key}: payload has no 'fields' object")
    f = issue["fields"]
    ids = configured_fields(settings, fields_payload)
    status = f.get("status") or {}
    row = {
        "key": issue.get("key", rec.natural_key),
        "project": (f.get("project") or {}).get("key") or ticket_project(rec.natural_key),
        "ticket_exists": True,
        "summary": f.get("summary"),
        "issue_type": (f.get("issuetype") or {}).get("name"),
        "status": status.get("name"),
        "status_category": (status.get("statusCategory") or {}).get("key"),
        "priority": (f.get("priority") or {}).get("name"),
        "labels": list(f.get("labels") or []),
        "reporter": jira_person(f.get("reporter")),
        "created": parse_ts(f.get("created")),
        "updated": parse_ts(f.get("updated")),
        "browse_url": browse_url(issue),
    }
    for col in ("business_justification", "risk_assessment", "testing_plan", "postmortem"):
        row[col] = field_text(f.get(ids[col]))
    row["required_fields"] = {name: field_text(f.get(ids[f"required:{name}"])) for name in settings.jira.required_fields}
    return row


def missing_ticket_row(rec: RawRecord) -> dict[str, Any]:
    key = rec.natural_key
    return {"key": key, "project": ticket_project(key), "ticket_exists": False, "summary": None,
            "issue_type": None, "status": None, "status_category": None, "priority": None, "labels": [],
            "reporter": None, "created": None, "updated": None, "business_justification": None,
            "risk_assessment": None, "testing_plan": None, "postmortem": None, "required_fields": None,
            "browse_url": None}


def status_categories(issues: Iterable[Any]) -> dict[str, str]:
    """Status id and name -> statusCategory.key, from the statuses seen on issues."""
    out: dict[str, str] = {}
    for issue in issues:
        st = ((issue or {}).get("fields") or {}).get("status") if isinstance(issue, dict) else None
        cat = ((st or {}).get("statusCategory") or {}).get("key")
        if cat:
            if st.get("id") is not None:
                out[str(st["id"])] = cat
            if st.get("name"):
                out[st["name"]] = cat
    return out


def changelog_rows(rec: RawRecord, categories: dict[str, str]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Status items -> transitions; every other item -> field changes."""
    if not isinstance(rec.payload, list):
        raise NormalizeError(f"jira changelog {rec.natural_key}: payload is not a list of histories")
    key = rec.natural_key
    transitions: dict[str, dict[str, Any]] = {}
    changes: dict[tuple[str, str], dict[str, Any]] = {}
    for h in rec.payload:
        hid = str(h["id"])
        author, at = jira_person(h.get("author")), parse_ts(h.get("created"))
        for item in h.get("items") or []:
            fid = item.get("fieldId")
            if item.get("field") == "status" or fid == "status":
                to_id = item.get("to")
                cat = categories.get(str(to_id)) if to_id is not None else None
                transitions[hid] = {
                    "key": key, "history_id": hid, "author": author, "at": at,
                    "from_status": item.get("fromString"), "to_status": item.get("toString"),
                    "to_category": cat or categories.get(item.get("toString") or ""),
                }
            else:
                name = item.get("field") or fid or ""
                changes[(hid, name)] = {
                    "key": key, "history_id": hid, "field": name, "field_id": fid, "author": author, "at": at,
                    "from_string": _item_text(item, "from"), "to_string": _item_text(item, "to"),
                }
    return list(transitions.values()), list(changes.values())


def _item_text(item: dict[str, Any], side: str) -> str | None:
    text = item.get(f"{side}String")
    return text if text is not None else item.get(side)
