"""What a change's evidence folder holds (``publish/evidence/contents.py``), record by record."""

from __future__ import annotations

from datetime import datetime

from ccwatch.publish.evidence.contents import change_evidence_files, repo_evidence_files
from ccwatch.publish.evidence.reader import RawEvidence
from ccwatch.warehouse.connection import connect

from tests.helpers.controls_world import make_settings

PAY = "acme/payments-api"
SHA = "5" * 40


def _raw(con, kind, key, payload, status=200, at=datetime(2026, 11, 25)):
    import json

    con.execute("DELETE FROM raw_payloads WHERE kind = ? AND natural_key = ?", [kind, key])
    con.execute("INSERT INTO raw_payloads VALUES ('github', ?, ?, ?, ?, NULL, ?, ?)",
                [kind, key, f"https://api.github.com/repos/{PAY}/x", at, status, json.dumps(payload)])


def test_a_direct_push_fetched_alone_has_its_commit_in_the_folder():
    """(r2) A commit dated before the listing's window and pushed inside it is not in the commits
    list: its single-commit record is the evidence."""
    con = connect(":memory:")
    _raw(con, "commits", f"{PAY}:main", [])
    _raw(con, "commit", f"{PAY}@{SHA}", {"sha": SHA, "commit": {"message": "sneak"}, "parents": []})
    _raw(con, "commit_pulls", f"{PAY}@{SHA}", [])
    files = change_evidence_files(RawEvidence(con, datetime(2026, 11, 25)), make_settings(),
                                  {"change_id": f"{PAY}@{SHA}", "repo": PAY, "change_kind": "direct_push", "sha": SHA})
    assert files["commit.json"]["kind"] == "commit" and files["commit.json"]["payload"]["sha"] == SHA
    assert files["_missing"] == []


def test_the_repository_folder_holds_the_activity_log_or_says_it_is_missing():
    con = connect(":memory:")
    files = repo_evidence_files(RawEvidence(con, datetime(2026, 11, 25)), make_settings(), PAY)
    assert f"github activity {PAY}:main" in files["_missing"]
    _raw(con, "activity", f"{PAY}:main", {"message": "Resource not accessible by integration"}, 403)
    files = repo_evidence_files(RawEvidence(con, datetime(2026, 11, 25)), make_settings(), PAY)
    assert files["activity.json"]["status_code"] == 403  # an unreadable log is evidence too


def test_the_repository_folder_holds_the_graphql_settings_node_and_an_older_rest_one_only_without_it():
    """(issue #15) The settings come as a GraphQL Repository node (``gql_repository`` ->
    ``repository.graphql.json``).  A warehouse from before still holds the REST ``repo`` record: it is
    the evidence only while no node is stored (never both: the REST copy stops being revalidated)."""
    con = connect(":memory:")
    files = repo_evidence_files(RawEvidence(con, datetime(2026, 11, 25)), make_settings(), PAY)
    assert f"github gql_repository {PAY}" in files["_missing"] and "repo.json" not in files
    _raw(con, "repo", PAY, {"id": 5001, "full_name": PAY})
    files = repo_evidence_files(RawEvidence(con, datetime(2026, 11, 25)), make_settings(), PAY)
    assert files["repo.json"]["payload"]["full_name"] == PAY and "repository.graphql.json" not in files
    assert not [m for m in files["_missing"] if "repo" in m.split()[1]]
    _raw(con, "gql_repository", PAY, {"id": "R_1", "nameWithOwner": PAY, "visibility": "PRIVATE"})
    files = repo_evidence_files(RawEvidence(con, datetime(2026, 11, 25)), make_settings(), PAY)
    assert files["repository.graphql.json"]["payload"]["nameWithOwner"] == PAY and "repo.json" not in files
    assert not [m for m in files["_missing"] if "repo" in m.split()[1]]


