"""Writing files so that a reader never sees half of one, and cleaning up after a killed writer.

Every file ccwatch publishes is written under a temporary name in the same folder
(``.<name>.<pid>.tmp``), flushed to disk, then renamed over its final name (:func:`atomic_writer`,
:func:`write_bytes_atomic`, :func:`write_json_atomic`).  Folders are built under
``.<stem>.tmp-<pid>`` and published under a name that is never reused (:func:`publish_folder`),
files likewise (:func:`publish_file`).  A writer killed before its cleanup (SIGKILL, OOM, power
loss) leaves its temporary entry behind; the next writer of the same name removes it
(:func:`remove_stale`), recognising it by the dead pid in its name.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

log = logging.getLogger(__name__)


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def stale_entries(directory: Path, pattern: str) -> list[Path]:
    """What writers killed before their cleanup left behind: entries of ``directory`` whose name
    fully matches ``pattern``, whose first group is the writer's pid, and whose writer is gone."""
    directory, rx = Path(directory), re.compile(pattern)
    out = []
    for entry in sorted(directory.iterdir()) if directory.is_dir() else []:
        m = rx.fullmatch(entry.name)
        if m is not None and not _alive(int(m.group(1))):
            out.append(entry)
    return out


def remove_stale(directory: Path, pattern: str) -> list[Path]:
    """Remove :func:`stale_entries`; returns what was removed."""
    removed = stale_entries(directory, pattern)
    for entry in removed:
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)
    return removed


def tmp_name(path: Path) -> Path:
    """The temporary name this process writes ``path`` under."""
    path = Path(path)
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


def tmp_pattern(path: Path) -> str:
    """The temporary names (any pid) of ``path`` (:func:`tmp_name`), for :func:`remove_stale`."""
    return rf"\.{re.escape(Path(path).name)}\.(\d+)\.tmp"


@contextmanager
def atomic_writer(path: Path, mode: str = "w") -> Iterator[IO[Any]]:
    """A file handle on the temporary name of ``path``; on a clean exit the data is fsynced and
    renamed over ``path``, on an error the temporary file is removed and ``path`` is untouched."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale(path.parent, tmp_pattern(path))
    tmp = tmp_name(path)
    try:
        with tmp.open(mode, **({} if "b" in mode else {"encoding": "utf-8", "newline": "\n"})) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_bytes_atomic(path: Path, data: bytes) -> Path:
    with atomic_writer(path, "wb") as fh:
        fh.write(data)
    return Path(path)


def read_json_optional(path: Path, unreadable: str) -> Any | None:
    """The JSON document at ``path``; None when there is none, or when it cannot be read or parsed
    (logged as a warning with ``unreadable``: who reads it and what happens instead)."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        log.warning("%s: %s unreadable (%s)", unreadable, path, exc)
        return None


def write_json_atomic(path: Path, data: Any) -> Path:
    """``data`` as indented, key-sorted JSON, atomically."""
    with atomic_writer(path) as fh:
        json.dump(data, fh, indent=1, sort_keys=True)
    return Path(path)


@contextmanager
def building_folder(base: Path, stem: str) -> Iterator[Path]:
    """An empty temporary folder ``base/.<stem>.tmp-<pid>`` to build in; removed on exit (after
    :func:`publish_folder` moved it, nothing is left to remove)."""
    base = Path(base)
    base.mkdir(parents=True, exist_ok=True)
    remove_stale(base, rf"\.{re.escape(stem)}\.tmp-(\d+)")
    tmp = base / f".{stem}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def publish_folder(tmp: Path, base: Path, stem: str) -> tuple[Path, bool]:
    """Move a finished folder to the first free ``stem``, ``stem.1``, ... (never replaces one);
    returns (path, numbered)."""
    n = 0
    while True:
        target = Path(base) / (stem if n == 0 else f"{stem}.{n}")
        try:
            target.mkdir()  # claims the name atomically
        except FileExistsError:
            n += 1
            continue
        os.replace(tmp, target)  # onto our own empty directory: atomic on POSIX
        return target, n > 0


def publish_file(tmp: Path, directory: Path, stem: str, suffix: str) -> tuple[Path, bool]:
    """Give ``tmp`` the first free name ``stem+suffix``, ``stem.1+suffix``, ... without ever
    replacing an existing file (a no-clobber hard link); returns (path, numbered)."""
    n = 0
    while True:
        target = Path(directory) / (f"{stem}{suffix}" if n == 0 else f"{stem}.{n}{suffix}")
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
        Path(tmp).unlink()
        return target, n > 0
