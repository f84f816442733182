"""The CC8.1 controls: each family module contributes named facts (SQL), the GX rule over them
and the detail text of each row.

A control row's status is decided in three steps (docs/CONTROLS-IMPLEMENTATION.md):

1. its scope column (``ccNN_scope``, computed in the fact SQL from the change kind, the
   change category and the windows of CONTROLS.md) says ``not_applicable``, ``pending`` or
   ``due``;
2. the control's Great Expectations expectations are conditioned on ``ccNN_scope == "due"``;
   a due row that any of them reports as unexpected is ``fail``;
3. every other due row is ``pass``.

Missing evidence is never a scope: a due row whose facts are NULL fails its expectations.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ccwatch.settings import Settings

STATUSES = ("pass", "fail", "pending", "not_applicable")
DUE, PENDING, NOT_APPLICABLE = "due", "pending", "not_applicable"


@dataclass(frozen=True)
class Control:
    id: str
    name: str
    scope: str  # 'change' | 'repo'
    module: str
    scope_column: str
    expectations: Callable[[Settings], list]  # GX expectation objects conditioned on the scope column
    detail: Callable[[dict, str, Settings], str]  # (facts row, status, settings) -> one line

    def status_and_detail(self, row: dict, failed: bool, settings: Settings) -> tuple[str, str]:
        """Status of one facts row given whether GX found it unexpected, and its detail line."""
        scope = row.get(self.scope_column)
        if scope == NOT_APPLICABLE:
            status = "not_applicable"
        elif scope == PENDING:
            status = "pending"
        elif scope == DUE:
            status = "fail" if failed else "pass"
        else:  # a scope we do not know is a bug in the fact SQL: fail closed, say so
            return "fail", f"internal: unknown scope {scope!r} for {self.id}"
        return status, self.detail(row, status, settings)


def due(column: str):
    """The GX row condition of a control: only rows whose scope column is 'due'."""
    from great_expectations.expectations.row_conditions import Column

    return Column(column) == DUE


# --- formatting helpers for detail lines ------------------------------------------------


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
    if missing(x):
        return "unknown time"
    if isinstance(x, str):
        return x
    if hasattr(x, "to_pydatetime"):
        x = x.to_pydatetime()
    if isinstance(x, datetime):
        return x.strftime("%Y-%m-%dT%H:%MZ")
    return str(x)


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
