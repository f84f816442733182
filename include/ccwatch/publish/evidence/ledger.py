"""The record of published archives kept outside them (warehouse table ``evidence_archives``,
migration 6) and the hash chain's ``previous`` link of manifest.json.

"previous" of a run of evidence date D is the manifest.json of the most recently published archive
of the latest date before D that has one: dates without a run (gaps) are skipped, and of a date
run several times (``.1.tar.gz``, ``.2.tar.gz``, ...) the latest run's archive counts, as the
folder ``<date>/`` holds that run.  A rerun of D itself links to the same previous date as the
first run of D.  The table is the pipeline's own memory of what it published, so a link is taken
from it (a later rewrite of the previous archive cannot move the link); archives older than the
table (written before migration 6) are read from the evidence folder instead (an unreadable one
gives a link with ``"sha256": null, "unreadable": true``, which ``verify --chain`` reports: the run
still publishes its evidence).  ``null`` only when no earlier date has an archive.
"""

from __future__ import annotations

import hashlib
import logging
import re
import tarfile
from datetime import date, datetime
from pathlib import Path

import duckdb

from ccwatch.common.times import iso, naive_utc, parse_ts

log = logging.getLogger("ccwatch")
ARCHIVE_NAME = re.compile(r"^ccwatch-evidence-(\d{4}-\d{2}-\d{2})(?:\.(\d+))?\.tar\.gz$")


def record_archive(con: duckdb.DuckDBPyConnection, as_of: datetime, path: Path, sha256: str,
                   manifest_sha256: str, generated_at: str, signed: bool, previous_manifest_sha256: str | None) -> None:
    con.execute("INSERT OR REPLACE INTO evidence_archives VALUES (?, ?, ?, ?, ?, ?, ?)",
                [naive_utc(as_of), str(path), sha256, manifest_sha256, parse_ts(generated_at), bool(signed),
                 previous_manifest_sha256])


def latest_record(con: duckdb.DuckDBPyConnection, as_of: datetime) -> dict | None:
    """The most recently generated archive of the date of ``as_of`` (for the nightly Slack line)."""
    row = con.execute(
        "SELECT path, sha256, manifest_sha256, generated_at, signed, previous_manifest_sha256 FROM evidence_archives "
        "WHERE CAST(as_of AS DATE) = CAST(? AS DATE) ORDER BY generated_at DESC, path DESC LIMIT 1",
        [naive_utc(as_of)]).fetchone()
    if row is None:
        return None
    keys = ("path", "sha256", "manifest_sha256", "generated_at", "signed", "previous_manifest_sha256")
    return dict(zip(keys, row, strict=True))


def archives_on_disk(base: Path) -> list[tuple[str, int, Path]]:
    """(date, number, path) of every ``ccwatch-evidence-<date>[.<n>].tar.gz`` in ``base``, in order."""
    out = []
    for p in base.iterdir() if base.is_dir() else ():
        m = ARCHIVE_NAME.match(p.name)
        if m and p.is_file() and not p.is_symlink():
            out.append((m.group(1), int(m.group(2) or 0), p))
    return sorted(out)


def manifest_digest_in_archive(path: Path, day: str) -> str | None:
    """SHA-256 of ``<day>/manifest.json`` inside an archive, read as a stream (bounded memory)."""
    try:
        with tarfile.open(path, mode="r|gz") as tar:
            for m in tar:
                if m.name == f"{day}/manifest.json" and m.isfile():
                    fh = tar.extractfile(m)
                    h = hashlib.sha256()
                    while chunk := fh.read(1 << 20):
                        h.update(chunk)
                    return h.hexdigest()
    except (OSError, tarfile.TarError, EOFError):
        return None
    return None


def previous_link(con: duckdb.DuckDBPyConnection, base: Path, day: date | str) -> dict | None:
    """manifest.json's ``previous``: {date, sha256 (of that manifest.json), archive} or None (see the module doc)."""
    day = str(day)
    row = con.execute(
        "SELECT CAST(as_of AS DATE) AS d, manifest_sha256, path FROM evidence_archives WHERE CAST(as_of AS DATE) < ? "
        "ORDER BY d DESC, generated_at DESC, path DESC LIMIT 1", [day]).fetchone()
    table = {"date": iso(row[0]), "sha256": row[1], "archive": Path(row[2]).name} if row else None
    disk = [a for a in archives_on_disk(base) if a[0] < day]
    if disk and (table is None or disk[-1][0] > table["date"]):
        d, _, path = disk[-1]
        digest = manifest_digest_in_archive(path, d)
        if digest is None:  # never claim to be the first when an earlier archive exists: a visible broken link
            log.error("%s has no readable %s/manifest.json: manifest.json 'previous' records the link as unreadable "
                      "(verify --chain reports it)", path, d)
            return {"date": d, "sha256": None, "archive": path.name, "unreadable": True}
        return {"date": d, "sha256": digest, "archive": path.name}
    return table
