"""warehouse/title_keys.py: the RE2 path gives exactly the rows of title_ticket_key (the Python
reference), for the patterns it accepts; everything else falls back to the reference."""

from __future__ import annotations

import random
import re

import duckdb
import pytest
from ccwatch.common.changes import title_ticket_key
from ccwatch.warehouse.title_keys import build_title_keys, build_title_keys_reference, re2_pattern

DEFAULT = r"\b([A-Z][A-Z0-9]+-\d+)\b"
PROJECTS = ("PAY", "OPS", "A-B", "X_1")

# every edge title_ticket_key handles, and where Python re and RE2 could part
EDGES = [
    None, "", "no key here", "FEAT: add login [PAY-123]", "SHA-256 pinning [PAY-7]", "fix [FOO-9]",
    "PAY-1 then PAY-2", "FOO-1 BAR-2 PAY-3 OPS-4 BAZ-5", "FOO-1 BAR-2", "[PAY-1][OPS-2]", "(PAY-12)", "PAY-1PAY-2",
    "PAY-1-PAY-2", "PAY-1_PAY-2", "_PAY-1", "PAY-1_", "pay-1 PAY-2", "A-B-3", "A-B-3 X_1-4", "X_1-9",
    "PAY-12345678901234567890", "PAY-", "-PAY-1", "PAY--1", "PAY-1\nOPS-2", "PAY-1\tFOO-2",
    "éPAY-1", "PAY-1é", "Ünïcödé [PAY-9]", "PAY-١٢", "PAY-12٣", "FOO-1 ﬁ PAY-2", "日本語 PAY-3 OPS-4",
    "emoji 🚀 [OPS-1]", "nul\x00PAY-1", "PAY-1\x00", "\x1cPAY-1\x1d", "PAY-1\x0bOPS-2", "a'b [PAY-1] ''",
    "PAY-1 PAY-1", "ZPAY-1", "P4Y-1 PAY-2", "OPS-0 [PAY-0]", "   PAY-7   ", "\\PAY-1\\", "PAY-1%", "%PAY-1",
]

PATTERNS = [
    DEFAULT,
    r"\b([A-Z](?:-?[A-Z])*-\d+)\b",  # keys with dashes in the project (ticket_project: before the last dash)
    r"[A-Z]+-\d+",  # no group: the whole match is the key
    r"\b([A-Z][A-Z0-9_]*-\d+)\b",
    r"([A-Z]+?-\d+)",  # lazy
    r"\[([A-Z]+-\d+)\]",  # brackets only
    r"(?:PAY|OPS|FOO|BAR)-\d+",  # alternation
    r"\s([A-Z]+-\d+)",  # \s: Python's includes \x1c-\x1f, RE2's does not
    r"\B([A-Z]+-\d+)",
    r"([A-Z]+-\d{1,3})(?:\D|\b)",
    r"([A-Z]+-[^\s\]]+)",
    r"(\w+-\w+)",
    r".([A-Z]+-\d+)",
    r"[^\S]([A-Z]+-\d+)",  # a negated negated class
]

# outside the proven subset: re2_pattern refuses them, build_title_keys runs the reference
REFUSED = [
    r"(?i)\b([a-z]+-\d+)\b", r"^([A-Z]+-\d+)", r"([A-Z]+-\d+)$", r"(?=PAY)([A-Z]+-\d+)", r"(?<=\[)([A-Z]+-\d+)",
    r"([A-Z])\1-\d+", r"(?>[A-Z]+)-\d+", r"[A-Z]++-\d+", r"([A-Z]*-?\d*)", r"([A-Z])+-\d+", r"(?:[A-Z]*)+-\d+",
    r"([A-Z]+-\d+)\Z", r"\A([A-Z]+-\d+)", r"[é]-\d+", r"PAY-\d{1001}", r"(?s).([A-Z]+-\d+)"
]


def _pr(titles) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute("CREATE TEMP TABLE _pr (repo VARCHAR, number INTEGER, title VARCHAR)")
    con.executemany("INSERT INTO _pr VALUES (?, ?, ?)", [("acme/api", i, t) for i, t in enumerate(titles)])
    return con


def _rows(con, build, pattern):
    out = build(con, pattern, PROJECTS)
    rows = con.execute("SELECT repo, number, ticket_key, title_other_keys FROM _keys ORDER BY ALL").fetchall()
    types = con.execute("SELECT column_name, column_type FROM (DESCRIBE _keys)").fetchall()
    return out, rows, types


def _python(titles, pattern):
    p = re.compile(pattern)
    return sorted(("acme/api", i, *title_ticket_key(t, p, frozenset(PROJECTS))) for i, t in enumerate(titles))


@pytest.mark.parametrize("pattern", PATTERNS)
def test_re2_path_gives_the_reference_rows_on_every_edge(pattern):
    assert re2_pattern(re.compile(pattern)) is not None
    con = _pr(EDGES)
    path, fast, _ = _rows(con, build_title_keys, pattern)
    assert path == "re2+python"  # the non-ASCII and NUL titles went through Python
    assert fast == _python(EDGES, pattern)


@pytest.mark.parametrize("pattern", PATTERNS)
def test_re2_path_gives_the_reference_rows_on_random_titles(pattern):
    rnd = random.Random(pattern)
    alphabet = list("PAYOSFXB_-0123456789 [](),.:#/\\'\t\n\x0b\x1c\x1f") + ["é", "١", "日", "\x00", "Z", "a", "y"]
    titles = ["".join(rnd.choice(alphabet) for _ in range(rnd.randint(0, 30))) for _ in range(1500)]
    titles += [f"{rnd.choice(['PAY', 'OPS', 'FOO', 'A-B', 'X_1'])}-{rnd.randint(0, 99)}"
               f"{rnd.choice([' ', '-', '_', '', ']', 'é'])}{rnd.choice(['PAY', 'OPS', 'ZZ'])}-{rnd.randint(0, 9)}"
               for _ in range(500)]
    con = _pr(titles)
    assert _rows(con, build_title_keys, pattern)[1] == _python(titles, pattern)


@pytest.mark.parametrize("pattern", REFUSED)
def test_patterns_outside_the_subset_run_the_reference(pattern):
    assert re2_pattern(re.compile(pattern)) is None
    con = _pr(EDGES)
    path, rows, _ = _rows(con, build_title_keys, pattern)
    assert path == "python" and rows == _python(EDGES, pattern)


def test_ascii_titles_never_leave_duckdb_and_the_table_is_the_references():
    titles = ["FEAT: change 1 [PAY-1]", "SHA-256 pinning [PAY-7]", "fix [FOO-9]", "", None]
    fast_path, fast, fast_types = _rows(_pr(titles), build_title_keys, DEFAULT)
    ref_path, ref, ref_types = _rows(_pr(titles), build_title_keys_reference, DEFAULT)
    assert (fast_path, ref_path) == ("re2+python", None)  # the NULL title: Python (None, "")
    assert fast == ref == _python(titles, DEFAULT) and fast_types == ref_types
    assert _rows(_pr(titles[:4]), build_title_keys, DEFAULT)[0] == "re2"


def test_re2_spelling_of_the_default_pattern():
    assert re2_pattern(re.compile(DEFAULT)) == r"\b([A-Z](?:[A-Z0-9]){1,}\x{2d}(?:[0-9]){1,})\b"
