"""The ticket key each PR title links (CONTROLS.md, "Ticket"), for the whole window at once.

``title_ticket_key`` (``common/changes.py``) is the definition: the first match of the configured
``jira.ticket_key_pattern`` (Python ``re`` syntax) whose project is in scope, and the
out-of-scope keys named before it.  Run in Python over every title it costs seconds at 1M
changes, so ``build_title_keys`` runs the same search in DuckDB where the result is provably the
same, and the Python function everywhere else:

* the pattern is rewritten for RE2 (DuckDB's regular expressions) from Python's own parse of it,
  and only when every construct in it means the same in both engines on ASCII text: literals,
  character classes and ranges, ``\\d \\D \\w \\W \\s`` (spelled out as ASCII sets), ``.``,
  alternation, groups, greedy and lazy repetition, ``\\b`` and ``\\B``; no flags, no anchors,
  lookarounds, back references, atomic groups, and no pattern that can match the empty string
  (``re2_pattern`` returns None for anything else);
* only titles that are printable-or-control ASCII without NUL go through RE2 (Python's ``\\w``,
  ``\\d`` and ``\\b`` are Unicode-aware, RE2's are ASCII: on ASCII text they agree); every other
  title, and every title when the pattern has no RE2 form, goes through ``title_ticket_key``.

``build_title_keys_reference`` is the former all-Python path, kept for the tests that prove
the two give the same rows.
"""

from __future__ import annotations

import re
import warnings
from typing import Any

import duckdb
import pandas as pd

from ccwatch.common.changes import title_ticket_key

with warnings.catch_warnings():  # Python's own regex parser, public under these (deprecated) names
    warnings.simplefilter("ignore", DeprecationWarning)
    import sre_constants as _sre_c
    import sre_parse as _sre_p

_RE2_MAX_REPEAT = 1000  # RE2 refuses larger counted repetitions
# Python's Unicode \s on ASCII text: str.isspace() (includes \x1c-\x1f, which RE2's \s does not)
_SPACE = r"\x{09}-\x{0d}\x{1c}-\x{20}"
_CATEGORY = {
    _sre_c.CATEGORY_DIGIT: r"0-9",
    _sre_c.CATEGORY_WORD: r"0-9A-Za-z_",
    _sre_c.CATEGORY_SPACE: _SPACE,
}
_NOT_CATEGORY = {  # a negated category, only as the whole class
    _sre_c.CATEGORY_NOT_DIGIT: r"0-9",
    _sre_c.CATEGORY_NOT_WORD: r"0-9A-Za-z_",
    _sre_c.CATEGORY_NOT_SPACE: _SPACE,
}
# ASCII text RE2 may see: 0x01-0x7f (NUL excluded: DuckDB and RE2 treat it differently from Python)
ASCII_SQL = "regexp_full_match({col}, '[\\x{{01}}-\\x{{7f}}]*')"


class _NoRe2(Exception):
    pass


def _char(c: int) -> str:
    if c >= 0x80 or c == 0:
        raise _NoRe2(f"character {c:#x}")
    return chr(c) if chr(c).isalnum() and c < 0x80 else f"\\x{{{c:02x}}}"


def _class(items: list) -> str:
    neg = bool(items) and items[0][0] is _sre_c.NEGATE
    items = items[1:] if neg else items
    if len(items) == 1 and items[0][0] is _sre_c.CATEGORY and items[0][1] in _NOT_CATEGORY:
        return ("[" if neg else "[^") + _NOT_CATEGORY[items[0][1]] + "]"
    parts = []
    for op, av in items:
        if op is _sre_c.LITERAL:
            parts.append(_char(av))
        elif op is _sre_c.RANGE:
            parts.append(f"{_char(av[0])}-{_char(av[1])}")
        elif op is _sre_c.CATEGORY and av in _CATEGORY:
            parts.append(_CATEGORY[av])
        else:
            raise _NoRe2(f"class item {op} {av}")
    if not parts:
        raise _NoRe2("empty class")
    return ("[^" if neg else "[") + "".join(parts) + "]"


def _seq(sub: Any, in_repeat: bool = False) -> str:
    return "".join(_node(op, av, in_repeat) for op, av in sub)


def _node(op: Any, av: Any, in_repeat: bool) -> str:  # noqa: PLR0911 - one branch per construct
    if op is _sre_c.LITERAL:
        return _char(av)
    if op is _sre_c.NOT_LITERAL:
        return f"[^{_char(av)}]"
    if op is _sre_c.ANY:
        return "."  # no DOTALL (flags refused): every character but \n, in both engines
    if op is _sre_c.IN:
        return _class(av)
    if op is _sre_c.BRANCH:
        return "(?:" + "|".join(_seq(alt, in_repeat) for alt in av[1]) + ")"
    if op is _sre_c.SUBPATTERN:
        group, add_flags, del_flags, sub = av
        if add_flags or del_flags:
            raise _NoRe2("inline flags")
        if group is not None and in_repeat:  # which iteration a group keeps: not proven the same
            raise _NoRe2("capturing group inside a repetition")
        return ("(" if group is not None else "(?:") + _seq(sub, in_repeat) + ")"
    if op in (_sre_c.MAX_REPEAT, _sre_c.MIN_REPEAT):
        lo, hi, sub = av
        unbounded = hi == _sre_c.MAXREPEAT
        if lo > _RE2_MAX_REPEAT or (not unbounded and hi > _RE2_MAX_REPEAT):
            raise _NoRe2("repetition count")
        if sub.getwidth()[0] == 0:  # repeating what can match empty: the engines' rules differ
            raise _NoRe2("repetition of a possibly empty pattern")
        rng = f"{{{lo},}}" if unbounded else f"{{{lo},{hi}}}"
        return "(?:" + _seq(sub, True) + ")" + rng + ("?" if op is _sre_c.MIN_REPEAT else "")
    if op is _sre_c.AT and av is _sre_c.AT_BOUNDARY:
        return r"\b"
    if op is _sre_c.AT and av is _sre_c.AT_NON_BOUNDARY:
        return r"\B"
    raise _NoRe2(f"{op} {av}")


