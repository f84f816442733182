"""common/files.py: a reader never sees half a file; a killed writer's leftovers are removed."""

from __future__ import annotations

import json
import os

import pytest
from ccwatch.common import files


def test_atomic_writer_keeps_the_old_file_when_the_writer_fails(tmp_path):
    path = tmp_path / "x.json"
    path.write_text("old")
    with pytest.raises(RuntimeError), files.atomic_writer(path) as fh:
        fh.write("half")
        raise RuntimeError("killed")
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["x.json"]  # no temp file left


def test_write_json_atomic_and_bytes(tmp_path):
    files.write_json_atomic(tmp_path / "a" / "s.json", {"b": 1, "a": 2})
    assert json.loads((tmp_path / "a" / "s.json").read_text()) == {"a": 2, "b": 1}
    files.write_bytes_atomic(tmp_path / "b.bin", b"\x00\x01")
    assert (tmp_path / "b.bin").read_bytes() == b"\x00\x01"


def test_stale_temp_of_a_dead_writer_is_removed_a_live_one_kept(tmp_path):
    path = tmp_path / "s.json"
    dead = tmp_path / f".s.json.{2**22 + 12345}.tmp"  # no such pid
    live = tmp_path / f".s.json.{os.getpid()}.tmp"
    dead.write_text("x")
    live.write_text("y")
    assert files.stale_entries(tmp_path, files.tmp_pattern(path)) == [dead]
    files.write_json_atomic(path, {})
    assert not dead.exists() and path.exists()


def test_publish_folder_and_file_never_replace_anything(tmp_path):
    with files.building_folder(tmp_path, "packet") as tmp:
        (tmp / "f").write_text("1")
        first, numbered = files.publish_folder(tmp, tmp_path, "packet")
    assert (first.name, numbered) == ("packet", False) and (first / "f").read_text() == "1"
    with files.building_folder(tmp_path, "packet") as tmp:
        second, numbered = files.publish_folder(tmp, tmp_path, "packet")
    assert (second.name, numbered) == ("packet.1", True)
    for content in (b"a", b"b"):
        t = tmp_path / "t.tmp"
        t.write_bytes(content)
        files.publish_file(t, tmp_path, "arch", ".tar.gz")
    assert (tmp_path / "arch.tar.gz").read_bytes() == b"a" and (tmp_path / "arch.1.tar.gz").read_bytes() == b"b"


def test_read_json_optional_reads_or_says_why_not(tmp_path, caplog):
    path = tmp_path / "staged.json"
    assert files.read_json_optional(path, "GitHub acme/api: the staged counts") is None  # none: nothing logged
    assert caplog.records == []
    path.write_text('{"repos": {"acme/api": 3}}', encoding="utf-8")
    assert files.read_json_optional(path, "GitHub acme/api: the staged counts") == {"repos": {"acme/api": 3}}
    path.write_text('{"repos": {"acme/', encoding="utf-8")  # a torn write
    assert files.read_json_optional(path, "GitHub acme/api: the staged counts (asked alone)") is None
    assert [r.levelname for r in caplog.records] == ["WARNING"]
    assert caplog.records[0].getMessage().startswith(f"GitHub acme/api: the staged counts (asked alone): {path} unreadable")
