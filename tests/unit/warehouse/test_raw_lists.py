"""warehouse/raw_lists.py: the accumulating lists held as items, read back as the lists they were."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime

import pytest
from ccwatch.publish.evidence.reader import RawEvidence
from ccwatch.warehouse.raw_lists import payload_text
from ccwatch.warehouse.store import load_records

from tests.helpers.payloads import REPO, SHA_A, SHA_B, SHA_C, SHA_D, SHA_F, commit, rec

KEY = f"{REPO}:main"


def items(con):
    return con.execute("SELECT kind, natural_key, ord FROM raw_list_items ORDER BY ALL").fetchall()


def test_a_list_stored_before_migration_12_is_read_from_its_payload_and_moved_by_the_next_load(con, settings):
    """A warehouse of an earlier version holds its merged lists in ``raw_payloads.payload``: they
    are read from there (the evidence and the load see the same list), and the next load of the key
    merges into it and moves it into items."""
    old = [commit(SHA_B, [SHA_A], date="2026-11-02T10:00:00Z"), commit(SHA_A, [], date="2026-11-01T10:00:00Z")]
    con.execute("INSERT INTO raw_payloads VALUES ('github', 'commits', ?, 'u', TIMESTAMP '2026-11-24 00:00:00', "
                "'\"e1\"', 200, ?)", [KEY, json.dumps(old)])
    assert json.loads(payload_text(con, "github", "commits", KEY)) == old and items(con) == []
    raw = RawEvidence(con, datetime(2026, 11, 25))
    assert raw.get("github", "commits", KEY)["payload"] == old
    night = [commit(SHA_C, [SHA_B], date="2026-11-03T10:00:00Z")]
    load_records(con, [rec("github", "commits", KEY, night)], settings)
    assert json.loads(payload_text(con, "github", "commits", KEY)) == night + old
    assert con.execute("SELECT payload, etag FROM raw_payloads WHERE kind = 'commits'").fetchone() == (None, None)
    assert items(con) == [("commits", KEY, 0), ("commits", KEY, 1), ("commits", KEY, 2)]
    assert [r[0] for r in con.execute("SELECT sha FROM commits ORDER BY position").fetchall()] == [SHA_A, SHA_B, SHA_C]


def test_the_evidence_reads_the_merged_list_from_its_items(con, settings):
    """The evidence folder copies the list as the load merged it, with the fetch's provenance."""
    first = [commit(SHA_B, [SHA_A], date="2026-11-02T10:00:00Z"), commit(SHA_A, [], date="2026-11-01T10:00:00Z")]
    load_records(con, [rec("github", "commits", KEY, first)], settings)
    night = replace(rec("github", "commits", KEY, [commit(SHA_C, [SHA_B], date="2026-11-03T10:00:00Z")]),
                    fetched_at="2026-11-26T00:00:01Z", etag='"e2"')
    load_records(con, [night], settings)
    raw = RawEvidence(con, datetime(2026, 11, 26))
    got = raw.get("github", "commits", KEY)
    assert [c["sha"] for c in got["payload"]] == [SHA_C, SHA_B, SHA_A]
    assert (got["fetched_at"], got["etag"], got["status_code"]) == ("2026-11-26T00:00:01Z", None, 200)
    raw.prefetch([("github", "commits", KEY), ("github", "commits", f"{REPO}:other")])  # the batched read too
    assert raw.get("github", "commits", KEY)["payload"] == got["payload"]
    assert raw.get("github", "commits", f"{REPO}:other") is None


def test_a_304_keeps_a_list_held_as_items(con, settings):
    """A conditional request answered 304 needs a stored copy: a list held as items is one (its
    payload column is NULL), and the list, its items and its rows stay as they were."""
    listing = [commit(SHA_B, [SHA_A]), commit(SHA_A, [])]
    load_records(con, [rec("github", "commits", KEY, listing)], settings)
    before = items(con), con.execute("SELECT * FROM commits ORDER BY ALL").fetchall()
    load_records(con, [replace(rec("github", "commits", KEY, None, 304), fetched_at="2026-11-26T00:00:01Z")], settings)
    assert (items(con), con.execute("SELECT * FROM commits ORDER BY ALL").fetchall()) == before
    assert json.loads(payload_text(con, "github", "commits", KEY)) == listing
    assert con.execute("SELECT fetched_at FROM raw_payloads").fetchone() == (datetime(2026, 11, 26, 0, 0, 1),)


