"""A night that only adds newer items to a stored list (warehouse/appends.py): the load normalises
only those items, and leaves every table as the former load, which normalised the whole merged
list again (tests/helpers/one_batch.py, the reference), would: for a branch's commits (the
first-parent chain continued from the stored tip), an environment's deployments and the activity
log; and where the night is not such a continuation (a force push, a commit fetched alone below
the stored line, a PR asked again for a stored commit), the same as the reference too."""

from __future__ import annotations

import pytest
from ccwatch.warehouse.connection import connect
from ccwatch.warehouse.store import load_records

from tests.helpers import one_batch
from tests.helpers.payloads import REPO, commit, pull, rec, user

ALL_TABLES_SQL = ("SELECT table_name FROM information_schema.tables WHERE table_schema = 'main' "
                  "AND table_type = 'BASE TABLE' ORDER BY table_name")
BRANCH, ENV = f"{REPO}:main", f"{REPO}:production"


def sha(n: int) -> str:
    return f"{n:040x}"


def day(n: int) -> str:
    return f"2026-11-{n:02d}T10:00:00Z"


def line(first: int, last: int, parent: int | None = None) -> list[dict]:
    """Commits ``first``..``last`` on one first-parent line (each the parent of the next), newest
    first as the REST listing answers; ``first``'s parent is ``parent``."""
    out = []
    for n in range(first, last + 1):
        p = n - 1 if n > first else parent
        out.append(commit(sha(n), [] if p is None else [sha(p)], date=day(n)))
    return out[::-1]


def pulls_of(n: int, number: int | None = None) -> object:
    """``/commits/{sha}/pulls`` of commit ``n``: the PR that merged it, or none (a direct push)."""
    return [pull(number)] if number else []


def deployment(i: int, n: int) -> dict:
    return {"id": i, "sha": sha(n), "ref": "main", "environment": "production",
            "creator": user("github-actions[bot]", "Bot"), "created_at": day(n)}


def entry(i: int, n: int) -> dict:
    return {"id": i, "node_id": "RA", "before": sha(n - 1), "after": sha(n), "ref": "refs/heads/main",
            "timestamp": day(n), "activity_type": "push", "actor": user("carol-dev")}


def night(tip: int, commits: list[dict], pr_numbers: dict[int, int | None], deployments: list[dict],
          entries: list[dict]) -> list:
    return [
        rec("github", "branch", BRANCH, {"name": "main", "commit": {"sha": sha(tip)}, "protected": True}),
        rec("github", "commits", BRANCH, commits),
        *(rec("github", "commit_pulls", f"{REPO}@{sha(n)}", pulls_of(n, num)) for n, num in pr_numbers.items()),
        rec("github", "deployments", ENV, deployments),
        rec("github", "activity", BRANCH, entries),
    ]


BACKFILL = night(5, line(1, 5), {n: (n if n % 2 else None) for n in range(1, 6)},
                 [deployment(i, i) for i in (5, 3, 1)], [entry(i, i) for i in (5, 4, 3, 2)])


def snapshot(con) -> dict:
    tables = [t for (t,) in con.execute(ALL_TABLES_SQL).fetchall()]
    return {t: sorted(map(repr, con.execute(f'SELECT * FROM "{t}"').fetchall())) for t in tables}


def loaded(tmp_path, settings, nights: list[list]) -> dict:
    """Each night loaded by the bounded load (in 2-record chunks) and by the reference: the counts
    of the last night, and the warehouses, which must be equal."""
    out = {}
    for name, load in (("bounded", lambda c, r, s: load_records(c, r, s, chunk_records=2)),
                       ("reference", one_batch.load_records)):
        con = connect(str(tmp_path / f"{name}.duckdb"))
        try:
            for records in nights:
                counts = load(con, records, settings)
            line_ = con.execute("SELECT sha, position, pr_numbers FROM commits ORDER BY position").fetchall()
            out[name] = (counts, snapshot(con), line_)
        finally:
            con.close()
    assert out["bounded"][1] == out["reference"][1]
    return {"counts": out["bounded"][0], "full": out["reference"][0], "line": out["bounded"][2]}


def test_a_night_on_top_of_the_stored_lists_normalises_only_its_new_items(tmp_path, settings):
    # 2 commits pushed on the stored tip (5), the tip repeated as GitHub lists it; a deployment; an entry
    tonight = night(7, line(6, 7, parent=5) + line(5, 5, parent=4), {6: 6, 7: None},
                    [deployment(7, 7), deployment(5, 5)], [entry(7, 7), entry(6, 6), entry(5, 5)])
    got = loaded(tmp_path, settings, [BACKFILL, tonight])
    assert (got["counts"]["commits"], got["counts"]["deployments"], got["counts"]["branch_activity"]) == (2, 1, 2)
    assert (got["full"]["commits"], got["full"]["deployments"], got["full"]["branch_activity"]) == (7, 4, 6)
    assert [(s, pos) for s, pos, _ in got["line"]] == [(sha(n), n - 1) for n in range(1, 8)]


