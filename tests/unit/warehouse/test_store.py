"""load_records: one transaction, idempotent reloads, rollback on a bad record."""

from __future__ import annotations

import functools
import gc
import json
import weakref

import pytest
from ccwatch.ingest.records import RawRecord
from ccwatch.warehouse.connection import connect
from ccwatch.warehouse.normalize.base import NormalizeError
from ccwatch.warehouse.raw_lists import payload_text
from ccwatch.warehouse.store import load_chunks, load_records

from tests.helpers import one_batch
from tests.helpers.payloads import (
    CLASSIC,
    FIELDS,
    REPO,
    SHA_A,
    SHA_B,
    SHA_C,
    SHA_D,
    adf,
    commit,
    issue,
    pull,
    rec,
    user,
)

TABLES = ["raw_payloads", "raw_list_items", "pull_requests", "reviews", "checks", "commits", "deployments", "deployment_statuses",
          "branch_rules", "environments", "tickets", "ticket_transitions", "ticket_field_changes", "people"]


def review(rid, login, state, sha=SHA_B):
    return {"id": rid, "user": user(login), "state": state, "commit_id": sha, "submitted_at": "2026-11-02T09:00:00Z",
            "body": "", "html_url": "h", "pull_request_url": "u"}


def batch():
    hist = [{"id": "10001", "author": {"accountId": "557058:alice", "emailAddress": "alice@acme.example"},
             "created": "2026-11-01T10:00:00.000+0000",
             "items": [{"field": "status", "fieldId": "status", "from": "3", "fromString": "In Review",
                        "to": "10002", "toString": "Done"}]}]
    return [
        rec("github", "pull", f"{REPO}#12", pull()),
        rec("github", "reviews", f"{REPO}#12", [review(801, "bob-rev", "APPROVED"), review(802, "eve", "COMMENTED")]),
        rec("github", "check_runs", f"{REPO}@{SHA_B}", [
            {"id": 9001, "name": "test", "status": "completed", "conclusion": "success",
             "started_at": "2026-11-02T08:00:00Z", "completed_at": "2026-11-02T08:05:00Z", "html_url": "h"}]),
        rec("github", "statuses", f"{REPO}@{SHA_B}", []),
        rec("github", "branch", f"{REPO}:main", {"name": "main", "commit": {"sha": SHA_D}, "protected": True}),
        rec("github", "commits", f"{REPO}:main",
            [commit(SHA_D, [SHA_C]), commit(SHA_C, [SHA_A, SHA_B]), commit(SHA_A, [])]),
        rec("github", "commit_pulls", f"{REPO}@{SHA_C}", [pull()]),
        rec("github", "commit_pulls", f"{REPO}@{SHA_D}", []),
        rec("github", "commit_pulls", f"{REPO}@{SHA_A}", []),
        rec("github", "deployments", f"{REPO}:production", [
            {"id": 3001, "sha": SHA_C, "ref": "main", "environment": "production",
             "creator": user("github-actions[bot]", "Bot"), "created_at": "2026-11-03T10:00:00Z"}]),
        rec("github", "deployment_statuses", f"{REPO}/deployments/3001", [
            {"id": 4001, "state": "success", "creator": user("github-actions[bot]", "Bot"),
             "created_at": "2026-11-03T10:05:00Z"}]),
        rec("github", "branch_protection", f"{REPO}:main", CLASSIC),
        rec("github", "branch_rules", f"{REPO}:main", []),
        rec("github", "environment", f"{REPO}:production", {"message": "Not Found"}, 404),
        rec("jira", "fields", "fields", FIELDS),
        rec("jira", "issue", "PAY-7", issue(rollback=adf("revert"))),
        rec("jira", "changelog", "PAY-7", hist),
        rec("jira", "issue_missing", "PAY-999", {"errorMessages": ["An issue with key 'PAY-999' does not exist"]}, 400),
    ]


def snapshot(con):
    return {t: sorted(map(repr, con.execute(f"SELECT * FROM {t}").fetchall())) for t in TABLES}


