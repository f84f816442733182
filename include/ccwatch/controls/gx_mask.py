"""Which rows a Great Expectations expectation finds unexpected, derived vectorised (pandas)
from the expectation's own configuration (``to_json_dict()["expectation_config"]``).

``ccwatch.controls.gx_validate`` runs GX in SUMMARY format (counts and a sample) and uses this mask for
the per-row statuses, after checking that it agrees with GX's counts.  Only the expectation
types and options the CC8.1 suites use are derived; anything else raises ``DeriveError`` so a
new rule can never be silently judged by a derivation that does not exist.  Semantics follow
GX's pandas engine: the row condition selects the rows; map expectations other than
not-null ignore missing values; the pair expectation ignores a row when either value is missing.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


class DeriveError(ValueError):
    """The expectation cannot be derived (unknown type, option or row condition)."""


_COMMON = {"column", "row_condition", "condition_parser", "batch_id", "result_format", "catch_exceptions",
           "include_config", "meta", "rendered_content", "description", "mostly", "windows"}


def _condition(frame: pd.DataFrame, cond) -> np.ndarray:
    """The rows a GX 1.x ``Column(name) == value`` row condition selects (the only form used)."""
    if cond is None:
        return np.ones(len(frame), dtype=bool)
    if isinstance(cond, dict) and cond.get("operator") == "==" and set(cond) == {"type", "column", "operator", "parameter"} \
            and isinstance(cond.get("column"), dict) and "name" in cond["column"]:
        col = frame[cond["column"]["name"]]
        return (col.notna() & (col == cond["parameter"])).to_numpy(dtype=bool)
    raise DeriveError(f"row condition {cond!r} has no derivation")


def _present(s: pd.Series) -> np.ndarray:
    return s.notna().to_numpy(dtype=bool)


def unexpected_mask(frame: pd.DataFrame, config: dict) -> np.ndarray:
    """Boolean mask (aligned with ``frame``) of the rows the expectation reports as unexpected."""
    kind = config.get("type")
    kw = dict(config.get("kwargs") or {})
    if kw.get("mostly") not in (None, 1, 1.0):
        raise DeriveError(f"mostly={kw['mostly']!r} has no derivation")
    rows = _condition(frame, kw.get("row_condition"))
    if kind == "expect_column_values_to_not_be_null":
        _only(kw, kind, set())
        return rows & ~_present(frame[kw["column"]])
    if kind == "expect_column_values_to_be_in_set":
        _only(kw, kind, {"value_set"})
        col = frame[kw["column"]]
        inside = col.isin(list(kw["value_set"])).to_numpy(dtype=bool)
        return rows & _present(col) & ~inside
    if kind == "expect_column_values_to_be_between":
        _only(kw, kind, {"min_value", "max_value", "strict_min", "strict_max"})
        col = frame[kw["column"]]
        ok = _present(col)
        vals = col.to_numpy(dtype=float, na_value=np.nan)
        bad = np.zeros(len(frame), dtype=bool)
        with np.errstate(invalid="ignore"):
            if kw.get("min_value") is not None:
                bad |= (vals <= kw["min_value"]) if kw.get("strict_min") else (vals < kw["min_value"])
            if kw.get("max_value") is not None:
                bad |= (vals >= kw["max_value"]) if kw.get("strict_max") else (vals > kw["max_value"])
        return rows & ok & bad
    if kind == "expect_column_pair_values_a_to_be_greater_than_b":
        _only(kw, kind, {"column_A", "column_B", "or_equal", "ignore_row_if"}, skip_column=True)
        if kw.get("ignore_row_if") != "either_value_is_missing":
            raise DeriveError(f"ignore_row_if={kw.get('ignore_row_if')!r} has no derivation")
        a, b = frame[kw["column_A"]], frame[kw["column_B"]]
        both = _present(a) & _present(b)
        sel = rows & both
        greater = np.zeros(len(frame), dtype=bool)
        aa, bb = a[sel], b[sel]
        greater[sel] = ((aa >= bb) if kw.get("or_equal") else (aa > bb)).to_numpy(dtype=bool)
        return sel & ~greater
    raise DeriveError(f"expectation type {kind!r} has no derivation")


def _only(kw: dict, kind: str, allowed: set[str], skip_column: bool = False) -> None:
    extra = set(kw) - _COMMON - allowed
    if not skip_column and "column" not in kw:
        raise DeriveError(f"{kind} without a column")
    if extra:
        raise DeriveError(f"{kind} option(s) {sorted(extra)} have no derivation")
