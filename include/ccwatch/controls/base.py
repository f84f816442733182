"""What a control is, and how a row's status is decided (docs/CONTROLS-IMPLEMENTATION.md).

A control row's status is decided in three steps:

1. its scope column (``ccNN_scope``, computed in the fact SQL from the change kind, the
   change category and the windows of CONTROLS.md) says ``not_applicable``, ``pending`` or
   ``due``;
2. the control's Great Expectations expectations are conditioned on ``ccNN_scope == "due"``;
   a due row that any of them reports as unexpected is ``fail``;
3. every other due row is ``pass``.

Missing evidence is never a scope: a due row whose facts are NULL fails its expectations.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ccwatch.controls.catalogue import control_entry
from ccwatch.settings import Settings

DUE, PENDING, NOT_APPLICABLE = "due", "pending", "not_applicable"


@dataclass(frozen=True)
class Control:
    id: str
    name: str
    scope: str  # 'change' | 'repo'
    module: str
    scope_column: str
    expectations: Callable[[Settings], list]  # GX expectation objects conditioned on the scope column
    detail: Callable[[dict, str, Settings], str]  # (facts row, status, settings) -> one line (the reference)
    # the same line as a DuckDB expression over change_facts (status in column ``_st``), or None
    detail_sql: Callable[[Settings], str] | None = None

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


def control(control_id: str, module: str, scope_column: str, expectations, detail, detail_sql=None) -> Control:
    """A control of the catalogue (its name and scope come from ``catalogue.CATALOGUE``)."""
    entry = control_entry(control_id)
    return Control(control_id, entry.name, entry.scope, module, scope_column, expectations, detail, detail_sql)


def due(column: str):
    """The GX row condition of a control: only rows whose scope column is 'due'."""
    from great_expectations.expectations.row_conditions import Column

    return Column(column) == DUE
