"""GraphQL connections for the API double's resolvers: cursors (base64 as GitHub's look), the
``first``/``last``/``after``/``before`` window, and a connection built O(page) over a list.  An
unreadable cursor is GitHub's INVALID_CURSOR_ARGUMENTS.  See ``github_graphql_exec``.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

from graphql import get_named_type, is_list_type

from ccwatch.sandbox.github_graphql_errors import GitHubError


def is_connection(type_: Any) -> bool:
    return get_named_type(type_).name.endswith("Connection") and not is_list_type(type_)


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def unb64(cursor: str) -> str:
    try:
        return base64.b64decode(cursor.encode(), validate=True).decode()
    except Exception:  # noqa: BLE001 - any undecodable cursor is an invalid cursor
        raise bad_cursor(cursor) from None


def bad_cursor(cursor: str) -> GitHubError:
    return GitHubError("INVALID_CURSOR_ARGUMENTS", f"`{cursor}` does not appear to be a valid cursor.")


def offset_cursor(i: int) -> str:
    return b64(f"cursor:v2:[{i}]")


def offset_position(cursor: str) -> int:
    text = unb64(cursor)
    try:
        if not text.startswith("cursor:v2:"):
            raise ValueError(text)
        (i,) = json.loads(text[len("cursor:v2:"):])
        return int(i)
    except Exception:  # noqa: BLE001 - any malformed cursor is an invalid cursor
        raise bad_cursor(cursor) from None


def window(n_items: int, args: dict[str, Any], position: Callable[[str], int]) -> tuple[int, int, bool, bool]:
    """The slice ``[start, end)`` of a connection of ``n_items`` for first/after/last/before, and
    (hasNextPage, hasPreviousPage).  ``position(cursor)`` is the index of a cursor's item.  The
    bounds were checked before execution (:func:`prepare`)."""
    first, last = args.get("first"), args.get("last")
    lo, hi = 0, n_items
    if args.get("after") is not None:
        lo = position(args["after"]) + 1
    if args.get("before") is not None:
        hi = position(args["before"])
    lo, hi = max(lo, 0), max(min(hi, n_items), 0)
    hi = max(hi, lo)
    start, end = lo, hi
    if first is not None:
        end = min(end, start + first)
    if last is not None:
        start = max(start, end - last)
    has_next = end < hi if first is not None else (hi < n_items and args.get("before") is not None)
    has_prev = start > lo if last is not None else start > 0
    return start, end, has_next, has_prev


def connection(items: Any, args: dict[str, Any], node: Callable[[Any], Any],
               cursor_of: Callable[[int], str] = offset_cursor,
               position: Callable[[str], int] = offset_position) -> dict[str, Any]:
    """A Relay connection over an indexed sequence (O(page): ``items[start:end]`` only); ``node``
    renders one item.  Default cursors are offsets (``cursor:v2:[i]``, base64)."""
    start, end, has_next, has_prev = window(len(items), args, position)
    page = [node(x) for x in items[start:end]]
    return {
        "nodes": page, "totalCount": len(items),
        "edges": lambda _a: [{"cursor": cursor_of(i), "node": x} for i, x in zip(range(start, end), page, strict=True)],
        "pageInfo": lambda _a: {"hasNextPage": has_next, "hasPreviousPage": has_prev,
                                "startCursor": cursor_of(start) if end > start else None,
                                "endCursor": cursor_of(end - 1) if end > start else None},
    }
