"""The bounded load's key index (warehouse/load_index.py): which record of each key wins, where,
the 304s and the lookups the normalisers ask of the whole load."""

from __future__ import annotations

import gc
import weakref

from ccwatch.warehouse.load_index import LoadIndex

from tests.helpers.payloads import REPO, SHA_A, SHA_B, issue, pull, rec


def test_index_positions_and_lookups_follow_the_last_record_of_each_key():
    records = [rec("github", "pull", f"{REPO}#1", pull(1)),                       # key 0
               rec("github", "commit_pulls", f"{REPO}@{SHA_A}", [pull(1)]),       # key 1: 200, then 304
               rec("github", "gql_commit_pulls", f"{REPO}@{SHA_B}", None, 304),   # key 2: 304, then 200
               rec("github", "commits", f"{REPO}:main", []),                     # key 3
               rec("github", "pull", f"{REPO}#1", pull(1)),                       # key 0 again: wins here
               rec("github", "commit_pulls", f"{REPO}@{SHA_A}", None, 304),
               rec("github", "gql_commit_pulls", f"{REPO}@{SHA_B}", {"x": 1}),
               rec("jira", "issue", "PAY-2", issue()),                            # key 4
               rec("github", "commits", f"{REPO}:release", None, 304)]            # key 5: a 304 alone
    index = LoadIndex(lambda: iter(records))
    assert [(pos, r.natural_key) for pos, r in index.winners(lambda: iter(records))] == [
        (3, f"{REPO}:main"), (0, f"{REPO}#1"), (2, f"{REPO}@{SHA_B}"), (4, "PAY-2")]
    assert [r.natural_key for r in index.unchanged()] == [f"{REPO}@{SHA_A}", f"{REPO}:release"]
    assert ("github", "pull", f"{REPO}#1") in index and ("github", "pull", f"{REPO}#2") not in index
    assert ("github", "commit_pulls", f"{REPO}@{SHA_A}") not in index  # its last record is a 304
    assert not index.commit_pulls_200(("github", "commit_pulls", f"{REPO}@{SHA_A}"))
    assert index.commit_pulls_200(("github", "gql_commit_pulls", f"{REPO}@{SHA_B}"))
    assert index.commit_keys == [("github", "commits", f"{REPO}:main")]
    assert [code for code, _ in index.issues] == [200]


def test_a_winner_handed_to_the_load_is_not_kept_alive_by_the_index():
    """(issue #15) The load drops a chunk's parsed records once normalised; the index must not hold the
    last one it handed over (the busiest branch's commit list: hundreds of MB parsed) until the next read."""
    made = []

    def record(n: int):
        r = rec("github", "pull", f"{REPO}#{n}", pull(n))
        made.append(weakref.ref(r))
        return r

    def read():  # as the staging reader: holds nothing it handed over
        yield record(1)
        yield record(2)

    index = LoadIndex(read)
    made.clear()
    winners = index.winners(read)
    first = next(winners)
    assert first[1].natural_key == f"{REPO}#1"
    first = None
    gc.collect()
    assert made[0]() is None
    assert next(winners)[1].natural_key == f"{REPO}#2"
