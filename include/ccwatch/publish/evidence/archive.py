"""Manifest, reproducible tar.gz and verification of an evidence folder.

The archive is a pure function of the folder's bytes and the as-of time: members sorted,
owner 0/0 without names, fixed modes, mtime = as-of time, gzip header without file name
and with the same mtime.  It is written under a temporary name and published with a
no-clobber hard link, so an existing archive is never overwritten: the next free
``ccwatch-evidence-<date>.<n>.tar.gz`` is used instead.
"""

from __future__ import annotations

import calendar
import hashlib
import json
import os
import shutil
from datetime import datetime
from importlib import metadata
from pathlib import Path

from ccwatch import __version__
from ccwatch.common.files import publish_file
from ccwatch.common.times import naive_utc
from ccwatch.publish.evidence import tarstream

MANIFEST = "manifest.json"
SUMS = "SHA256SUMS"
_DISTRIBUTIONS = ("apache-airflow", "great-expectations", "duckdb", "slack-sdk", "PyGithub", "jira", "pandas",
                  "compliance-trestle")


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def versions() -> dict[str, str | None]:
    """Tool and library versions from the installed distributions (no airflow import)."""
    out: dict[str, str | None] = {"ccwatch": __version__}
    for dist in _DISTRIBUTIONS:
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = None
    import platform

    out["python"] = platform.python_version()
    return out


def list_files(directory: Path) -> list[str]:
    """Relative POSIX paths of every regular file under directory, sorted."""
    out = []
    for p in directory.rglob("*"):
        if p.is_file() and not p.is_symlink():
            out.append(p.relative_to(directory).as_posix())
    return sorted(out)


def write_sums(directory: Path) -> None:
    """SHA256SUMS in `sha256sum -c` format for every file but itself and the manifest."""
    lines = [f"{sha256_file(directory / rel)}  {rel}\n" for rel in list_files(directory) if rel not in (SUMS, MANIFEST)]
    (directory / SUMS).write_text("".join(lines), encoding="utf-8", newline="\n")


def write_manifest(directory: Path, header: dict) -> dict:
    """manifest.json: header + every other file's sha256 and size (the manifest cannot hash itself)."""
    files = [
        {"path": rel, "sha256": sha256_file(directory / rel), "size": (directory / rel).stat().st_size}
        for rel in list_files(directory)
        if rel != MANIFEST
    ]
    manifest = dict(header)
    manifest["files"] = files
    text = json.dumps(manifest, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    (directory / MANIFEST).write_text(text, encoding="utf-8", newline="\n")
    return manifest


def archive_mtime(as_of: datetime) -> int:
    return calendar.timegm(naive_utc(as_of).timetuple())


CHANGES = "changes/"  # the part of the archive tarred while the folder is written (ccwatch.publish.evidence.tarstream)


def _add_from_disk(part: tarstream.Deflater, name: str, path: Path, mtime: int) -> None:
    size = path.stat().st_size
    part.write(tarstream.header(name, size, mtime, False))
    n = 0
    with path.open("rb") as fh:
        while chunk := fh.read(tarstream.CHUNK):
            part.write(chunk)
            n += len(chunk)
    if n != size:
        raise OSError(f"{path} changed while archived ({size} -> {n} bytes)")
    part.write(tarstream.padding(size))


def _copy_part(src: Path, dst) -> None:
    """Append the compressed change-folder part to the archive (a kill point of tests/helpers/crash_driver.py)."""
    with src.open("rb") as fh:
        shutil.copyfileobj(fh, dst, 1 << 20)


def assemble_archive(directory: Path, prefix: str, as_of: datetime, out: Path, entries: list[tuple[str, bool]],
                     changes_part: tuple[Path, int, int] | None) -> None:
    """Write the archive of ``directory`` to ``out``: ``entries`` (rel, is_dir) sorted, the top-level
    ones read from disk; the ``changes/`` entries given as an already compressed part
    ``(file, crc32, length)`` (or None when there are none).  Fsynced."""
    mtime = archive_mtime(as_of)
    before = [e for e in entries if e[0] < CHANGES]
    after = [e for e in entries if e[0] >= CHANGES and not e[0].startswith(CHANGES)]
    with out.open("wb") as raw:
        raw.write(tarstream.gzip_header(mtime))
        head = tarstream.Deflater(raw)
        try:
            head.add_dir(prefix, mtime)
            for rel, is_dir in before:
                if is_dir:
                    head.add_dir(f"{prefix}/{rel}", mtime)
                else:
                    _add_from_disk(head, f"{prefix}/{rel}", directory / rel, mtime)
        except BaseException:
            head.abort()
            raise
        head.close()
        crc, length = head.crc, head.length
        if changes_part is not None:
            path, part_crc, part_len = changes_part
            _copy_part(path, raw)
            crc, length = tarstream.crc32_combine(crc, part_crc, part_len), length + part_len
        tail = tarstream.Deflater(raw)
        try:
            for rel, is_dir in after:
                if is_dir:
                    tail.add_dir(f"{prefix}/{rel}", mtime)
                else:
                    _add_from_disk(tail, f"{prefix}/{rel}", directory / rel, mtime)
            tail.write(tarstream.end_of_archive(length + tail.offset))
        except BaseException:
            tail.abort()
            raise
        tail.close(final=True)
        crc, length = tarstream.crc32_combine(crc, tail.crc, tail.length), length + tail.length
        raw.write(tarstream.gzip_trailer(crc, length))
        raw.flush()
        os.fsync(raw.fileno())


def build_archive(directory: Path, prefix: str, as_of: datetime, out: Path) -> None:
    """Write a reproducible tar.gz of directory (members under ``prefix/``) to ``out``: the same bytes
    as ``ccwatch.publish.evidence.write`` streams while writing the folder (see ``ccwatch.publish.evidence.tarstream``)."""
    mtime = archive_mtime(as_of)
    dirs = sorted({p.relative_to(directory).as_posix() for p in directory.rglob("*") if p.is_dir()})
    entries = sorted([(d, True) for d in dirs] + [(f, False) for f in list_files(directory)])
    changes = [e for e in entries if e[0].startswith(CHANGES)]
    if not changes:
        return assemble_archive(directory, prefix, as_of, out, entries, None)
    part_path = out.with_name(out.name + ".changes")
    try:
        with part_path.open("wb") as fh:
            part = tarstream.Deflater(fh)
            try:
                for rel, is_dir in changes:
                    if is_dir:
                        part.add_dir(f"{prefix}/{rel}", mtime)
                    else:
                        part.add(f"{prefix}/{rel}", (directory / rel).read_bytes(), mtime)
            except BaseException:
                part.abort()
                raise
            part.close()
        assemble_archive(directory, prefix, as_of, out, entries, (part_path, part.crc, part.length))
    finally:
        part_path.unlink(missing_ok=True)


def publish(tmp: Path, directory: Path, stem: str) -> tuple[Path, bool]:
    """Give ``tmp`` the first free name ``stem.tar.gz``, ``stem.1.tar.gz``, ... without ever
    replacing an existing file; returns (path, numbered)."""
    return publish_file(tmp, directory, stem, ".tar.gz")
