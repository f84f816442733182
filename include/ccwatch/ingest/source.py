"""Source connectors: fetch raw API payloads through the real clients (no derivation).

A connector either yields every record of a complete fetch or raises :class:`SourceError`:
a partial fetch must never look complete (CONTROLS.md: "An error fetching a source is not
a status: the run fails loudly").
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

# query parameters that may carry a credential; never recorded
SECRET_PARAMS = frozenset({"access_token", "token", "api_key", "apikey", "key", "sig", "signature", "jwt",
                           "client_secret", "password", "os_password", "X-Amz-Signature"})


class SourceError(RuntimeError):
    """Fetching a source failed; the message names the repo/project and the endpoint, never a token."""


def public_url(url: str) -> str:
    """``url`` without user:password@ and without credential-like query parameters."""
    parts = urlsplit(url)
    netloc = parts.netloc.rsplit("@", 1)[-1]
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in SECRET_PARAMS]
    return urlunsplit((parts.scheme, netloc, parts.path, urlencode(query), ""))


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


def iso_z(dt: datetime) -> str:
    """A tz-aware datetime as ``YYYY-MM-DDTHH:MM:SSZ`` (UTC)."""
    if dt.tzinfo is None:
        raise ValueError("as_of must be timezone-aware (UTC)")
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def fetched_now() -> str:
    """Bookkeeping timestamp of a fetch (never used in evaluation)."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
