"""The status a change gets from its control's scope and the rows GX found unexpected
(``gx_validate._statuses``), checked against the rule written out row by row."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from ccwatch.controls import gx_validate as validation
from ccwatch.controls.base import DUE, NOT_APPLICABLE, PENDING
from ccwatch.controls.catalogue import STATUSES
from ccwatch.controls.families import CONTROLS

CONTROL = next(c for c in CONTROLS if c.scope == "change")


def _by_rule(scope, failed) -> list[str]:
    """The rule, one row at a time: not in scope -> not_applicable, waiting -> pending, due ->
    fail when any expectation found the row unexpected else pass; any other scope (a NULL, a
    value the fact SQL should never produce) -> the unknown-scope marker, written as a fail."""
    out = []
    for s, f in zip(scope, failed, strict=True):
        if isinstance(s, str) and s == NOT_APPLICABLE:
            out.append("not_applicable")
        elif isinstance(s, str) and s == PENDING:
            out.append("pending")
        elif isinstance(s, str) and s == DUE:
            out.append("fail" if f else "pass")
        else:
            out.append(validation.UNKNOWN_SCOPE)
    return out


SCOPES = {
    "every scope, as text": [DUE, DUE, PENDING, NOT_APPLICABLE, DUE, PENDING],
    "a NULL and a scope the SQL never produces": [DUE, None, "Due", NOT_APPLICABLE, "", DUE],
    "only not applicable": [NOT_APPLICABLE] * 6,
    "all NULL": [None] * 6,
}


@pytest.mark.parametrize("scope", SCOPES.values(), ids=SCOPES.keys())
@pytest.mark.parametrize("categorical", [True, False], ids=["categorical", "object"])
def test_statuses_follow_the_rule_row_by_row(scope, categorical):
    failed = np.array([True, False, True, True, False, False])
    col = pd.Series(scope, dtype="category" if categorical else object)
    frame = pd.DataFrame({"change_id": [f"acme/r#{i}" for i in range(6)], CONTROL.scope_column: col})
    got = validation._statuses(frame, CONTROL, failed)
    assert list(got) == _by_rule(scope, failed)
    want = _by_rule(scope, failed)
    # as pandas would make the categorical of those values: the present statuses, sorted
    assert list(pd.Categorical(got).categories) == sorted(set(want))
    for status in (*STATUSES, validation.UNKNOWN_SCOPE):
        assert np.flatnonzero(got == status).tolist() == [i for i, s in enumerate(want) if s == status]