def test_an_empty_list_a_null_item_and_a_replaced_list_read_back_as_stored(con, settings):
    """What is not a non-empty list stays in the payload (``[]`` is ``[]``, never an absent record);
    items round-trip whatever they hold; an unreadable answer replaces the list, as the one value was
    replaced."""
    load_records(con, [rec("github", "deployments", f"{REPO}:production", [])], settings)
    assert payload_text(con, "github", "deployments", f"{REPO}:production") == "[]" and items(con) == []
    odd = [{"id": 2, "created_at": "2026-11-02T10:00:00Z", "note": "𝄞 \u2028"}, None, 7]
    load_records(con, [rec("github", "activity", KEY, odd)], settings)
    assert json.loads(payload_text(con, "github", "activity", KEY)) == odd
    load_records(con, [rec("github", "activity", KEY, {"message": "Not Found"}, 404)], settings)
    assert json.loads(payload_text(con, "github", "activity", KEY)) == {"message": "Not Found"}
    assert items(con) == []
    assert payload_text(con, "github", "activity", f"{REPO}:absent") is None


def test_items_keep_the_merged_order_when_an_item_is_fetched_again(con, settings):
    """The fetched copy of an item wins and the list is re-sorted newest first, as one value was."""
    a, b = commit(SHA_A, [], date="2026-11-01T10:00:00Z"), commit(SHA_B, [SHA_A], date="2026-11-02T10:00:00Z")
    load_records(con, [rec("github", "commits", KEY, [b, a])], settings)
    c, d = commit(SHA_C, [SHA_B], date="2026-11-03T10:00:00Z"), commit(SHA_D, [SHA_C], date="2026-11-04T10:00:00Z")
    a2 = commit(SHA_A, [], date="2026-11-05T10:00:00Z", login="mallory")  # rewritten: now the newest
    load_records(con, [rec("github", "commits", KEY, [d, c, a2])], settings)
    assert [x["sha"] for x in json.loads(payload_text(con, "github", "commits", KEY))] == [SHA_A, SHA_D, SHA_C, SHA_B]
    assert items(con)[-1] == ("commits", KEY, 3)


def test_a_night_that_only_adds_newer_items_leaves_the_stored_ones_in_place(con, settings):
    """``ord`` counts from the list's end, so the stored items keep theirs when newer ones come on top:
    the load writes only the new ones (``accumulate``'s ``kept``: the stored items left in place), also
    when the fetch repeats the stored tip as GitHub answered it before; from a changed copy of a
    stored item, or a new item sorted among the stored ones, up, the list is written again; a list
    read from an earlier version's payload is written whole."""
    from ccwatch.warehouse.raw_lists import accumulate

    a, b = commit(SHA_A, [], date="2026-11-01T10:00:00Z"), commit(SHA_B, [SHA_A], date="2026-11-02T10:00:00Z")
    load_records(con, [rec("github", "commits", KEY, [b, a])], settings)
    c = commit(SHA_C, [SHA_B], date="2026-11-03T10:00:00Z")
    acc = accumulate(con, rec("github", "commits", KEY, [c, json.loads(json.dumps(b))]))
    assert [x["sha"] for x in acc.rec.payload] == [SHA_C] and acc.kept == acc.stored == 2 and acc.clean  # C on top
    assert acc.size() == 3
    load_records(con, [rec("github", "commits", KEY, [c, b])], settings)
    assert con.execute("SELECT ord, item->>'sha' FROM raw_list_items ORDER BY ord").fetchall() == [
        (0, SHA_A), (1, SHA_B), (2, SHA_C)]
    b2 = commit(SHA_B, [SHA_A], date="2026-11-02T10:00:00Z", msg="amended")  # same sha, other text
    assert accumulate(con, rec("github", "commits", KEY, [b2]))[1:] == (1, 3, False, 3)  # written again from b2 up
    b0 = commit(SHA_F, [SHA_A], date="2026-11-01T12:00:00Z")  # a new item sorted below the stored b
    assert accumulate(con, rec("github", "commits", KEY, [b0]))[1:] == (1, 3, True, 4)
    con.execute("UPDATE raw_payloads SET payload = ? WHERE kind = 'commits'", [json.dumps([c, b, a])])
    con.execute("DELETE FROM raw_list_items")  # as an earlier version stored it
    d = commit(SHA_D, [SHA_C], date="2026-11-04T10:00:00Z")
    assert accumulate(con, rec("github", "commits", KEY, [d]))[1:3] == (0, 0)  # none held as items yet
    load_records(con, [rec("github", "commits", KEY, [d])], settings)
    assert con.execute("SELECT ord, item->>'sha' FROM raw_list_items ORDER BY ord").fetchall() == [
        (0, SHA_A), (1, SHA_B), (2, SHA_C), (3, SHA_D)]