def test_load_writes_every_table(con, settings):
    counts = load_records(con, batch(), settings)
    assert counts["raw_payloads"] == 18 and counts["pull_requests"] == 1 and counts["reviews"] == 2
    assert counts["commits"] == 3 and counts["tickets"] == 2 and counts["people"] == len(settings.people.identities) > 0
    pr_numbers = dict(con.execute("SELECT sha, pr_numbers FROM commits").fetchall())
    assert pr_numbers == {SHA_A: [], SHA_C: [12], SHA_D: []}
    status, payload = con.execute(
        "SELECT status_code, payload FROM raw_payloads WHERE kind = 'environment'").fetchone()
    assert status == 404 and json.loads(payload) == {"message": "Not Found"}
    req = con.execute("SELECT required_fields FROM tickets WHERE key = 'PAY-7'").fetchone()[0]
    assert json.loads(req) == {"Rollback Plan": "revert"}
    assert con.execute("SELECT to_category, author FROM ticket_transitions").fetchall() == [
        ("done", "alice@acme.example")]
    assert con.execute("SELECT ticket_exists FROM tickets WHERE key = 'PAY-999'").fetchone() == (False,)


def test_reload_is_idempotent_and_replaces_objects(con, settings):
    load_records(con, batch(), settings)
    first = snapshot(con)
    load_records(con, batch(), settings)
    assert snapshot(con) == first
    # a later fetch of PR 12 with one review fewer replaces the PR's rows instead of adding
    load_records(con, [rec("github", "reviews", f"{REPO}#12", [review(801, "bob-rev", "DISMISSED")])], settings)
    assert con.execute("SELECT review_id, state FROM reviews").fetchall() == [(801, "DISMISSED")]
    assert con.execute("SELECT count(*) FROM raw_payloads").fetchone() == (18,)


def test_partial_batch_uses_raw_context_from_the_warehouse(con, settings):
    load_records(con, batch(), settings)
    # the issue alone: fields come from the raw fields payload already in the warehouse
    load_records(con, [rec("jira", "issue", "PAY-7", issue(bj="Audit finding 12"))], settings)
    assert con.execute("SELECT business_justification FROM tickets WHERE key='PAY-7'").fetchone() == ("Audit finding 12",)
    # a commit_pulls answer alone updates the commit's PR numbers
    load_records(con, [rec("github", "commit_pulls", f"{REPO}@{SHA_D}", [pull(13)])], settings)
    assert con.execute("SELECT pr_numbers FROM commits WHERE sha = ?", [SHA_D]).fetchone() == ([13],)
    # r2: a PR merged into another branch does not cover the commit on main
    into_release = dict(pull(14), base=dict(pull(14)["base"], ref="release"))
    load_records(con, [rec("github", "commit_pulls", f"{REPO}@{SHA_D}", [into_release])], settings)
    assert con.execute("SELECT pr_numbers FROM commits WHERE sha = ?", [SHA_D]).fetchone() == ([],)


def test_bad_record_rolls_back_everything(con, settings):
    load_records(con, batch(), settings)
    before = snapshot(con)
    bad = [rec("github", "pull", f"{REPO}#12", dict(pull(), title="changed")),
           rec("github", "reviews", f"{REPO}#13", {"message": "not a list"})]
    with pytest.raises(NormalizeError, match="reviews acme/payments-api#13"):
        load_records(con, bad, settings)
    assert snapshot(con) == before
    # the connection is usable afterwards
    load_records(con, [rec("github", "pull", f"{REPO}#12", dict(pull(), title="changed"))], settings)
    assert con.execute("SELECT title FROM pull_requests").fetchone() == ("changed",)


def test_rollback_on_bad_raw_record(con, settings):
    load_records(con, batch(), settings)
    before = snapshot(con)
    broken = rec("github", "pull", f"{REPO}#14", pull(14))
    broken.fetched_at = ""
    with pytest.raises(ValueError, match="fetched_at"):
        load_records(con, [rec("github", "pull", f"{REPO}#15", pull(15)), broken], settings)
    assert snapshot(con) == before


def test_activity_log_accumulates_by_id(con, settings):
    """(r2) An incremental read brings the newest entries only: the stored log is kept and merged."""
    def entry(i, at):
        return {"id": i, "node_id": "RA", "before": SHA_A, "after": SHA_B, "ref": "refs/heads/main",
                "timestamp": at, "activity_type": "push", "actor": user("mallory")}

    load_records(con, [rec("github", "activity", f"{REPO}:main", [entry(2, "2026-11-02T10:00:00Z"),
                                                                  entry(1, "2026-11-01T10:00:00Z")])], settings)
    load_records(con, [rec("github", "activity", f"{REPO}:main", [entry(3, "2026-11-03T10:00:00Z"),
                                                                  entry(2, "2026-11-02T10:00:00Z")])], settings)
    assert [r[0] for r in con.execute("SELECT activity_id FROM branch_activity ORDER BY 1").fetchall()] == [1, 2, 3]
    assert [e["id"] for e in json.loads(payload_text(con, "github", "activity", f"{REPO}:main"))] == [3, 2, 1]  # newest first
    assert con.execute("SELECT count(*) FROM raw_list_items WHERE kind = 'activity'").fetchone() == (3,)
    # an unreadable answer replaces the raw answer (as fetched) but not the entries already read
    load_records(con, [rec("github", "activity", f"{REPO}:main", {"message": "Not Found"}, 404)], settings)
    assert con.execute("SELECT count(*) FROM branch_activity").fetchone() == (3,)
    assert json.loads(payload_text(con, "github", "activity", f"{REPO}:main")) == {"message": "Not Found"}
    assert con.execute("SELECT count(*) FROM raw_list_items").fetchone() == (0,)  # as the one value was replaced
    assert con.execute("SELECT status_code, detail FROM branch_activity_reads").fetchall() == [(404, "HTTP 404: Not Found")]


