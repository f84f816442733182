"""(stop 31) The tip and the "protected" flag the warehouse holds for a production branch
(warehouse/stored_branch.py): the repository's GraphQL node first, REST's branch where it has none."""

from __future__ import annotations

import pytest
from ccwatch.warehouse.store import load_records
from ccwatch.warehouse.stored_branch import StoredBranch, stored_branch

from tests.helpers.payloads import REPO, SHA_A, SHA_B, rec

KEY = f"{REPO}:main"


def node(flagged: bool = True, branch: str = "main") -> dict:
    ref = {"name": branch, "target": {"oid": SHA_B}}
    if flagged:
        ref.update(branchProtectionRule=None, rules={"totalCount": 0})
    return {"id": "R_1", "nameWithOwner": REPO, "productionBranch": ref}


REST = {"name": "main", "commit": {"sha": SHA_A}, "protected": True}  # an older night's copy


@pytest.mark.parametrize(("records", "held"), [
    ([rec("github", "gql_repository", REPO, node())], StoredBranch(SHA_B, False)),
    ([rec("github", "gql_repository", REPO, node()), rec("github", "branch", KEY, REST)], StoredBranch(SHA_B, False)),
    ([rec("github", "gql_repository", REPO, node(flagged=False)), rec("github", "branch", KEY, REST)],
     StoredBranch(SHA_B, True)),   # GitHub would not give the flag: REST's branch says it
    ([rec("github", "gql_repository", REPO, node(branch="release")), rec("github", "branch", KEY, REST)],
     StoredBranch(SHA_A, True)),   # a node of another branch (the config changed) is not this branch's
    ([rec("github", "branch", KEY, REST)], StoredBranch(SHA_A, True)),  # a warehouse from before stop 31
    ([], StoredBranch(None, None)),
])
def test_the_node_outvotes_rest_and_rest_fills_what_it_lacks(con, settings, records, held):
    if records:
        load_records(con, records, settings)
    assert stored_branch(con, REPO, "main") == held
