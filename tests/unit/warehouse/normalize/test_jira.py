"""Jira payloads (real API shapes, trimmed) -> ticket rows: who acted, and which field an item changed.

Actor shapes follow Atlassian's documented ``UserDetails`` / ``User`` objects: a changelog
history's ``author`` is optional (anonymous changes, and users whose record is gone, come without
one), an account deleted at the user's request keeps only an indication in ``displayName``
("Former user") with the other properties blank or defaulted, a corrupted record answers
``accountId: "unknown"``, and ``accountType`` may be ``unknown``.  Such an actor is *unknown*
(CONTROLS.md "People", r2): stored as NULL, so it is in no list and is never the same person as
anyone.  A deactivated account that still names someone stays that person.
"""

from __future__ import annotations

from datetime import datetime

import pytest
from ccwatch.settings import load_settings
from ccwatch.warehouse.normalize.batch import normalize_batch
from ccwatch.warehouse.normalize.jira import jira_person

from tests.helpers.paths import CONFIG
from tests.helpers.payloads import FIELDS, jira_user, rec


@pytest.fixture(scope="module")
def settings():
    return load_settings(str(CONFIG))


CLOUD = "https://acme.atlassian.net/rest/api/3/user?accountId="
AVATARS = {s: f"https://avatar.example/{s}" for s in ("48x48", "24x24", "16x16", "32x32")}


@pytest.mark.parametrize("who,want", [
    (None, None),  # anonymous, or a Server user whose record is gone
    ({}, None),
    ({"self": CLOUD + "unknown", "accountId": "unknown", "avatarUrls": AVATARS, "displayName": "Unknown",
      "active": False, "timeZone": "UTC", "accountType": "unknown"}, None),  # corrupted record of a deleted user
    ({"self": CLOUD + "5b10x", "accountId": "5b10x", "displayName": "Someone", "active": True,
      "accountType": "unknown"}, None),
    ({"self": CLOUD + "557058:f0e1", "accountId": "557058:f0e1", "avatarUrls": AVATARS, "displayName": "Former user",
      "active": False, "timeZone": "UTC", "accountType": "atlassian"}, None),  # deleted at the user's request
    ({"self": "https://jira.acme/rest/api/2/user?username=", "displayName": "", "active": False}, None),
    ({"self": CLOUD + "5b10d", "accountId": "5b10d", "emailAddress": "dave@acme.example", "displayName": "Dave",
      "active": False, "accountType": "atlassian"}, "dave@acme.example"),  # deactivated, still names Dave
    ({"self": CLOUD + "5b10e", "accountId": "5b10e", "displayName": "Erin", "active": False,
      "accountType": "atlassian"}, "5b10e"),
    ({"self": "https://jira.acme/rest/api/2/user?username=jdoe", "name": "jdoe", "key": "JIRAUSER10100",
      "displayName": "John Doe", "active": False}, "jdoe"),  # Server: deactivated
    (jira_user(email="carol@acme.example"), "carol@acme.example"),
])
def test_unknown_jira_actors(who, want):
    assert jira_person(who) == want


def test_changelog_by_unknown_actors_keeps_the_event_without_a_person(settings):
    hist = [  # GET /rest/api/3/issue/PAY-7/changelog values: one history without author, one deleted user
        {"id": "10001", "created": "2026-11-01T10:00:00.000+0000",
         "items": [{"field": "status", "fieldtype": "jira", "fieldId": "status", "from": "3", "fromString": "In Review",
                    "to": "10005", "toString": "Approved"}]},
        {"id": "10002", "author": {"self": CLOUD + "557058:f0e1", "accountId": "557058:f0e1", "avatarUrls": AVATARS,
                                   "displayName": "Former user", "active": False, "timeZone": "UTC",
                                   "accountType": "atlassian"},
         "created": "2026-11-02T10:00:00.000+0000",
         "items": [{"field": "Post-Mortem", "fieldtype": "custom", "fieldId": "customfield_10013", "from": None,
                    "fromString": None, "to": None, "toString": "root cause"}]},
    ]
    b = normalize_batch([rec("jira", "fields", "fields", FIELDS), rec("jira", "changelog", "PAY-7", hist)], settings)
    [tr] = b.rows["ticket_transitions"]
    [fc] = b.rows["ticket_field_changes"]
    assert (tr["author"], tr["to_status"], tr["at"]) == (None, "Approved", datetime(2026, 11, 1, 10, 0))
    assert (fc["author"], fc["field_id"], fc["to_string"]) == (None, "customfield_10013", "root cause")


def test_changelog_items_keep_the_field_name_and_id_as_sent(settings):
    """Cloud items carry ``fieldId``; Server/Data Center items may not; an item keeps the name the
    field had when it changed (a renamed field).  Matching them to configured fields happens in the
    shared facts, through Jira's field list."""
    cloud = [{"id": "20001", "author": jira_user(account="557058:alice"), "created": "2026-11-03T10:00:00.000+0000",
              "items": [
                  {"field": "Risk", "fieldtype": "custom", "fieldId": "customfield_10011", "from": None,
                   "fromString": None, "to": None, "toString": "Low"},  # renamed since: now "Risk Assessment"
                  {"field": "labels", "fieldtype": "jira", "fieldId": "labels", "from": None, "fromString": "",
                   "to": None, "toString": "emergency hotfix"},
                  {"field": "priority", "fieldtype": "jira", "fieldId": "priority", "from": "3", "fromString": "Medium",
                   "to": "1", "toString": "Highest"},
                  {"field": "issuetype", "fieldtype": "jira", "fieldId": "issuetype", "from": "10001",
                   "fromString": "Story", "to": "10100", "toString": "Emergency Change"}]}]
    server = [{"id": "30001", "author": jira_user(name="jdoe"), "created": "2026-11-03T10:00:00.000+0000",
               "items": [{"field": "Risk Assessment", "fieldtype": "custom", "from": None, "fromString": None,
                          "to": None, "toString": "Low"},
                         {"field": "labels", "fieldtype": "jira", "from": None, "fromString": "emergency",
                          "to": None, "toString": ""}]}]
    b = normalize_batch([rec("jira", "changelog", "PAY-7", cloud), rec("jira", "changelog", "OPS-1", server)],
                        settings)
    got = sorted((r["key"], r["field"], r["field_id"], r["from_string"], r["to_string"])
                 for r in b.rows["ticket_field_changes"])
    assert got == [
        ("OPS-1", "Risk Assessment", None, None, "Low"),
        ("OPS-1", "labels", None, "emergency", ""),
        ("PAY-7", "Risk", "customfield_10011", None, "Low"),
        ("PAY-7", "issuetype", "issuetype", "Story", "Emergency Change"),
        ("PAY-7", "labels", "labels", "", "emergency hotfix"),
        ("PAY-7", "priority", "priority", "Medium", "Highest"),
    ]