# --- bounded chunks (issue #15 A): a load in many tiny chunks is the one-chunk load ---------------


ALL_TABLES_SQL = ("SELECT table_name FROM information_schema.tables WHERE table_schema = 'main' "
                  "AND table_type = 'BASE TABLE' ORDER BY table_name")


def full_snapshot(con):
    """Every table of the warehouse, rows sorted (the whole state, not only the normalised tables)."""
    tables = [t for (t,) in con.execute(ALL_TABLES_SQL).fetchall()]
    return {t: sorted(map(repr, con.execute(f'SELECT * FROM "{t}"').fetchall())) for t in tables}


def test_tiny_chunks_give_the_one_chunk_warehouse(tmp_path, settings):
    later = [  # a second fetch of objects of the batch, further down the stream (another chunk)
        rec("github", "reviews", f"{REPO}#12", [review(801, "bob-rev", "DISMISSED")]),
        rec("jira", "issue", "PAY-7", issue(bj="Audit finding 12")),
        rec("jira", "issue", "PAY-999", issue()),  # the ticket exists after all: the missing record gives way
    ]
    loads = {}
    for size in (0, 1, 2, 3, 10**9):  # 0: the one-batch load it replaced (tests/helpers/one_batch.py)
        load = one_batch.load_records if size == 0 else functools.partial(load_records, chunk_records=size)
        c = connect(str(tmp_path / f"wh-{size}.duckdb"))
        try:
            counts = load(c, batch() + later, settings)
            second = load(c, [rec("github", "commit_pulls", f"{REPO}@{SHA_D}", [pull(13)]),
                              rec("github", "reviews", f"{REPO}#12", [])], settings)
            loads[size] = (counts, second, full_snapshot(c))
        finally:
            c.close()
    assert loads[0] == loads[1] == loads[2] == loads[3] == loads[10**9]
    counts, _, snap = loads[1]
    assert counts["raw_payloads"] == 19  # last record wins per (source, kind, natural_key)
    assert snap["reviews"] == []


def test_failure_in_a_late_chunk_commits_nothing(con, settings):
    load_records(con, batch(), settings)
    before = full_snapshot(con)
    changed = [rec("github", "pull", f"{REPO}#12", dict(pull(), title="changed")) for _ in range(5)]
    bad = [*changed, rec("github", "reviews", f"{REPO}#13", {"message": "not a list"})]
    with pytest.raises(NormalizeError, match="reviews acme/payments-api#13"):
        load_records(con, bad, settings, chunk_records=1)
    assert full_snapshot(con) == before

    def refuse(c):
        assert c.execute("SELECT title FROM pull_requests").fetchone() == ("changed",)  # the load is visible here
        raise RuntimeError("bookkeeping failed")

    with pytest.raises(RuntimeError, match="bookkeeping failed"):
        load_records(con, changed, settings, before_commit=refuse, chunk_records=1)
    assert full_snapshot(con) == before
    # a 304 without a stored copy at the end of the stream: nothing of the chunks before it stays
    from ccwatch.warehouse.raw_store import NotModifiedWithoutCopy

    with pytest.raises(NotModifiedWithoutCopy, match="environment acme/payments-api:staging"):
        load_records(con, [*changed, rec("github", "environment", f"{REPO}:staging", None, 304)], settings,
                     chunk_records=1)
    assert full_snapshot(con) == before


def test_records_may_be_given_as_a_callable_read_again(con, settings):
    reads = []

    def records():
        reads.append(1)
        return iter(batch())

    counts = load_records(con, records, settings, chunk_records=4)
    assert counts["raw_payloads"] == 18 and len(reads) >= 2  # streamed: read again instead of held


# --- the compact key index (issue #15: a flat backfill peak) ---------------------------------------


