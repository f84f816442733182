"""ingest/records.py: staged records, and the bound on what one record may cost."""

from __future__ import annotations

import gc
import weakref

import pytest
from ccwatch.ingest.errors import SourceError
from ccwatch.ingest.records import RawRecord, read_staging, write_staging


def rec(payload, key="acme/api#1"):
    return RawRecord("github", "gql_pull", key, "https://api.github.com/graphql#CcwatchMergedPulls",
                     "2026-11-25T02:00:00Z", payload)


def test_records_round_trip(tmp_path):
    path = tmp_path / "s.jsonl"
    assert write_staging(path, [rec({"title": "a"}), rec({"title": "\ud800"}, "acme/api#2")]) == 2
    got = list(read_staging(path))
    assert [r.payload["title"] for r in got] == ["a", "\ufffd"]  # a lone surrogate cannot be stored


def test_a_record_over_the_bound_stops_the_fetch_and_keeps_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "s.jsonl"
    write_staging(path, [rec({"title": "old"})])
    monkeypatch.setenv("CCWATCH_MAX_PAYLOAD_MB", "1")
    with pytest.raises(SourceError, match=r"github gql_pull acme/api#2 .* 2 MB of JSON, over the 1 MB"):
        write_staging(path, [rec({"title": "ok"}), rec({"title": "x" * (2 << 20)}, "acme/api#2")])
    assert [r.payload["title"] for r in read_staging(path)] == ["old"]


def test_a_bad_bound_is_named(tmp_path, monkeypatch):
    monkeypatch.setenv("CCWATCH_MAX_PAYLOAD_MB", "lots")
    with pytest.raises(ValueError, match="CCWATCH_MAX_PAYLOAD_MB='lots'"):
        write_staging(tmp_path / "s.jsonl", [])


def test_a_record_read_from_the_staging_is_not_kept_alive_by_the_reader(tmp_path):
    """(issue #15) Neither the record nor its text stays referenced by the reader while the load uses it."""
    path = tmp_path / "s.jsonl"
    write_staging(path, [RawRecord("github", "commits", f"o/r:main{n}", "u", "t", [{"sha": "a" * 40}] * 3)
                         for n in (1, 2)])
    reader = read_staging(path)
    first = next(reader)
    alive = weakref.ref(first)
    first = None
    gc.collect()
    assert alive() is None
    assert next(reader).natural_key == "o/r:main2"
