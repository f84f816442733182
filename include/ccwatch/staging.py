"""Raw records as fetched, and the per-run staging files that carry them to the warehouse.

A staging file is JSON lines, one RawRecord each, written under a temporary name and
renamed only when the fetch that produced it completed: a file under its final name is
always a complete fetch (docs/ARCHITECTURE.md).
"""

from __future__ import annotations

import json
import os
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


def write_staging(path: Path, records: Iterable[RawRecord]) -> int:
    """Write records atomically to ``path``; returns how many were written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    n = 0
    try:
        with tmp.open("w", encoding="utf-8") as fh:
            for rec in records:
                fh.write(json.dumps(asdict(rec), ensure_ascii=False, sort_keys=True))
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