def test_digests_ending_in_zero_bytes_give_the_one_batch_warehouse(tmp_path, settings, monkeypatch):
    """The index keeps 16-byte digests in a numpy ``S16`` array, which drops trailing NUL bytes when
    an element is read: every digest here ends in eight of them, and the load must not notice."""
    import hashlib

    from ccwatch.warehouse import load_index

    def weak(source, kind, natural_key):
        return hashlib.blake2b(json.dumps([source, kind, natural_key]).encode(), digest_size=8).digest() + bytes(8)

    later = [rec("github", "reviews", f"{REPO}#12", [review(801, "bob-rev", "DISMISSED")]),
             rec("jira", "issue", "PAY-7", issue(bj="Audit finding 12"))]
    loads = {}
    for size in (0, 1, 10**9):
        c = connect(str(tmp_path / f"wh-{size}.duckdb"))
        try:
            if size:
                monkeypatch.setattr(load_index, "key_digest", weak)
            load = one_batch.load_records if size == 0 else functools.partial(load_records, chunk_records=size)
            loads[size] = (load(c, batch() + later, settings), full_snapshot(c))
        finally:
            monkeypatch.undo()
            c.close()
    assert loads[0] == loads[1] == loads[10**9]


def test_records_that_change_between_the_reads_fail_the_load(con, settings):
    load_records(con, batch(), settings)
    before = full_snapshot(con)
    reads = []

    def records():  # the second read brings another key at the same place
        reads.append(1)
        first = [rec("github", "pull", f"{REPO}#12", dict(pull(), title="changed")),
                 rec("github", "pull", f"{REPO}#13", pull(13))]
        return iter(first if len(reads) == 1 else [first[0], rec("github", "pull", f"{REPO}#14", pull(14))])

    with pytest.raises(RuntimeError, match="changed while loading"):
        load_records(con, records, settings, chunk_records=1)
    assert full_snapshot(con) == before


HOSTILE = {"floats": [0.1, 1e-07, 1e16, 1e22, 2.5e-300, 1.7976931348623157e308, -0.0, 3.0],
           "ints": [0, -1, 2**53 + 1, 2**63 - 1, 2**64 - 1], "text": "é \\u2028 \u2028 \t\n\"\\/ <>&' \x7f 𝄞 中文",
           "nested": {"": [], "a": {}, "b": [None, True, False, [[[]]]]}, "empty": ""}


@pytest.mark.parametrize("direct_chars", [1, 10**9])
def test_raw_payloads_stored_as_the_one_batch_load_stores_them(tmp_path, settings, monkeypatch, direct_chars):
    """The raw upsert holds each payload as JSON text; a large one goes alone through ``json(?)``
    (here: every payload, or none): the stored text is the reference's, byte for byte."""
    from ccwatch.warehouse import raw_store

    records = [*batch(), rec("github", "repo", REPO, HOSTILE), rec("github", "commit", f"{REPO}@{'f' * 40}", [HOSTILE] * 3),
               rec("github", "commit", f"{REPO}@{'e' * 40}", None)]
    raw = {}
    for name, load in (("reference", one_batch.load_records), ("bounded", load_records)):
        c = connect(str(tmp_path / f"{name}-{direct_chars}.duckdb"))
        try:
            with monkeypatch.context() as m:
                m.setattr(raw_store.RawUpserts, "DIRECT_CHARS", direct_chars)
                load(c, records, settings)
            raw[name] = c.execute("SELECT * FROM raw_payloads ORDER BY source, kind, natural_key").fetchall()
        finally:
            c.close()
    assert raw["bounded"] == raw["reference"]
    assert any(r[2] == REPO and r[1] == "repo" and "𝄞" in r[-1] for r in raw["bounded"])


