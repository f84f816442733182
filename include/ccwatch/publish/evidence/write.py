"""The evidence folder ``<home>/evidence/<date>/`` and its reproducible archive.

Layout (docs/OUTPUTS.md): control_results.csv, population.csv, changes/<change>/*.json
(raw API payloads from ``raw_payloads``, each with its source URL and fetch time),
gx_validation.json, oscal-assessment-results.json, report.html, POLICY.md, README.txt,
SHA256SUMS, manifest.json.
The folder is built under a temporary name and swapped in whole, so it never mixes two
runs; the archive is never overwritten (a rerun gets ``.<n>.tar.gz``).  What a run killed
mid-write leaves (temp folder, temp archive, the previous folder moved aside) is cleaned up, or
put back, by the next run of the date. After publishing, expired
archives are deleted per ``evidence.retention_days`` (``ccwatch.publish.evidence.retention``).
"""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import duckdb

from ccwatch.common.endpoints import redact_url
from ccwatch.common.files import remove_stale, stale_entries, tmp_pattern
from ccwatch.common.times import evidence_date, iso, naive_utc
from ccwatch.publish.evidence import archive, folder, retention
from ccwatch.settings import Settings


@dataclass(frozen=True)
class EvidenceResult:
    directory: Path
    archive: Path
    numbered: bool
    files: int
    sha256: str = ""
    pruned: tuple[str, ...] = ()  # archives / dated folders deleted by the retention policy


def _recover(base: Path, day: str) -> None:
    """Undo what a run of ``day`` killed mid-write left (names used by :func:`write_evidence`): the
    previous folder, moved aside but not yet replaced, goes back in place; half-built folders and
    temp archives are removed.  Files under final names are never touched."""
    final = base / day
    moved_aside = [p for p in stale_entries(base, rf"\.{re.escape(day)}\.old-(\d+)") if p.is_dir()]
    if moved_aside and not final.exists():
        os.rename(moved_aside[-1], final)
    remove_stale(base, rf"\.{re.escape(day)}\.(?:tmp|old)-(\d+)")
    remove_stale(base, rf"\.{re.escape(day)}\.part-(\d+)(?:\.manifest)?")
    remove_stale(base, tmp_pattern(base / f"ccwatch-evidence-{day}.tar.gz"))


def write_evidence(con: duckdb.DuckDBPyConnection, settings: Settings, as_of: datetime, home: Path,
                   gx_results: list[dict], report_html: str, endpoints: dict[str, str]) -> EvidenceResult:
    day = evidence_date(as_of).isoformat()
    base = Path(home) / "evidence"
    base.mkdir(parents=True, exist_ok=True)
    _recover(base, day)
    tmp = base / f".{day}.tmp-{os.getpid()}"
    part = base / f".{day}.part-{os.getpid()}"  # the change folders' tar part (folder.py)
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        try:
            tree = folder.write_tree(tmp, con, settings, as_of, gx_results, report_html, day, part)
            header = {
                "manifest_version": 1,
                "tool": "ccwatch",
                "as_of": iso(naive_utc(as_of)),
                "evidence_date": day,
                "versions": archive.versions(),
                "config": {"file": Path(settings.source_path).name if settings.source_path else None,
                           "sha256": settings.sha256 or None},
                "endpoints": {k: redact_url(v) for k, v in sorted((endpoints or {}).items())},
                "counts": tree.counts,
            }
            folder.write_manifest(tmp, header, tree)
            tree.top[archive.MANIFEST] = ("", 0)  # an archive entry (its bytes are read from the folder)
            final = base / day
            old = base / f".{day}.old-{os.getpid()}"
            if final.exists():
                os.rename(final, old)
            os.rename(tmp, final)
            shutil.rmtree(old, ignore_errors=True)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        tmp_archive = base / f".ccwatch-evidence-{day}.tar.gz.{os.getpid()}.tmp"
        try:
            archive.assemble_archive(final, day, as_of, tmp_archive, tree.entries(), tree.part)
            digest = archive.sha256_file(tmp_archive)
            path, numbered = archive.publish(tmp_archive, base, f"ccwatch-evidence-{day}")
        finally:
            tmp_archive.unlink(missing_ok=True)
    finally:
        part.unlink(missing_ok=True)
        part.with_name(part.name + ".manifest").unlink(missing_ok=True)
    pruned = retention.prune_evidence(base, as_of, settings.evidence.retention_days, settings.evidence.keep_latest,
                                      keep=path)
    return EvidenceResult(directory=final, archive=path, numbered=numbered,
                          files=tree.files, sha256=digest, pruned=tuple(p.name for p in pruned))
