"""common/changes.py: change ids, folder names and the ticket a PR title links (CONTROLS.md)."""

from __future__ import annotations

import re

from ccwatch.common.changes import change_folder, is_direct_push, ticket_project, title_ticket_key

PATTERN = re.compile(r"\b([A-Z][A-Z0-9]+-\d+)\b")


def test_change_kinds_and_folders():
    assert not is_direct_push("acme/api#12") and is_direct_push("acme/api@" + "a" * 40)
    assert change_folder("acme/api#12") == "acme__api__pr-12"
    assert change_folder("acme/api@" + "a" * 40) == "acme__api__push-" + "a" * 40
    hostile = change_folder("../../etc")
    assert "/" not in hostile and not hostile.startswith(".") and change_folder("") == "_"


def test_the_first_in_scope_key_of_the_title_links():
    assert title_ticket_key("SHA-256 pinning [PAY-7]", PATTERN, {"PAY"}) == ("PAY-7", "SHA-256")
    assert title_ticket_key("fix [FOO-9]", PATTERN, {"PAY"}) == (None, "FOO-9")
    assert title_ticket_key("PAY-1 then PAY-2", PATTERN, {"PAY"}) == ("PAY-1", "")
    assert title_ticket_key(None, PATTERN, {"PAY"}) == (None, "")


def test_a_project_is_everything_before_the_last_dash():
    assert ticket_project("PAY-7") == "PAY"
    key, _ = title_ticket_key("A-B-3", re.compile(r"\b([A-Z](?:-?[A-Z])*-\d+)\b"), {"A-B"})
    assert key == "A-B-3"  # the fetch (referenced tickets) and the facts agree on such keys