def test_a_list_grown_beyond_what_the_load_bound_holds_as_one_value_loads(con, settings):
    """An accumulated list grows with the deployment's age (docs/PERFORMANCE.md, "The accumulating
    lists over the years"): stored as one value, the 3,000-commit list merged with tonight's 10 (5 MB
    of JSON) did not fit a 20MB bound (DuckDB needs several times a value's size).  Held as items it loads, and
    reads back as the merged list, newest first."""
    def signed(sha, parent):  # a signed commit: its list item carries the PGP signature (~1.5 KB here)
        c = commit(sha, [parent])
        c["commit"]["verification"] = {"verified": True, "reason": "valid", "verified_at": "2026-11-02T10:00:01Z",
                                       "signature": "-----BEGIN PGP SIGNATURE-----\n" + "s" * 1500, "payload": "tree e"}
        return c

    def listing(n, offset=0):
        return [signed(f"{i + offset:040x}", f"{i + offset + 1:040x}") for i in range(n)]

    load_records(con, [rec("github", "commits", f"{REPO}:main", listing(3_000, 10))], settings)
    con.execute("CHECKPOINT")  # as a night finds the warehouse: on disk, not in DuckDB's memory
    con.execute("SET memory_limit = '40MB'")
    load_records(con, [rec("github", "commits", f"{REPO}:main", listing(10))], settings)
    con.execute("RESET memory_limit")
    assert con.execute("SELECT count(*) FROM commits").fetchone()[0] == 3_010
    stored = json.loads(payload_text(con, "github", "commits", f"{REPO}:main"))
    assert [c["sha"] for c in stored] == [c["sha"] for c in listing(3_010)]
    assert con.execute("SELECT payload, etag FROM raw_payloads WHERE kind = 'commits'").fetchone() == (None, None)
    assert con.execute("SELECT count(*), min(ord), max(ord) FROM raw_list_items").fetchone() == (3_010, 0, 3_009)


def test_a_payload_beyond_the_load_bound_is_named_and_nothing_is_lost(con, settings):
    """A single payload DuckDB's memory bound for the load cannot store: the error names the record,
    its size and the setting to raise, and the warehouse keeps the previous night's state (DuckDB's
    own error names none of them)."""
    from ccwatch.warehouse.raw_store import LoadMemoryError

    huge = rec("github", "pull", f"{REPO}#12", dict(pull(), body="b" * 6_000_000))
    load_records(con, batch(), settings)
    before = full_snapshot(con)
    con.execute("SET memory_limit = '20MB'")
    (bound,) = con.execute("SELECT current_setting('memory_limit')").fetchone()
    with pytest.raises(LoadMemoryError) as err:
        load_records(con, [huge], settings)
    text = str(err.value)
    assert f"github pull {REPO}#12" in text and "MB of JSON" in text and f"({bound})" in text
    assert "CCWATCH_DUCKDB_LOAD_MEMORY_LIMIT" in text and "nothing of this load was stored" in text.lower()
    con.execute("RESET memory_limit")
    assert full_snapshot(con) == before
    load_records(con, [huge], settings)  # the bound raised: a rerun loads
    assert con.execute("SELECT length(payload->>'body') FROM raw_payloads WHERE kind = 'pull'").fetchone() == (6_000_000,)


def _record(name: str, payload) -> RawRecord:
    return RawRecord("github", "commits", name, "u", "2026-11-25T00:00:00Z", payload)


def test_a_chunk_counts_a_list_payload_item_by_item_and_holds_a_long_list_alone():
    """(issue #15) The busiest branch's commit list is thousands of records' worth: counted as one record,
    it shared its chunk with the repository's other long lists and every row of them was held at once."""
    recs = [_record("a", {}), _record("b", {}), _record("long", list(range(10))), _record("c", {}),
            _record("three", [1, 2, 3]), _record("d", {})]
    chunks = [[r.natural_key for _, r in chunk] for chunk in load_chunks(enumerate(recs), 4)]
    assert chunks == [["a", "b"], ["long"], ["c", "three"], ["d"]]
    assert [[r.natural_key for _, r in c] for c in load_chunks(enumerate(recs), 1)] == [[r.natural_key] for r in recs]


def test_an_empty_list_still_counts_as_a_record():
    """A night answers many lists empty (a commit's PRs, an environment without deployments): counted as
    nothing, they would pile into one unbounded chunk."""
    recs = [_record(f"e{n}", []) for n in range(5)]
    assert [[r.natural_key for _, r in c] for c in load_chunks(enumerate(recs), 2)] == [["e0", "e1"], ["e2", "e3"],
                                                                                           ["e4"]]


def test_a_chunk_the_load_has_dropped_is_not_kept_alive_by_the_chunker():
    """The records of a chunk are freed once the load has normalised them, and the next record is read
    only after that: the busiest repository's activity log and commit list are never parsed at once."""
    refs = []

    def made(name: str, payload) -> RawRecord:
        r = _record(name, payload)
        refs.append(weakref.ref(r))
        return r

    def winners():  # as LoadIndex.winners: one record at a time, read from the staging
        yield 0, made("long", list(range(10)))
        yield 1, made("next", {})

    it = load_chunks(winners(), 4)
    first = next(it)
    assert [r.natural_key for _, r in first] == ["long"]
    assert len(refs) == 1, "a full chunk is handed over before the next record is read (and parsed)"
    first = None
    gc.collect()
    assert refs[0]() is None
    assert [r.natural_key for _, r in next(it)] == ["next"]
