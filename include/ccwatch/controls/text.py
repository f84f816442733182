"""Formatting helpers of the controls' detail lines (the Python reference of every line)."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

from ccwatch.common.text import clip
from ccwatch.common.times import minute_z

_PRESENT_TYPES = (str, int, bool, datetime)


def missing(x: Any) -> bool:
    if x is None:
        return True
    if type(x) in _PRESENT_TYPES:  # the common case (native rows from DuckDB): never missing
        return False
    if isinstance(x, float) and math.isnan(x):
        return True
    try:
        import pandas as pd

        return bool(pd.isna(x)) if not isinstance(x, (list, tuple, dict)) else False
    except (TypeError, ValueError):
        return False


def ts(x: Any) -> str:
    """2026-11-20T10:02Z, or 'unknown time'."""
    return "unknown time" if missing(x) else minute_z(x)


def short(sha: Any) -> str:
    return "unknown commit" if missing(sha) else str(sha)[:7]


def text(x: Any, default: str = "") -> str:
    if missing(x):
        return default
    if isinstance(x, float) and x.is_integer():
        return str(int(x))
    return str(x)


def num(x: Any) -> int:
    return 0 if missing(x) else int(x)


def sql_str(s: str) -> str:
    """A SQL string literal (config values embedded in fact SQL)."""
    return "'" + str(s).replace("'", "''") + "'"


def plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def direct_push_na(row: dict) -> str:
    return (
        f"direct push {short(row.get('sha'))} by {text(row.get('merged_by'), 'unknown pusher')}: "
        "no pull request or ticket to evaluate (see CC8.1-10)"
    )


def quoted(x: Any) -> str:
    """Source text (a PR title, a commit's first line) as a detail line quotes it: clipped, then repr."""
    return repr(clip(text(x)))