def re2_pattern(pattern: re.Pattern) -> str | None:
    """The RE2 spelling of ``pattern`` that finds exactly the same matches (and groups) on ASCII
    text without NUL, or None when the pattern uses anything outside the proven subset."""
    if not isinstance(pattern.pattern, str) or pattern.flags & ~re.UNICODE:
        return None
    try:
        parsed = _sre_p.parse(pattern.pattern, pattern.flags)
        if parsed.getwidth()[0] == 0:  # an empty match: finditer's empty-match rules differ
            return None
        return _seq(parsed)
    except (_NoRe2, re.error, TypeError, ValueError):
        return None


def _key_sql(re2: str, group: int, projects: frozenset[str]) -> str:
    """SQL of (ticket_key, title_other_keys) for an ASCII ``title``: title_ticket_key in lists."""
    prj = "[" + ", ".join(_lit(p) for p in sorted(projects)) + "]::VARCHAR[]"
    proj = "CASE WHEN contains(k, '-') THEN k[1:length(k) - strpos(reverse(k), '-')] ELSE k END"
    keys = f"list_filter(regexp_extract_all(title, {_lit(re2)}, {group}), lambda k: k <> '')"
    return f"""
SELECT repo, number, CASE WHEN i > 0 THEN ks[i] END AS ticket_key,
       coalesce(array_to_string(CASE WHEN i > 0 THEN ks[1:i - 1] ELSE ks END, ', '), '') AS title_other_keys
FROM (SELECT repo, number, ks,
             coalesce(list_position(list_transform(ks, lambda k: list_contains({prj}, {proj})), true), 0) AS i
      FROM (SELECT repo, number, {keys} AS ks FROM _pr WHERE {ASCII_SQL.format(col='title')}))"""


def _lit(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


def _python_keys(rows: list[tuple], pattern: re.Pattern, projects: frozenset[str]) -> pd.DataFrame:
    return pd.DataFrame(
        [(r, n, *title_ticket_key(title, pattern, projects)) for r, n, title in rows],
        columns=["repo", "number", "ticket_key", "title_other_keys"],
    ).astype({"repo": "object", "number": "int64", "ticket_key": "object", "title_other_keys": "object"})


def _store(con: duckdb.DuckDBPyConnection, keys: pd.DataFrame, create: bool) -> None:
    con.register("_keys_df", keys)
    try:
        if create:
            con.execute("CREATE OR REPLACE TEMP TABLE _keys AS SELECT * FROM _keys_df")
        elif len(keys):
            con.execute("INSERT INTO _keys SELECT * FROM _keys_df")
    finally:
        con.unregister("_keys_df")


def build_title_keys_reference(con: duckdb.DuckDBPyConnection, pattern_text: str, project_keys) -> None:
    """``_keys`` (repo, number, ticket_key, title_other_keys) of every PR of ``_pr``, all in Python."""
    titles = con.execute("SELECT repo, number, title FROM _pr ORDER BY repo, number").fetchall()
    _store(con, _python_keys(titles, re.compile(pattern_text), frozenset(project_keys)), create=True)


def build_title_keys(con: duckdb.DuckDBPyConnection, pattern_text: str, project_keys) -> str:
    """``_keys`` of every PR of ``_pr``: ASCII titles in DuckDB when the pattern has an RE2 form,
    the rest in Python; returns which path ran (``re2``, ``re2+python`` or ``python``)."""
    pattern, projects = re.compile(pattern_text), frozenset(project_keys)
    re2 = re2_pattern(pattern)
    if re2 is None:
        build_title_keys_reference(con, pattern_text, project_keys)
        return "python"
    con.execute("CREATE OR REPLACE TEMP TABLE _keys (repo VARCHAR, number BIGINT, ticket_key VARCHAR, "
                "title_other_keys VARCHAR)")
    con.execute(f"INSERT INTO _keys {_key_sql(re2, 1 if pattern.groups else 0, projects)}")
    rest = con.execute(f"SELECT repo, number, title FROM _pr WHERE title IS NULL "
                       f"OR NOT {ASCII_SQL.format(col='title')} ORDER BY repo, number").fetchall()
    _store(con, _python_keys(rest, pattern, projects), create=False)
    return "re2+python" if rest else "re2"
