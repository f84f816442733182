"""Retention of the evidence archives (config ``evidence.retention_days`` / ``evidence.keep_latest``).

After a run has published its archive, archives ``ccwatch-evidence-<date>[.<n>].tar.gz`` whose
date is more than ``retention_days`` days before the run's evidence date are deleted, with the
dated folder ``<date>/`` once no archive of that date is left. Never deleted: the newest
``keep_latest`` archives (ordered by date, then rerun number), the archive just written, and
anything not named like an archive or a dated folder. Age comes from the date in the name, never
from file times or the wall clock. Every deletion is logged.
"""

from __future__ import annotations

import logging
import re
import shutil
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

from ccwatch.common.times import evidence_date

log = logging.getLogger("ccwatch")

ARCHIVE_NAME = re.compile(r"ccwatch-evidence-(\d{4}-\d{2}-\d{2})(?:\.(\d+))?\.tar\.gz")
_FOLDER = re.compile(r"\d{4}-\d{2}-\d{2}")


@dataclass(frozen=True, order=True)
class _Archive:
    day: date
    number: int
    path: Path


def _day(text: str) -> date | None:
    try:
        return date.fromisoformat(text)
    except ValueError:
        return None


def archives(base: Path) -> list[_Archive]:
    """The evidence archives in ``base``, oldest first (date, then rerun number)."""
    out = []
    for p in Path(base).iterdir() if Path(base).is_dir() else []:
        m = ARCHIVE_NAME.fullmatch(p.name)
        if not m or not p.is_file() or p.is_symlink():
            continue
        d = _day(m.group(1))
        if d is not None:
            out.append(_Archive(d, int(m.group(2) or 0), p))
    return sorted(out)


def prune_evidence(base: str | Path, as_of: datetime, retention_days: int | None, keep_latest: int,
                   keep: str | Path | None = None) -> list[Path]:
    """Delete expired archives and dated folders under ``base`` (``<home>/evidence``).

    ``keep`` is the archive just written (never deleted). Returns what was deleted, sorted."""
    if retention_days is None:
        return []
    base = Path(base)
    cutoff = evidence_date(as_of) - timedelta(days=retention_days)
    found = archives(base)
    protected = {a.path for a in found[-keep_latest:]} if keep_latest > 0 else set()
    if keep is not None:
        protected.add(Path(keep))
    deleted: list[Path] = []
    kept_days = set()
    for a in found:
        if a.day >= cutoff or a.path in protected:
            kept_days.add(a.day)
            continue
        if _remove(a.path, cutoff):
            deleted.append(a.path)
        else:
            kept_days.add(a.day)
    for p in sorted(base.iterdir()) if base.is_dir() else []:
        d = _day(p.name) if _FOLDER.fullmatch(p.name) else None
        if d is None or d >= cutoff or d in kept_days or not p.is_dir() or p.is_symlink():
            continue
        if _remove(p, cutoff):
            deleted.append(p)
    if deleted:
        log.info("Evidence retention (%d days before %s, keeping the newest %d): deleted %d item(s)",
                 retention_days, evidence_date(as_of), keep_latest, len(deleted))
    return sorted(deleted)


def _remove(path: Path, cutoff: date) -> bool:
    try:
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink()
    except OSError as exc:
        log.warning("Evidence retention: could not delete %s: %s", path, exc)
        return False
    log.info("Evidence retention: deleted %s (dated before %s)", path, cutoff)
    return True
