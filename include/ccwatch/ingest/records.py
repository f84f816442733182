"""Raw records as fetched, and the per-run staging files that carry them to the warehouse.

A staging file is JSON lines, one RawRecord each, written under a temporary name and
renamed only when the fetch that produced it completed: a file under its final name is
always a complete fetch (docs/ARCHITECTURE.md).  A writer killed before its cleanup leaves its
temp file behind; the next write of the same file removes it (``common.files``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ccwatch.common.files import atomic_writer
from ccwatch.ingest.errors import SourceError

MAX_PAYLOAD_ENV = "CCWATCH_MAX_PAYLOAD_MB"
DEFAULT_MAX_PAYLOAD_MB = 64


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


def max_record_bytes() -> int:
    """What one staged record may cost: ``CCWATCH_MAX_PAYLOAD_MB`` (default 64) megabytes of JSON."""
    text = os.environ.get(MAX_PAYLOAD_ENV, "").strip() or str(DEFAULT_MAX_PAYLOAD_MB)
    if not text.isdigit() or int(text) < 1:
        raise ValueError(f"{MAX_PAYLOAD_ENV}={text!r}: must be a whole number of megabytes, at least 1")
    return int(text) << 20


def write_staging(path: Path, records: Iterable[RawRecord]) -> int:
    """Write records atomically to ``path``; returns how many were written.  A record larger than
    :func:`max_record_bytes` stops the fetch (SourceError naming it): no real GitHub or Jira answer
    comes near that size, and one that did would cost every later stage its size many times over."""
    limit = max_record_bytes()
    n = 0
    with atomic_writer(path) as fh:
        for rec in records:
            line = utf8_safe(json.dumps(asdict(rec), ensure_ascii=False, sort_keys=True))
            if len(line) > limit:
                raise SourceError(f"{rec.source} {rec.kind} {rec.natural_key} ({rec.url}): the answer is "
                                  f"{len(line) >> 20} MB of JSON, over the {limit >> 20} MB one record may take "
                                  f"({MAX_PAYLOAD_ENV}); a broken or hostile source: not staged")
            fh.write(line)
            fh.write("\n")
            n += 1
    return n


def read_staging(path: Path) -> Iterator[RawRecord]:
    with Path(path).open(encoding="utf-8") as fh:
        lineno = 0  # no enumerate(): its reused result tuple would hold the last line
        for line in fh:
            lineno += 1
            if not line.strip():
                continue
            try:
                out = [RawRecord(**json.loads(line))]
            except (ValueError, TypeError) as exc:
                raise ValueError(f"{path}:{lineno}: not a staging record: {exc}") from None
            del line
            # neither the record nor its text (tens of MB for a busy branch's list) is held here while
            # the caller uses it: the load frees a long list as soon as it has normalised it
            yield out.pop()
