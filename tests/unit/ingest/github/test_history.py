"""The first-parent walkers (``ingest/github/history.py``) and the activity log's boundary
(``ingest/github/activity.py``): pure functions over REST-shaped commits and Activity items."""

from __future__ import annotations

from datetime import datetime

import pytest
from ccwatch.ingest.github.activity import boundary, state_at
from ccwatch.ingest.github.history import LineTooLong, complete_line, first_parent_chain

WIN = datetime(2026, 10, 26)
NULL = "0" * 40


def c(sha, *parents):
    return {"sha": sha, "parents": [{"sha": p} for p in parents], "commit": {"committer": {"date": "x"}}}


# main: a <- b <- p (not listed) <- q (not listed) <- d (tip); the store knows p and q alone
LINE = {"a": c("a"), "b": c("b", "a"), "p": c("p", "b"), "q": c("q", "p"), "d": c("d", "q", "side")}
LISTED = [LINE["d"], LINE["b"], LINE["a"]]


def fetcher(calls):
    def one(sha):
        calls.append(sha)
        return LINE.get(sha)
    return one


def shas(line):
    return [x["sha"] for x in line]


def test_missing_parents_are_fetched_until_the_boundary():
    calls = []
    line, fetched = complete_line(LISTED, "d", {"b"}, fetcher(calls), cap=10)
    assert fetched == ["q", "p"] == calls
    assert shas(line) == ["a", "b", "p", "q", "d"], "listed commits below the boundary stay on the line"


def test_a_missing_commit_below_the_boundary_is_not_fetched():
    listed = [LINE["d"], LINE["b"]]  # a is not listed (dated before the window), below the boundary b
    line, fetched = complete_line(listed, "d", {"b"}, fetcher([]), cap=10)
    assert shas(line) == ["b", "p", "q", "d"] and fetched == ["q", "p"]


def test_without_a_boundary_only_the_tip_is_fetched_alone():
    line, fetched = complete_line([LINE["b"], LINE["a"]], "d", set(), fetcher([]), cap=10)
    assert shas(line) == ["d"] and fetched == ["d"], "a first run without a log keeps the committer-date window"


def test_the_boundary_hook_runs_once_before_the_first_fetch_and_may_stop_the_walk():
    ran = []
    line, fetched = complete_line(LISTED, "d", {"zz"}, fetcher([]), cap=10, before_first_fetch=lambda: ran.append(1))
    assert ran == [1] and fetched == ["q", "p"]
    known = {"zz"}  # e.g. the merge base the hook asks GitHub for is q itself
    line, fetched = complete_line(LISTED, "d", known, fetcher([]), cap=10, before_first_fetch=lambda: known.add("q"))
    assert shas(line) == ["d"] and fetched == []


def test_more_single_fetches_than_the_cap_raise():
    with pytest.raises(LineTooLong) as err:
        complete_line(LISTED, "d", {"a"}, fetcher([]), cap=1)
    assert err.value.fetched == 1 and err.value.at == "p"


def test_a_loop_ends_the_walk():
    loop = [c("x", "y"), c("y", "x")]
    line, _ = complete_line(loop, "x", {"zz"}, fetcher([]), cap=5)
    assert shas(line) == ["y", "x"]


def test_load_chain_uses_single_commits_through_the_lookup():
    stored = {"p": LINE["p"], "q": LINE["q"]}
    assert shas(first_parent_chain(LISTED, "d", stored.get)) == ["a", "b", "p", "q", "d"]
    assert shas(first_parent_chain(LISTED, "d")) == ["d"], "without the single commits the line stops at q"
    # a backdated tip the listing lacks is found through the lookup too
    assert shas(first_parent_chain([LINE["b"], LINE["a"]], "q", stored.get)) == ["a", "b", "p", "q"]


def act(i, kind, at, before, after):
    return {"id": i, "activity_type": kind, "timestamp": at, "before": before, "after": after,
            "ref": "refs/heads/main", "actor": None}


def test_boundary_and_state_at_window_start():
    entries = [act(3, "push", "2026-11-05T10:00:00Z", "b", "q"), act(2, "pr_merge", "2026-10-25T10:00:00Z", "a", "b"),
               act(1, "branch_creation", "2026-10-24T10:00:00Z", NULL, "a")]
    assert boundary(entries, WIN) == {"a", "b"}  # the null sha is never a boundary
    assert state_at(entries, WIN) == "b"
    in_window = entries[:1]
    assert boundary(in_window, WIN) == {"b"} and state_at(in_window, WIN) == "b"  # the before of the earliest read
    assert boundary([], WIN) == set() and state_at([], WIN) is None
