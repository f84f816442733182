"""Quoting source text in what people read: a bound on how much of it any line carries.

A PR title or commit message is written by whoever opens the PR or pushes the commit. Detail
lines, the report, Slack and OSCAL quote at most :data:`QUOTE_LIMIT` characters of it (the
evidence files keep the whole value, as fetched).
"""

from __future__ import annotations

QUOTE_LIMIT = 200
ELLIPSIS = "…"


def clip(value: str, limit: int = QUOTE_LIMIT) -> str:
    """``value`` when it has at most ``limit`` characters, else its first ``limit - 1`` and an ellipsis."""
    return value if len(value) <= limit else value[: limit - 1] + ELLIPSIS
