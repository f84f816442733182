"""Paged listings: the next page, loop detection, repeats, and stopping early on time order."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from ccwatch.common.times import parse_ts


def next_link(link: str) -> str | None:
    """The ``rel="next"`` URL of a ``Link`` header, or None."""
    for part in link.split(","):
        seg = part.split(";")
        if len(seg) >= 2 and any(s.strip() == 'rel="next"' for s in seg[1:]):
            return seg[0].strip().strip("<>")
    return None


def page_key(url: str) -> tuple:
    """A page's identity for loop detection: path and the sorted query (parameter order ignored)."""
    parts = urlsplit(url)
    return parts.path.rstrip("/"), tuple(sorted(parse_qsl(parts.query, keep_blank_values=True)))


def unique_items(items: list[Any]) -> list[Any]:
    """Items of a paged listing without repeats, first occurrence kept, in order.

    The natural key is ``id`` (``sha`` for commits, ``key`` for Jira issues), else the whole item:
    a listing that shifts while it is paged serves some items twice.
    """
    seen: set[str] = set()
    out = []
    for item in items:
        if isinstance(item, dict) and any(item.get(k) is not None for k in ("id", "sha", "key")):
            k = next(k for k in ("id", "sha", "key") if item.get(k) is not None)
            ident = f"{k}:{item[k]}"
        else:
            ident = "json:" + json.dumps(item, sort_keys=True, default=str)
        if ident not in seen:
            seen.add(ident)
            out.append(item)
    return out


def is_before(ts: Any, lo: datetime) -> bool:
    """``ts`` (ISO text) is earlier than ``lo`` (naive UTC); unknown times are not."""
    dt = parse_ts(ts)
    return dt is not None and dt < lo


def sorted_past(page: list[dict[str, Any]], field: str, lo: datetime) -> bool:
    """Paging may stop: this page is newest-first by ``field`` and already older than ``lo``.

    Only a page that really is in that order lets paging stop early: a server that ignores
    the requested sort costs more requests, never a missed change.
    """
    stamps = [parse_ts(p.get(field)) for p in page]
    if not stamps or None in stamps:
        return False
    return all(a >= b for a, b in zip(stamps, stamps[1:], strict=False)) and stamps[-1] < lo