def test_a_night_that_moved_nothing_on_the_line_adds_no_commit(tmp_path, settings):
    """The tip stayed; the listing brought a commit of a merged side branch only (not first-parent)."""
    side = commit(sha(99), [sha(3)], date=day(6))
    got = loaded(tmp_path, settings, [BACKFILL, night(5, [side, *line(5, 5, parent=4)], {}, [deployment(5, 5)],
                                                      [entry(5, 5)])])
    assert got["counts"].get("commits", 0) == 0
    assert len(got["line"]) == 5


@pytest.mark.parametrize("case", ["force push", "reset to a stored commit", "the line completed below",
                                  "a changed copy of the tip"])
def test_a_night_that_is_not_a_continuation_gives_the_whole_list_normalised(tmp_path, settings, case):
    tonight = {
        # the new tip's line never reaches the stored tip (history rewritten: CC8.1-14's case)
        "force push": night(9, line(8, 9, parent=77), {8: 8, 9: None}, [], []),
        # the new commit's parent is a stored commit below the stored tip
        "reset to a stored commit": night(8, line(8, 8, parent=3), {8: None}, [], []),
        # the new commit is on the tip, and the commit below the stored line's oldest (fetched alone,
        # raw kind ``commit``) now extends the whole line down: every position moves
        "the line completed below": night(6, line(6, 6, parent=5), {6: None}, [], []),
        # the fetch's copy of the stored tip differs from the stored one (the whole list is written again)
        "a changed copy of the tip": night(6, line(6, 6, parent=5) + [commit(sha(5), [sha(4)], date=day(5), msg="m2")],
                                           {6: None}, [], []),
    }[case]
    backfill = BACKFILL
    if case == "the line completed below":
        backfill = [r if r.kind != "commits" else rec("github", "commits", BRANCH, line(2, 5, parent=1)) for r in BACKFILL]
        tonight = [*tonight, rec("github", "commit", f"{REPO}@{sha(1)}", commit(sha(1), [], date=day(1)))]
    got = loaded(tmp_path, settings, [backfill, tonight])
    assert got["counts"]["commits"] == got["full"]["commits"] > 0
    if case == "the line completed below":
        assert [(s, pos) for s, pos, _ in got["line"]][:2] == [(sha(1), 0), (sha(2), 1)]


def test_a_pr_asked_again_for_a_stored_commit_updates_its_row(tmp_path, settings):
    """Tonight asked the PRs of a stored commit again (4, a direct push until now): its row follows
    them, as in the whole list normalised again, while only the new commit is normalised."""
    got = loaded(tmp_path, settings, [BACKFILL, night(6, line(6, 6, parent=5), {6: None, 4: 44}, [], [])])
    assert got["counts"]["commits"] == 1
    prs = {s: numbers for s, _, numbers in got["line"]}
    assert prs[sha(4)] == [44] and prs[sha(6)] == []


def test_a_merged_branch_commit_dated_below_the_stored_tip_still_appends(tmp_path, settings):
    """A merge commit brings a branch commit committed before the stored tip: the merge sorts it
    among the stored items, so the items are written again from there up, and the normalisation
    still adds the one new line commit on top of the stored ones."""
    side = commit(sha(50), [sha(3)], date="2026-11-04T22:00:00Z")
    merge = commit(sha(6), [sha(5), sha(50)], date=day(6))
    got = loaded(tmp_path, settings, [BACKFILL, night(6, [merge, *line(5, 5, parent=4), side], {6: 6, 50: None},
                                                      [], [])])
    assert (got["counts"]["commits"], got["full"]["commits"]) == (1, 6)
    assert [(s, pos) for s, pos, _ in got["line"]] == [(sha(n), n - 1) for n in range(1, 7)]


def test_a_stored_item_without_an_id_above_the_kept_tail_makes_the_whole_list_normalised(tmp_path, settings):
    """A listed item without a sha (off the line, so the load stores it) that a new item sorts below:
    it is in the head, where the new items are found again by id; the night normalises the whole
    list instead, as the reference does, rather than failing."""
    nameless = commit(sha(40), [sha(2)], date="2026-11-03T12:00:00Z")
    del nameless["sha"]
    backfill = [r if r.kind != "commits" else rec("github", "commits", BRANCH, [*line(4, 5, parent=3), nameless,
                                                                                 *line(1, 3)]) for r in BACKFILL]
    side = commit(sha(60), [sha(2)], date="2026-11-03T06:00:00Z")
    got = loaded(tmp_path, settings, [backfill, night(6, [*line(6, 6, parent=5), side], {6: None}, [], [])])
    assert got["counts"]["commits"] == got["full"]["commits"] == 6


def test_a_direct_push_backdated_below_the_stored_tip_is_appended_as_a_direct_push(tmp_path, settings):
    """Whoever pushes writes the committer date: a direct push on the stored tip, dated before it, sorts
    among the stored items, yet it is on the line from the new tip, so it gets its row, numbered on,
    with no PR (a direct push for the controls), as the whole list normalised again gives it."""
    pushed = commit(sha(6), [sha(5)], date="2026-11-04T12:00:00Z")  # stored tip 5 is dated the 5th
    got = loaded(tmp_path, settings, [BACKFILL, night(6, [pushed], {6: None}, [], [])])
    assert got["counts"]["commits"] == 1
    assert got["line"][-1] == (sha(6), 5, [])
