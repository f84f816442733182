"""The hash chain of evidence dates (publish/evidence/chain.py) on small hand-made archives: each
date's manifest names the previous date's manifest SHA-256; a rewritten, removed or unlinked date
is a problem, retention's cut at the oldest end is not."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from pathlib import Path

from ccwatch.publish.evidence.chain import verify_chain


def archive(folder: Path, day: str, previous: dict | None, data: bytes = b"rows\n", name: str | None = None) -> str:
    """Write ccwatch-evidence-<day>.tar.gz holding data.txt and its manifest; return the manifest's sha256."""
    manifest = json.dumps({"manifest_version": 2, "evidence_date": day, "previous": previous,
                           "files": [{"path": "data.txt", "sha256": hashlib.sha256(data).hexdigest(),
                                      "size": len(data)}]}, sort_keys=True).encode()
    with tarfile.open(folder / (name or f"ccwatch-evidence-{day}.tar.gz"), "w:gz") as tar:
        for rel, content in (("data.txt", data), ("manifest.json", manifest)):
            info = tarfile.TarInfo(f"{day}/{rel}")
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
    return hashlib.sha256(manifest).hexdigest()


def chain_lines(folder: Path) -> tuple[list[str], list[str]]:
    reports, chain = verify_chain(folder)
    assert all(r.exit_code == 0 for r in reports), [r.lines() for r in reports]
    return chain.problems, chain.notes


def test_three_linked_dates_hold(tmp_path):
    a = archive(tmp_path, "2026-11-23", None)
    b = archive(tmp_path, "2026-11-24", {"date": "2026-11-23", "sha256": a})
    archive(tmp_path, "2026-11-25", {"date": "2026-11-24", "sha256": b})
    problems, notes = chain_lines(tmp_path)
    assert problems == [] and sum("OK" in n for n in notes) == 2


def test_a_date_rewritten_after_the_next_was_written_breaks_the_link(tmp_path):
    a = archive(tmp_path, "2026-11-23", None)
    archive(tmp_path, "2026-11-24", {"date": "2026-11-23", "sha256": a})
    archive(tmp_path, "2026-11-23", None, data=b"rows, all pass now\n")  # rewritten: hashes consistent again
    problems, _ = chain_lines(tmp_path)
    assert any("2026-11-23 was rewritten after 2026-11-24 was written" in p for p in problems), problems


def test_a_date_removed_from_the_middle_and_a_false_first_date(tmp_path):
    a = archive(tmp_path, "2026-11-22", None)
    b = archive(tmp_path, "2026-11-23", {"date": "2026-11-22", "sha256": a})
    archive(tmp_path, "2026-11-24", {"date": "2026-11-23", "sha256": b})
    archive(tmp_path, "2026-11-25", None)  # claims to be the first
    (tmp_path / "ccwatch-evidence-2026-11-23.tar.gz").unlink()
    problems, _ = chain_lines(tmp_path)
    assert any("removed from the middle" in p for p in problems), problems
    assert any("claims to be the first" in p for p in problems), problems


def test_retention_cut_at_the_oldest_end_is_where_the_chain_starts(tmp_path):
    archive(tmp_path, "2026-11-24", {"date": "2026-11-23", "sha256": "a" * 64})  # 11-23 deleted by retention
    problems, notes = chain_lines(tmp_path)
    assert problems == [] and any("the chain starts here" in n for n in notes)
