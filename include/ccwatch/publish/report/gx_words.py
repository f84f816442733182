"""Great Expectations rules and their findings in words a compliance reader follows.

A GX 1.x expectation configuration (``type`` + ``kwargs``, with a ``row_condition`` that is a
serialised condition: ``{"type": "comparison", "column": {"name": ...}, "operator": "==",
"parameter": ...}``, ``nullity``, ``and`` / ``or`` of those, or a plain string) becomes a
sentence: ``expect_column_values_to_not_be_null`` on ``ticket_key`` where ``cc01_scope == "due"``
-> "For the changes CC8.1-01 is due for: ticket key is filled in."  Unexpected values are paired
with the ids GX reports next to them (``partial_unexpected_index_list``, keyed by
``unexpected_index_column_names``: change_id), so "null, null" becomes
"acme/payments-api#122: ticket key (empty)".  Plain text out: the caller escapes it.
"""

from __future__ import annotations

import json
import re
from typing import Any

_SCOPE = re.compile(r"cc(\d{2})_scope\Z")
_MICROS = re.compile(r"(\d{2}:\d{2}:\d{2})\.0+\Z")
_OPS = {"==": "is", "!=": "is not", "<": "is below", "<=": "is at most", ">": "is above", ">=": "is at least",
        "IN": "is one of", "NOT_IN": "is none of"}
#: the id columns GX reports next to an unexpected value when none are named
ID_COLUMNS = ("change_id",)


def column_words(name: Any) -> str:
    """``required_checks_missing`` -> 'required checks missing'."""
    return str(name).replace("_", " ").strip()


def value_words(value: Any) -> str:
    """A value as a reader says it: None -> '(empty)', True -> 'yes', 1.0 -> '1', lists joined."""
    if value is None:
        return "(empty)"
    if value is True:
        return "yes"
    if value is False:
        return "no"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, list | tuple | set):
        items = [value_words(v) for v in value]
        return ", ".join(items) if items else "(none)"
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True, default=str)
    text = str(value)
    return _MICROS.sub(r"\1", text)


def _noun(scope: str | None) -> str:
    return "repositories" if scope == "repo" else "changes"


def condition_words(cond: Any, scope: str | None = None) -> str:
    """Which rows a rule applies to, e.g. 'the changes CC8.1-01 is due for'."""
    noun = _noun(scope)
    if cond is None or cond == "":
        return f"every {noun[:-1] if noun == 'changes' else 'repository'}"
    if isinstance(cond, str):
        return f"the {noun} matching {cond}"
    if not isinstance(cond, dict):
        return f"the {noun} matching {value_words(cond)}"
    kind = cond.get("type")
    if kind in ("and", "or"):
        parts = [condition_words(c, scope) for c in cond.get("conditions") or []]
        return f" {kind} ".join(parts) if parts else f"every {noun}"
    col = (cond.get("column") or {}).get("name") if isinstance(cond.get("column"), dict) else cond.get("column")
    if kind == "nullity":
        return f"the {noun} whose {column_words(col)} is {'empty' if cond.get('is_null') else 'filled in'}"
    if kind == "comparison":
        op, param = cond.get("operator"), cond.get("parameter")
        m = _SCOPE.match(str(col or ""))
        if m and op == "==" and param == "due":
            return f"the {noun} CC8.1-{m.group(1)} is due for"
        return f"the {noun} whose {column_words(col)} {_OPS.get(op, str(op))} {value_words(param)}"
    return f"the {noun} matching {json.dumps(cond, sort_keys=True, default=str)}"


def _bound(kw: dict) -> str:
    lo, hi = kw.get("min_value"), kw.get("max_value")
    lo_s, hi_s = kw.get("strict_min"), kw.get("strict_max")
    if lo is not None and hi is not None:
        if lo == hi and not lo_s and not hi_s:
            return f"is {value_words(lo)}"
        return f"is between {value_words(lo)} and {value_words(hi)}"
    if lo is not None:
        return f"is {'above' if lo_s else 'at least'} {value_words(lo)}"
    if hi is not None:
        return f"is {'below' if hi_s else 'at most'} {value_words(hi)}"
    return "is any value"