def test_rest_branch_is_in_the_folder_only_when_asked_since_the_node_that_holds_the_tip():
    """(stop 31) The GraphQL node holds the production branch's tip; REST's branch is asked only where
    the classic protection is the 404 (for its flag).  An older night's copy is not this night's evidence."""
    con = connect(":memory:")
    node = {"id": "R_1", "nameWithOwner": PAY, "productionBranch": {"name": "main", "target": {"oid": SHA}}}
    branch = {"name": "main", "commit": {"sha": SHA}, "protected": False}

    def files():
        return repo_evidence_files(RawEvidence(con, datetime(2026, 11, 25)), make_settings(), PAY)
    _raw(con, "gql_repository", PAY, {"id": "R_1", "nameWithOwner": PAY})  # a node from before stop 31
    assert f"github branch {PAY}:main" in files()["_missing"]
    _raw(con, "gql_repository", PAY, node, at=datetime(2026, 11, 25, 2, 0, 1))
    assert "branch.json" not in files() and not [m for m in files()["_missing"] if "branch " in m]
    _raw(con, "branch", PAY + ":main", branch, at=datetime(2026, 11, 24, 2, 3))  # the night before
    assert "branch.json" not in files()
    _raw(con, "branch", PAY + ":main", branch, at=datetime(2026, 11, 25, 2, 3))  # asked (or a 304) tonight
    assert files()["branch.json"]["payload"] == branch


def _jira(con, kind, key, payload, at):
    import json

    con.execute("DELETE FROM raw_payloads WHERE source = 'jira' AND kind = ? AND natural_key = ?", [kind, key])
    con.execute("INSERT INTO raw_payloads VALUES ('jira', ?, ?, ?, ?, NULL, 200, ?)",
                [kind, key, f"https://acme.atlassian.net/rest/api/2/{kind}", at, json.dumps(payload)])


def test_a_change_folder_keeps_its_bytes_when_the_shared_lists_are_only_revalidated():
    """(issue #15) The deployments lists and Jira's field list are asked again every night (a 304 moves
    their fetch time).  A change folder names them without that time, so a change whose own records did
    not move has the same bytes from one evidence date to the next; the lists' fetch times are in the
    repository folder (deployment_lists.json) and in the top-level jira_field_list.json."""
    from ccwatch.publish.evidence import jsonfast

    con = connect(":memory:")
    cid = f"{PAY}#12"
    _raw(con, "pull", cid, {"number": 12, "head": {"sha": SHA}})
    _raw(con, "reviews", cid, [])
    _jira(con, "issue", "PAY-7", {"key": "PAY-7", "fields": {"customfield_10001": "why"}}, datetime(2026, 11, 24))
    _jira(con, "changelog", "PAY-7", [], datetime(2026, 11, 24))
    change = {"change_id": cid, "repo": PAY, "ticket_key": "PAY-7", "merged_at": datetime(2026, 11, 20)}

    def folder(night):
        _raw(con, "deployments", f"{PAY}:production", [{"id": 3001, "sha": SHA}], at=night)
        _jira(con, "fields", "fields", [{"id": "customfield_10001", "name": "Justification"}], night)
        raw = RawEvidence(con, night)
        files = change_evidence_files(raw, make_settings(), change)
        return {n: jsonfast.dumps(v) for n, v in files.items()}, repo_evidence_files(raw, make_settings(), PAY)

    first, repo1 = folder(datetime(2026, 11, 25, 2))
    second, repo2 = folder(datetime(2026, 11, 26, 2))
    assert first == second
    assert "deployments.json" in first and "ticket_fields.json" in first
    lists = {e["environment"]: e for e in repo2["deployment_lists.json"]}
    assert lists["production"]["source"]["fetched_at"] == "2026-11-26T02:00:00Z"
    assert lists["production"]["source"]["url"] == f"https://api.github.com/repos/{PAY}/x"
    assert repo1["deployment_lists.json"] != repo2["deployment_lists.json"]
