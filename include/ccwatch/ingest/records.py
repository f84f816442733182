"""Raw records as fetched, and the per-run staging files that carry them to the warehouse.

A staging file is JSON lines, one RawRecord each, written under a temporary name and
renamed only when the fetch that produced it completed: a file under its final name is
always a complete fetch (docs/ARCHITECTURE.md).  A writer killed before its cleanup leaves its
temp file behind; the next write of the same file removes it (:func:`remove_stale`).
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any


@dataclass
class RawRecord:
    source: str
    kind: str
    natural_key: str
    url: str
    fetched_at: str
    payload: Any
    etag: str | None = None
    status_code: int = 200


def utc_now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def staging_dir(home: Path, as_of: datetime) -> Path:
    return Path(home) / "staging" / as_of.strftime("%Y-%m-%d")


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
    """What writers killed before their cleanup (SIGKILL, OOM, power loss) left behind: entries
    of ``directory`` whose name fully matches ``pattern``, whose first group is the writer's pid,
    and whose writer is no longer running."""
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


def tmp_pattern(path: Path) -> str:
    """The temp names :func:`write_staging` and ``watermarks.write_json_atomic`` use for ``path``."""
    return rf"\.{re.escape(Path(path).name)}\.(\d+)\.tmp"


def utf8_safe(text: str) -> str:
    """``text`` unchanged, except lone UTF-16 surrogates (valid JSON escapes such as ``"\\ud800"``,
    but not Unicode text: no file, DuckDB column or HTML page can hold them) become U+FFFD."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")


def write_staging(path: Path, records: Iterable[RawRecord]) -> int:
    """Write records atomically to ``path``; returns how many were written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale(path.parent, tmp_pattern(path))
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    n = 0
    try:
        with tmp.open("w", encoding="utf-8") as fh:
            for rec in records:
                fh.write(utf8_safe(json.dumps(asdict(rec), ensure_ascii=False, sort_keys=True)))
                fh.write("\n")
                n += 1
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return n


def read_staging(path: Path) -> Iterator[RawRecord]:
    with Path(path).open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                yield RawRecord(**json.loads(line))
            except (ValueError, TypeError) as exc:
                raise ValueError(f"{path}:{lineno}: not a staging record: {exc}") from None
