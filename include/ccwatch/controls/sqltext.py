"""SQL building blocks of the controls' detail lines (each family's ``detail_sql``).

Each control's Python ``detail_NN`` function is the reference; its ``dNN`` SQL expression
returns the same text for a ``change_facts`` row and a status, column for column and branch for
branch (``tests/integration/controls/test_detail_sql.py`` compares both over every status of every
control on the demo, hostile and synthetic warehouses and on rows with each fact set to NULL).

Only what SQL reproduces exactly is taken from SQL: the evaluation keeps the SQL text only when
it is printable ASCII (:data:`NORMALIZED`; then Python's whitespace normalisation means
collapsing runs of spaces and trimming) and otherwise, or when the expression is NULL, computes
the row's detail with the Python function.  Python's ``repr`` of a (clipped) title is reproduced for
printable ASCII only (the same condition).  Config values reach the SQL as quoted literals
(``sql_str``).
"""

from __future__ import annotations

from ccwatch.common.text import ELLIPSIS, QUOTE_LIMIT
from ccwatch.controls.text import sql_str

#: the status column of the row the expression is evaluated for
ST = "_st"


def T(col: str, default: str = "") -> str:
    """``text(row[col], default)``."""
    return f"coalesce(CAST({col} AS VARCHAR), {sql_str(default)})"


def TS(col: str) -> str:
    """``ts(row[col])``."""
    return f"coalesce(strftime({col}, '%Y-%m-%dT%H:%MZ'), 'unknown time')"


def SHORT(col: str) -> str:
    return f"coalesce(left({col}, 7), 'unknown commit')"


def PRESENT(col: str) -> str:
    """``bool(text(row[col]))``."""
    return f"(coalesce(CAST({col} AS VARCHAR), '') <> '')"


def TRUE(col: str) -> str:
    """``bool(row[col])`` of a BOOLEAN column."""
    return f"coalesce({col}, false)"


def NUM(col: str) -> str:
    return f"coalesce({col}, 0)"


def CLIP(expr: str) -> str:
    """``common.text.clip(expr)``: at most QUOTE_LIMIT characters of source text in a detail line
    (a clipped value ends with a non-ASCII ellipsis, so its row is recomputed in Python)."""
    return (f"(CASE WHEN length({expr}) > {QUOTE_LIMIT} THEN left({expr}, {QUOTE_LIMIT - 1}) || '{ELLIPSIS}' "
            f"ELSE {expr} END)")


def QUOTED(col: str) -> str:
    """``text.quoted(row[col])`` (``repr`` of the clipped text) for printable ASCII text (anything
    else is recomputed in Python)."""
    t = CLIP(f"coalesce({col}, '')")
    esc = f"replace({t}, '\\', '\\\\')"
    return (f"(CASE WHEN contains({t}, '''') AND NOT contains({t}, '\"') THEN '\"' || {esc} || '\"' "
            f"ELSE '''' || replace({esc}, '''', '\\''') || '''' END)")


def NA() -> str:
    """``direct_push_na(row)``."""
    return (f"('direct push ' || {SHORT('sha')} || ' by ' || {T('merged_by', 'unknown pusher')} "
            "|| ': no pull request or ticket to evaluate (see CC8.1-10)')")


def LIT(x) -> str:
    return sql_str(str(x))


def CASE(*whens: tuple[str, str], default: str) -> str:
    return "(CASE " + " ".join(f"WHEN {c} THEN {v}" for c, v in whens) + f" ELSE {default} END)"


def NO_TICKET() -> str:
    return f"(NOT {PRESENT('ticket_key')} OR NOT {TRUE('ticket_exists')})"


def DEPLOYED() -> str:
    return (f"('production deployment ' || {T('deployment_id')} || ' to ' || {T('deploy_environment')} || ' at ' "
            f"|| {TS('deployed_at')} || ' by ' || {T('deployer', 'unknown')})")


def PLURAL(n: str, word: str) -> str:
    return f"(CAST({n} AS VARCHAR) || ' {word}' || CASE WHEN {n} = 1 THEN '' ELSE 's' END)"


def NA_OR(other: str) -> str:
    return f"(CASE WHEN change_kind IS DISTINCT FROM 'pr' THEN {NA()} ELSE {other} END)"


#: the detail of a row from its raw SQL text (column ``_raw``): NULL where only Python reproduces it
#: exactly (the raw text is NULL or not printable ASCII, so Python's str.split may see other
#: whitespace); runs of spaces are collapsed and the ends trimmed only where there are any
NORMALIZED = ("CASE WHEN _raw IS NULL OR strlen(_raw) <> length(_raw) OR regexp_matches(_raw, '[\\x00-\\x1f\\x7f]') "
              "THEN NULL WHEN contains(_raw, '  ') OR starts_with(_raw, ' ') OR ends_with(_raw, ' ') "
              "THEN trim(regexp_replace(_raw, '  +', ' ', 'g')) ELSE _raw END")
