"""warehouse/raw_lists.py: the accumulating lists held as items, read back as the lists they were."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime

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
    merged, kept, stored, clean = accumulate(con, rec("github", "commits", KEY, [c, json.loads(json.dumps(b))]))
    assert [x["sha"] for x in merged.payload] == [SHA_C, SHA_B, SHA_A] and kept == stored == 2 and clean
    load_records(con, [rec("github", "commits", KEY, [c, b])], settings)
    assert con.execute("SELECT ord, item->>'sha' FROM raw_list_items ORDER BY ord").fetchall() == [
        (0, SHA_A), (1, SHA_B), (2, SHA_C)]
    b2 = commit(SHA_B, [SHA_A], date="2026-11-02T10:00:00Z", msg="amended")  # same sha, other text
    assert accumulate(con, rec("github", "commits", KEY, [b2]))[1:] == (1, 3, False)  # written again from b2 up
    b0 = commit(SHA_F, [SHA_A], date="2026-11-01T12:00:00Z")  # a new item sorted below the stored b
    assert accumulate(con, rec("github", "commits", KEY, [b0]))[1:] == (1, 3, True)
    con.execute("UPDATE raw_payloads SET payload = ? WHERE kind = 'commits'", [json.dumps([c, b, a])])
    con.execute("DELETE FROM raw_list_items")  # as an earlier version stored it
    d = commit(SHA_D, [SHA_C], date="2026-11-04T10:00:00Z")
    assert accumulate(con, rec("github", "commits", KEY, [d]))[1:3] == (0, 0)  # none held as items yet
    load_records(con, [rec("github", "commits", KEY, [d])], settings)
    assert con.execute("SELECT ord, item->>'sha' FROM raw_list_items ORDER BY ord").fetchall() == [
        (0, SHA_A), (1, SHA_B), (2, SHA_C), (3, SHA_D)]
