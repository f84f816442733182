"""Issue #15: the PRs a commit-to-PR record links, for the nightly search's lag guard."""

from __future__ import annotations

from ccwatch.common.times import parse_ts
from ccwatch.ingest.github.commit_links import linked_merged
from ccwatch.ingest.records import RawRecord

LO, HI = parse_ts("2026-11-24T00:00:00Z"), parse_ts("2026-11-25T00:00:00Z")


def rec(kind: str, payload) -> RawRecord:
    return RawRecord("github", kind, "o/r@abc", "https://api.github.com/x", "2026-11-25T00:00:00Z", payload)


def test_graphql_links_keep_prs_merged_into_the_branch_in_the_range():
    node = {"oid": "abc", "associatedPullRequests": {"nodes": [
        {"number": 7, "baseRefName": "main", "mergedAt": "2026-11-24T10:00:00Z"},
        {"number": 8, "baseRefName": "release", "mergedAt": "2026-11-24T10:00:00Z"},  # another base
        {"number": 9, "baseRefName": "main", "mergedAt": None},                        # not merged
        {"number": 10, "baseRefName": "main", "mergedAt": "2026-11-23T23:59:59Z"},     # before the range
        {"number": 11, "baseRefName": "main", "mergedAt": "2026-11-25T00:00:00Z"},     # the upper bound
    ]}}
    assert linked_merged(rec("gql_commit_pulls", node), "main", LO, HI) == {7, 11}


def test_rest_links_and_other_kinds():
    pulls = [{"number": 3, "base": {"ref": "main"}, "merged_at": "2026-11-24T01:00:00Z"},
             {"number": 4, "base": {"ref": "main"}, "merged_at": "not a time"}]
    assert linked_merged(rec("commit_pulls", pulls), "main", LO, HI) == {3}
    assert linked_merged(rec("commit_pulls", None), "main", LO, HI) == set()
    assert linked_merged(rec("gql_commit_pulls", {"associatedPullRequests": None}), "main", LO, HI) == set()
    assert linked_merged(rec("gql_pull", {"number": 5}), "main", LO, HI) == set()
