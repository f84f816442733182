"""Raw records as fetched, and the per-run staging files that carry them to the warehouse.

A staging file is JSON lines, one RawRecord each, written under a temporary name and
renamed only when the fetch that produced it completed: a file under its final name is
always a complete fetch (docs/ARCHITECTURE.md).  A writer killed before its cleanup leaves its
temp file behind; the next write of the same file removes it (``common.files``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ccwatch.common.files import atomic_writer


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
    n = 0
    with atomic_writer(path) as fh:
        for rec in records:
            fh.write(utf8_safe(json.dumps(asdict(rec), ensure_ascii=False, sort_keys=True)))
            fh.write("\n")
            n += 1
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
