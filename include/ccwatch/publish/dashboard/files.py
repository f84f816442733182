"""The Compliance page's evidence files: the dated folder's top-level files and the archives,
served path-safe, and their ``verify`` result cached per digest."""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from ccwatch.common.paths import evidence_dir
from ccwatch.publish.dashboard.data import parse_day
from ccwatch.publish.evidence import retention
from ccwatch.publish.evidence.archive import MANIFEST, sha256_file
from ccwatch.publish.evidence.verify import verify_archive

#: the dated folder's files the page links to and serves (report first)
FOLDER_FILES = ("report.html", "control_results.csv", "population.csv", MANIFEST, "POLICY.md", "README.txt")


@dataclass(frozen=True)
class ArchiveFile:
    name: str
    path: Path
    number: int  # 0 for the first archive of the date, n for the rerun's ``.<n>.tar.gz``
    size: int
    current: bool  # the newest archive of the date: the one the dated folder now matches


@dataclass(frozen=True)
class EvidenceFiles:
    folder_files: tuple[str, ...]  # FOLDER_FILES present in evidence/<date>/
    archives: tuple[ArchiveFile, ...]  # newest first


def evidence_files(home: Path, day: date | None) -> EvidenceFiles:
    """The date's evidence files under ``<home>/evidence`` (nothing is read but directory entries)."""
    if day is None:
        return EvidenceFiles((), ())
    present = tuple(n for n in FOLDER_FILES if evidence_file(home, day.isoformat(), n) is not None)
    found = [a for a in retention.archives(evidence_dir(home)) if a.day == day]
    last = max((a.number for a in found), default=None)
    archives = tuple(ArchiveFile(a.path.name, a.path, a.number, a.path.stat().st_size, a.number == last)
                     for a in sorted(found, key=lambda a: -a.number))
    return EvidenceFiles(present, archives)


def _inside(base: Path, path: Path) -> bool:
    """A regular file (not a symlink) whose real location is inside ``base``'s real location."""
    try:
        return path.is_file() and not path.is_symlink() and path.resolve().is_relative_to(base.resolve())
    except OSError:
        return False


def evidence_file(home: Path, day_text: str, name: str) -> Path | None:
    """``<home>/evidence/<day>/<name>`` when ``name`` is one of :data:`FOLDER_FILES`, ``day_text`` a
    date and the file a regular file inside the evidence folder; None otherwise."""
    try:
        parse_day(day_text)
    except ValueError:
        return None
    if name not in FOLDER_FILES:
        return None
    base = evidence_dir(home)
    folder = base / day_text
    if folder.is_symlink():
        return None
    path = folder / name
    return path if _inside(base, path) else None


def archive_day(name: str) -> date | None:
    """The evidence date in an archive's name, or None when it is not an archive's name."""
    m = retention.ARCHIVE_NAME.fullmatch(name or "")
    try:
        return parse_day(m.group(1)) if m else None
    except ValueError:
        return None


def archive_file(home: Path, name: str) -> Path | None:
    """``<home>/evidence/<name>`` when ``name`` is an evidence archive's name and the file a regular
    file there; None otherwise."""
    if archive_day(name) is None:
        return None
    base = evidence_dir(home)
    path = base / name
    return path if _inside(base, path) and path.parent == base else None


@dataclass(frozen=True)
class Verification:
    digest: str
    problems: tuple[str, ...]
    seconds: float

    @property
    def ok(self) -> bool:
        return not self.problems


class ArchiveChecks:
    """SHA-256 digests and ``verify`` results of evidence archives, computed on demand and kept in
    memory: a digest per file identity (device, inode, size, mtime), a verification per digest (an
    archive is never rewritten: a rerun publishes a new name).  Thread-safe; reads only."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._digests: dict[tuple, str] = {}
        self._verified: dict[str, Verification] = {}
        self._busy: dict[object, threading.Lock] = {}

    def _key_lock(self, key) -> threading.Lock:
        with self._lock:
            return self._busy.setdefault(key, threading.Lock())

    def digest(self, path: Path) -> str:
        st = os.stat(path)
        key = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
        with self._key_lock(key):
            if key not in self._digests:
                self._digests[key] = sha256_file(Path(path))
            return self._digests[key]

    def verified(self, digest: str) -> Verification | None:
        """The remembered verification of this digest, or None (not run yet)."""
        return self._verified.get(digest)

    def verify(self, path: Path) -> Verification:
        """``ccwatch.publish.evidence.verify.verify_archive`` of the archive, once per digest."""
        digest = self.digest(path)
        with self._key_lock(digest):
            if digest not in self._verified:
                t = time.monotonic()
                problems = tuple(verify_archive(path))
                self._verified[digest] = Verification(digest, problems, round(time.monotonic() - t, 3))
            return self._verified[digest]
