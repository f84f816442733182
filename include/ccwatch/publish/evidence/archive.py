"""Manifest, reproducible tar.gz and verification of an evidence folder.

The archive is a pure function of the folder's bytes and the as-of time: members sorted,
owner 0/0 without names, fixed modes, mtime = as-of time, gzip header without file name
and with the same mtime.  It is written under a temporary name and published with a
no-clobber hard link, so an existing archive is never overwritten: the next free
``ccwatch-evidence-<date>.<n>.tar.gz`` is used instead.
"""

from __future__ import annotations

import calendar
import errno
import hashlib
import json
import os
import shutil
import tarfile
from datetime import datetime
from importlib import metadata
from pathlib import Path

from ccwatch import __version__
from ccwatch.publish.evidence import tarstream
from ccwatch.publish.results import naive_utc

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


def _epoch(as_of: datetime) -> int:
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
    """Append the compressed change-folder part to the archive (a kill point of tests/crash_driver.py)."""
    with src.open("rb") as fh:
        shutil.copyfileobj(fh, dst, 1 << 20)


def assemble_archive(directory: Path, prefix: str, as_of: datetime, out: Path, entries: list[tuple[str, bool]],
                     changes_part: tuple[Path, int, int] | None) -> None:
    """Write the archive of ``directory`` to ``out``: ``entries`` (rel, is_dir) sorted, the top-level
    ones read from disk; the ``changes/`` entries given as an already compressed part
    ``(file, crc32, length)`` (or None when there are none).  Fsynced."""
    mtime = _epoch(as_of)
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
    mtime = _epoch(as_of)
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
    n = 0
    while True:
        target = directory / (f"{stem}.tar.gz" if n == 0 else f"{stem}.{n}.tar.gz")
        try:
            os.link(tmp, target)  # atomic, fails if target exists
        except FileExistsError:
            n += 1
            continue
        except OSError as exc:  # file system without hard links
            if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EXDEV, errno.EMLINK):
                raise
            if target.exists():
                n += 1
                continue
            os.rename(tmp, target)
            return target, n > 0
        tmp.unlink()
        return target, n > 0


def _compare(manifest: dict, actual: dict[str, tuple[str, int]]) -> list[str]:
    problems = []
    listed = {}
    for f in manifest.get("files") or []:
        listed[f.get("path")] = (f.get("sha256"), f.get("size"))
    for path in sorted(listed):
        if path not in actual:
            problems.append(f"missing: {path} (listed in the manifest, absent)")
            continue
        want_sha, want_size = listed[path]
        got_sha, got_size = actual[path]
        if got_sha != want_sha or got_size != want_size:
            problems.append(f"modified: {path} (sha256 {got_sha}, size {got_size}; manifest says "
                            f"sha256 {want_sha}, size {want_size})")
    for path in sorted(set(actual) - set(listed) - {MANIFEST}):
        problems.append(f"added: {path} (not listed in the manifest)")
    return problems


def verify_archive(path: str | os.PathLike) -> list[str]:
    """Check an evidence archive (or an evidence folder) against its manifest.json.

    Returns the problems found (modified, missing or added files, unreadable archive,
    unexpected member types); an empty list means every file is exactly as recorded."""
    p = Path(path)
    if p.is_dir():
        actual = {rel: (sha256_file(p / rel), (p / rel).stat().st_size) for rel in list_files(p)}
        if MANIFEST not in actual:
            return ["missing: manifest.json"]
        try:
            manifest = json.loads((p / MANIFEST).read_text(encoding="utf-8"))
        except ValueError as exc:
            return [f"unreadable manifest.json: {exc}"]
        return _compare(manifest, actual)
    actual = {}
    problems = []
    manifest_bytes = None
    try:
        with tarfile.open(p, mode="r:gz") as tar:
            for m in tar.getmembers():
                top, _, rel = m.name.partition("/")
                if m.isdir():
                    continue
                if not m.isfile():
                    problems.append(f"added: {m.name} (not a regular file)")
                    continue
                fh = tar.extractfile(m)
                data = fh.read() if fh else b""
                if not rel:
                    problems.append(f"added: {m.name} (outside the evidence folder)")
                    continue
                actual[rel] = (hashlib.sha256(data).hexdigest(), len(data))
                if rel == MANIFEST:
                    manifest_bytes = data
    except (OSError, tarfile.TarError, EOFError) as exc:
        return [f"unreadable archive {p.name}: {exc}"]
    if manifest_bytes is None:
        return problems + ["missing: manifest.json"]
    try:
        manifest = json.loads(manifest_bytes.decode("utf-8"))
    except ValueError as exc:
        return problems + [f"unreadable manifest.json: {exc}"]
    return problems + _compare(manifest, actual)