@pytest.mark.parametrize("seed", range(12))
def test_the_merge_from_the_stored_keys_is_the_merge_of_the_whole_stored_list(con, settings, seed, monkeypatch):
    """``accumulate`` merges from the stored items' ids and sort keys (migration 13), reading only the
    items it compares or places: its result is the one of the whole stored list parsed and merged,
    on random nights with ties of the sort key, fetched copies of stored items (some changed), new
    items sorted among the stored ones, and the odd item the keys cannot stand for."""
    import random

    from ccwatch.warehouse import raw_lists

    rnd = random.Random(seed)
    kind, key = ("commits", KEY) if seed % 2 else ("deployments", f"{REPO}:production")

    def item(n: int, day: int, note: str = "") -> dict:
        if kind == "commits":
            c = commit(f"{n:040x}", [f"{n + 1:040x}"], date=f"2026-11-{day:02d}T10:00:00Z", msg=f"m{note}")
            return c
        return {"id": n, "sha": f"{n:040x}", "environment": "production", "created_at": f"2026-11-{day:02d}T10:00:00Z",
                "description": note}

    stored = [item(n, rnd.randint(1, 9)) for n in range(40)]
    stored.sort(key=raw_lists.ACCUMULATING[("github", kind)][1], reverse=True)
    load_records(con, [rec("github", kind, key, stored)], settings)
    real, used = raw_lists._merge_by_keys, []  # noqa: SLF001 - which way each night was merged
    monkeypatch.setattr(raw_lists, "_merge_by_keys", lambda *a: used.append(r := real(*a)) or r)
    for _night in range(3):
        fetched = [item(100 + 40 * _night + n, rnd.randint(1, 12)) for n in range(rnd.randint(0, 6))]
        for old in rnd.sample(stored, rnd.randint(0, 5)):  # copies of stored items, some changed
            fetched.append(json.loads(json.dumps(old)) if rnd.random() < 0.7 else
                           item(int(old["sha"], 16), rnd.randint(1, 12), note="changed"))
        if seed % 5 == 4 and _night == 1:  # not plain (a float id, a numeric date): the whole list is read
            odd = item(999, 5)
            if kind == "commits":
                odd["commit"]["committer"]["date"] = 20261105
            else:
                odd["id"] = 999.0
            fetched.append(odd)
        rnd.shuffle(fetched)
        night = rec("github", kind, key, fetched)
        fast = raw_lists.accumulate(con, night)
        with monkeypatch.context() as m:
            m.setattr(raw_lists, "_merge_by_keys", lambda *a: None)
            slow = raw_lists.accumulate(con, night)
        assert json.dumps(fast.rec.payload) == json.dumps(slow.rec.payload)
        assert fast[1:] == slow[1:] and fast.rec.etag == slow.rec.etag
        load_records(con, [night], settings)
        stored = json.loads(payload_text(con, "github", kind, key))
        assert len(stored) == fast.size()
    assert isinstance(used[0], raw_lists.Accumulated)  # the first night at least merged from the keys


def test_items_written_before_migration_13_are_written_again_with_their_keys(con, settings):
    """Items stored without their id and sort key (before migration 13): the next merge of their list
    reads it whole and writes every item again, with the keys; the night after merges from the keys."""
    from ccwatch.warehouse.raw_lists import accumulate

    a, b = commit(SHA_A, [], date="2026-11-01T10:00:00Z"), commit(SHA_B, [SHA_A], date="2026-11-02T10:00:00Z")
    load_records(con, [rec("github", "commits", KEY, [b, a])], settings)
    con.execute("UPDATE raw_list_items SET item_id = NULL, sort_text = NULL, sort_num = NULL")
    c = commit(SHA_C, [SHA_B], date="2026-11-03T10:00:00Z")
    assert accumulate(con, rec("github", "commits", KEY, [c]))[1:3] == (0, 2)  # every item written again
    load_records(con, [rec("github", "commits", KEY, [c])], settings)
    assert con.execute("SELECT ord, item_id, sort_text FROM raw_list_items ORDER BY ord").fetchall() == [
        (0, SHA_A, "2026-11-01T10:00:00Z"), (1, SHA_B, "2026-11-02T10:00:00Z"), (2, SHA_C, "2026-11-03T10:00:00Z")]
    d = commit(SHA_D, [SHA_C], date="2026-11-04T10:00:00Z")
    assert accumulate(con, rec("github", "commits", KEY, [d]))[1:3] == (3, 3)


def test_a_reader_of_a_few_items_reads_those_and_the_items_without_an_id(con, settings):
    """``items_with_ids``: the wanted items of a long list (the next fetch's deployment node ids),
    and every item whose id was not stored (not plain, or written before migration 13), in order."""
    from ccwatch.warehouse.raw_lists import items_with_ids

    env = ("github", "deployments", f"{REPO}:production")

    def dep(i, **kw):
        return {"id": i, "node_id": f"DE_{i}", "created_at": f"2026-11-{i:02d}T10:00:00Z", **kw}

    load_records(con, [rec(*env, [dep(5), dep(4), dep(3, id=3.0), dep(2), dep(1)])], settings)
    assert [d["node_id"] for d in items_with_ids(con, env, {"4", "2", "9"})] == ["DE_4", "DE_3", "DE_2"]
    con.execute("UPDATE raw_list_items SET item_id = NULL, sort_text = NULL WHERE ord = 0")  # as before migration 13
    assert [d["node_id"] for d in items_with_ids(con, env, {"4"})] == ["DE_4", "DE_3", "DE_1"]
    assert items_with_ids(con, ("github", "deployments", f"{REPO}:staging"), {"4"}) is None  # not stored