def rule_words(config: dict) -> str:
    """What the expectation requires of each row it applies to (without the condition)."""
    kind = str(config.get("type") or config.get("expectation_type") or "")
    kw = config.get("kwargs") or {}
    col = column_words(kw.get("column", ""))
    a, b = column_words(kw.get("column_A", "")), column_words(kw.get("column_B", ""))
    if kind == "expect_column_values_to_not_be_null":
        return f"{col} is filled in"
    if kind == "expect_column_values_to_be_null":
        return f"{col} is empty"
    if kind in ("expect_column_values_to_be_in_set", "expect_column_values_to_not_be_in_set"):
        values = list(kw.get("value_set") or [])
        neg = kind == "expect_column_values_to_not_be_in_set"
        if len(values) == 1:
            return f"{col}: {'not ' if neg else ''}{value_words(values[0])}"
        return f"{col} is {'none' if neg else 'one'} of: {value_words(values)}"
    if kind == "expect_column_values_to_be_between":
        return f"{col} {_bound(kw)}"
    if kind == "expect_column_pair_values_a_to_be_greater_than_b":
        text = f"{a} is {'on or after' if kw.get('or_equal') else 'after'} {b}"
        if kw.get("ignore_row_if") in ("either_value_is_missing", "both_values_are_missing"):
            which = "either" if kw["ignore_row_if"] == "either_value_is_missing" else "both"
            text += f" ({which} of the two empty: not judged by this rule)"
        return text
    if kind == "expect_column_pair_values_to_be_equal":
        return f"{a} equals {b}"
    if kind == "expect_column_values_to_be_unique":
        return f"{col} is unique"
    if kind == "expect_column_values_to_match_regex":
        return f"{col} matches the pattern {kw.get('regex')}"
    if kind == "unexpected_rows_expectation":
        return "no row is returned by the rule's query"
    words = kind[len("expect_"):] if kind.startswith("expect_") else kind
    return column_words(words or "unknown rule") + (f" ({col})" if col else "")


def expectation_sentence(config: dict, scope: str | None = None) -> str:
    """'For the changes CC8.1-01 is due for: ticket key is filled in.'"""
    cond = (config.get("kwargs") or {}).get("row_condition")
    return f"For {condition_words(cond, scope)}: {rule_words(config)}."


def rule_columns(config: dict) -> list[str]:
    """The columns a rule reads, in its own order (column, or column_A then column_B)."""
    kw = config.get("kwargs") or {}
    return [kw[k] for k in ("column", "column_A", "column_B") if isinstance(kw.get(k), str)]


def unexpected_by_change(result: dict, config: dict) -> list[tuple[str | None, str]]:
    """(id, the offending values in words) per sampled unexpected row: the change id (or
    repository) GX reports with it, or None when the result carries no ids (then the value with
    its row count when GX gives counts)."""
    res = result.get("result") or {}
    cols = rule_columns(config)
    index = res.get("partial_unexpected_index_list")
    if isinstance(index, list) and index and all(isinstance(x, dict) for x in index):
        ids = [c for c in (res.get("unexpected_index_column_names") or ID_COLUMNS)]
        out = []
        for row in index:
            key = " ".join(str(row[c]) for c in ids if row.get(c) is not None) or None
            named = [c for c in cols if c in row] or [c for c in row if c not in ids]
            out.append((key, "; ".join(f"{column_words(c)}: {value_words(row.get(c))}" for c in named)))
        return out
    rows = (res.get("details") or {}).get("unexpected_rows")
    if isinstance(rows, list) and rows:
        out = []
        for row in rows:
            if isinstance(row, dict):
                key = row.get("change_id")
                out.append((None if key is None else str(key),
                            "; ".join(f"{column_words(k)}: {value_words(v)}" for k, v in row.items() if k != "change_id")))
            else:
                out.append((None, value_words(row)))
        return out
    counts = res.get("partial_unexpected_counts")
    label = column_words(cols[0]) + ": " if len(cols) == 1 else ""
    if isinstance(counts, list) and counts:
        return [(None, f"{label}{value_words(c.get('value'))} ({c.get('count')} row(s))")
                for c in counts if isinstance(c, dict)]
    return [(None, f"{label}{value_words(v)}") for v in res.get("partial_unexpected_list") or []]
