"""(stop 30) A classic protection the fetch kept without asking (warehouse/kept_protection.py): the
load refuses it unless the warehouse holds it as unprotected, a 404 with a branch that says false."""

from __future__ import annotations

import pytest
from ccwatch.warehouse.kept_protection import (
    KeptProtectionMismatch,
    ProtectionAnswers,
    check_kept_protection,
    unprotected,
)
from ccwatch.warehouse.store import load_records

from tests.helpers.payloads import API, CLASSIC, REPO, SHA_A, rec

KEY = f"{REPO}:main"
NOT_PROTECTED = {"message": "Branch not protected",
                 "documentation_url": "https://docs.github.com/rest/branches/branch-protection#get-branch-protection",
                 "status": "404"}


def branch(protected: bool) -> dict:
    """GET /repos/{o}/{r}/branches/main (trimmed)."""
    return {"name": "main", "commit": {"sha": SHA_A, "url": f"{API}/commits/{SHA_A}"},
            "_links": {"self": f"{API}/branches/main", "html": f"https://github.com/{REPO}/tree/main"},
            "protected": protected,
            "protection": {"enabled": protected, "required_status_checks": {
                "enforcement_level": "off", "contexts": [], "checks": []}},
            "protection_url": f"{API}/branches/main/protection"}


def stored(con, settings, protected: bool, protection: tuple[int, dict] | None) -> None:
    records = [rec("github", "branch", KEY, branch(protected))]
    if protection is not None:
        records.append(rec("github", "branch_protection", KEY, protection[1], protection[0]))
    load_records(con, records, settings)


def test_an_unprotected_branch_kept_unasked_passes(con, settings):
    stored(con, settings, False, (404, NOT_PROTECTED))
    assert unprotected(con, REPO, "main")
    check_kept_protection(con, settings, [REPO], set())  # nothing raised


@pytest.mark.parametrize(("protected", "protection", "held"), [
    (False, (200, CLASSIC), 'stored classic protection HTTP 200, the branch says "protected": false'),
    (True, (404, NOT_PROTECTED), 'stored classic protection HTTP 404, the branch says "protected": true'),
    (False, (403, {"message": "Resource not accessible by integration", "documentation_url": "d", "status": "403"}),
     "stored classic protection HTTP 403"),
    (False, None, "stored classic protection none"),
])
def test_a_protection_kept_unasked_that_is_not_a_404_of_an_unprotected_branch_is_refused(
        con, settings, protected, protection, held):
    stored(con, settings, protected, protection)
    assert not unprotected(con, REPO, "main")
    with pytest.raises(KeptProtectionMismatch) as exc:
        check_kept_protection(con, settings, [REPO, "acme/web-frontend"], set())
    message = str(exc.value)
    assert f"{REPO} (branch main: {held}" in message and "rerun the date for a full fetch" in message, message
    assert "acme/web-frontend" in message  # nothing stored for it either: named too


def test_a_protection_the_load_answers_or_a_repository_it_did_not_fetch_is_not_checked(con, settings):
    stored(con, settings, False, (200, CLASSIC))
    check_kept_protection(con, settings, [REPO], {KEY})  # answered tonight: the answer is the truth
    check_kept_protection(con, settings, [], set())  # not fetched by this load


def test_the_answers_are_noted_as_the_records_stream_past():
    answers = ProtectionAnswers()
    records = [rec("github", "branch", KEY, branch(True)), rec("github", "branch_protection", KEY, None, 304),
               rec("jira", "branch_protection", "x:main", {}, 200)]
    assert list(answers.note(records)) == records
    assert answers.keys == {KEY}


def node(rule=None, rules=0, flagged=True) -> dict:
    """The repository's GraphQL node (trimmed); ``flagged``: asked with the branch's protection flag."""
    ref = {"name": "main", "target": {"oid": SHA_A}}
    if flagged:
        ref.update(branchProtectionRule=rule, rules={"totalCount": rules})
    return {"id": "R_1", "nameWithOwner": REPO, "productionBranch": ref}


@pytest.mark.parametrize(("rest", "gql", "held"), [
    (None, node(), True),                              # the flag the node gives, without any REST branch
    (True, node(), True),                              # an older REST copy does not outvote tonight's node
    (False, node(rule={"id": "BPR_1"}), False),        # classic protection came back: not held as unprotected
    (False, node(rules=2), False),                     # so did a ruleset
    (False, node(flagged=False), True),                # asked without the flag: REST's branch decides
    (True, node(flagged=False), False),
])
def test_the_flag_comes_from_the_graphql_node_when_it_was_asked_with_it(con, settings, rest, gql, held):
    """(stop 31) The fetch reads the flag from the repository's GraphQL node where the plan says
    unprotected; the load holds the branch the same way (the node is asked every night)."""
    records = [rec("github", "gql_repository", REPO, gql), rec("github", "branch_protection", KEY, NOT_PROTECTED, 404)]
    if rest is not None:
        records.append(rec("github", "branch", KEY, branch(rest)))
    load_records(con, records, settings)
    assert unprotected(con, REPO, "main") is held
    if not held:
        with pytest.raises(KeptProtectionMismatch, match='the branch says "protected": true'):
            check_kept_protection(con, settings, [REPO], set())
