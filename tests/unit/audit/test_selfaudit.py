"""The quarterly self-audit: question counts over the sample, exceptions, quarter pass rates."""

from __future__ import annotations

import csv
import re
from datetime import date, datetime

import pytest
from ccwatch.audit.sampling import SamplingError
from ccwatch.audit.selfaudit import default_seed, parse_quarter, self_audit
from ccwatch.warehouse import connection

from tests.helpers import sampling_world as sd
from tests.helpers.cli import cli

LAST_RUN = datetime(2026, 11, 10, 2, 0)  # changes merged 11-07..11-09 are still pending on 06/07


def build():
    con = connection.connect(":memory:")
    rows = sd.changes()
    sd.add_run(con, sd.RUN1, rows)
    sd.add_run(con, LAST_RUN, rows)
    return con


@pytest.fixture
def con():
    c = build()
    yield c
    c.close()


def read_csv(folder):
    with (folder / "self-audit.csv").open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.mark.parametrize("text, want", [
    ("2026Q4", ("2026Q4", date(2026, 10, 1), date(2026, 12, 31))),
    ("2026q1", ("2026Q1", date(2026, 1, 1), date(2026, 3, 31))),
    ("2024-Q1", ("2024Q1", date(2024, 1, 1), date(2024, 3, 31))),
    ("2026Q2", ("2026Q2", date(2026, 4, 1), date(2026, 6, 30))),
    ("2026Q3", ("2026Q3", date(2026, 7, 1), date(2026, 9, 30))),
])
def test_quarters(text, want):
    assert parse_quarter(text) == want


@pytest.mark.parametrize("bad", ["2026Q5", "2026Q0", "Q4 2026", "2026", "26Q4", "2026-10", "", "2026Q4x"])
def test_bad_quarter_strings_are_clear_errors(bad):
    with pytest.raises(SamplingError, match="is not a quarter: write it like 2026Q4"):
        parse_quarter(bad)


def test_counts_over_the_whole_quarter_taken_as_sample(con, tmp_path):
    folder = self_audit(con, "2026Q4", 100, 1, home=tmp_path)
    assert folder == tmp_path / "self-audits" / "2026Q4_seed1_n100"
    rows = read_csv(folder)
    q = {r["key"]: r for r in rows if r["section"] == "question"}
    n = 43  # merged 10-01..11-09 one a day, plus the edges 10-01 00:00, 10-31 23:59:59, 11-01 00:00
    counts = lambda r: tuple(int(r[k]) for k in ("yes_or_pass", "no_or_fail", "pending", "not_applicable"))  # noqa: E731
    assert counts(q["review"]) == (n - 1, 1, 0, 0)  # #105 failed CC8.1-03
    assert counts(q["ticket"]) == (n - 3, 0, 3, 0)  # merged 11-07..11-09: not approved yet, within the window
    assert counts(q["deployment"]) == (n - 3, 0, 3, 0)
    assert counts(q["category"]) == (0, 0, 0, n)  # no emergency change
    assert counts(q["tests"]) == (n, 0, 0, 0)
    c = {r["key"]: r for r in rows if r["section"] == "control"}
    assert counts(c["CC8.1-03"]) == (n - 1, 1, 0, 0) and c["CC8.1-03"]["pass_rate"] == "97.7%"
    assert c["CC8.1-03"]["conclusion"] == f"exceptions noted: 1 of {n} changes failed"
    assert c["CC8.1-06"]["conclusion"] == f"effective: all {n - 3} judged changes passed; 3 pending, not judged yet"
    assert c["CC8.1-09"]["conclusion"].startswith("not tested") and c["CC8.1-09"]["pass_rate"] == ""
    # repository controls: every repository on every run of the quarter (2 repos x 2 runs)
    assert counts(c["CC8.1-11"]) == (4, 0, 0, 0) and c["CC8.1-11"]["detail"] == "repository-nights"
    exc = [r for r in rows if r["section"] == "exception"]
    assert [(r["change_id"], r["key"]) for r in exc] == [("acme/web#105", "CC8.1-03")]
    assert exc[0]["detail"] == "no APPROVED review by anyone but carol-dev"
    pend = {(r["change_id"], r["key"]) for r in rows if r["section"] == "pending"}
    assert pend == {(f"{sd.REPOS[i % 2]}#{100 + i}", k) for i in (37, 38, 39) for k in ("CC8.1-06", "CC8.1-07")}
    html = (folder / "self-audit.html").read_text(encoding="utf-8")
    assert "Exceptions in the sample (1)" in html and "no APPROVED review by anyone but carol-dev" in html
    assert f"exceptions noted: 1 of {n} changes failed" in html and "97.7%" in html


def test_a_smaller_sample_counts_only_the_sample_but_rates_the_whole_quarter(con, tmp_path):
    folder = self_audit(con, "2026Q4", 10, 3, home=tmp_path)
    rows = read_csv(folder)
    for r in (r for r in rows if r["section"] == "question"):
        assert sum(int(r[k]) for k in ("yes_or_pass", "no_or_fail", "pending", "not_applicable")) == 10
    answers = [r for r in rows if r["section"] == "answer"]
    assert len({r["change_id"] for r in answers}) == 10
    c = {r["key"]: r for r in rows if r["section"] == "control"}
    assert int(c["CC8.1-03"]["yes_or_pass"]) + int(c["CC8.1-03"]["no_or_fail"]) == 43
    html = (folder / "self-audit.html").read_text(encoding="utf-8")
    assert "10 of 43 changes drawn with seed 3" in html


def test_same_seed_same_report_never_overwritten_and_default_seed(con, tmp_path):
    a = self_audit(con, "2026Q4", 10, None, home=tmp_path)
    b = self_audit(con, "2026q4", 10, None, home=tmp_path)
    assert default_seed("2026Q4") == 20264 and a.name == "2026Q4_seed20264_n10" and b.name == a.name + ".1"
    for name in ("self-audit.html", "self-audit.csv"):
        assert (a / name).read_bytes() == (b / name).read_bytes()
    c = self_audit(con, "2026Q4", 10, 99, home=tmp_path)
    answers = lambda f: {r["change_id"] for r in read_csv(f) if r["section"] == "answer"}  # noqa: E731
    assert answers(c) != answers(a)


def test_html_is_self_contained_and_escaped(tmp_path):
    con = build()
    sd.add_run(con, LAST_RUN, sd.changes() + [sd.change("acme/api#666", datetime(2026, 10, 2, 9),
                                                        title="<script>alert(1)</script>")],
               results=lambda c, a: {k: ("fail", f"<img src=x onerror=alert(1)> {c['title']}") if k == "CC8.1-05"
                                     else v for k, v in sd.statuses_for(c, a).items()})
    html = (self_audit(con, "2026Q4", 100, 1, home=tmp_path) / "self-audit.html").read_text(encoding="utf-8")
    assert "<script" not in html.lower() and "<img" not in html.lower()
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
    assert not re.search(r"<[^>]*\b(?:href|src)\s*=|url\(|@import|<link", html, re.I)
    assert "ccwatch 0.1.0: quarterly self-audit" in html


def test_empty_quarter_is_a_clear_error(con, tmp_path):
    with pytest.raises(SamplingError, match="no change merged from 2025-10-01 to 2025-12-31"):
        self_audit(con, "2025Q4", 10, 1, home=tmp_path)
    assert not (tmp_path / "self-audits").exists() or not any((tmp_path / "self-audits").iterdir())


def test_cli_self_audit(tmp_path):
    home = sd.make_home(tmp_path, build)
    ok = cli("self-audit", "--quarter", "2026Q4", "--size", "5", home=home)
    assert ok.returncode == 0, ok.stderr
    assert f"self-audit: {home / 'self-audits' / '2026Q4_seed20264_n5' / 'self-audit.html'}" in ok.stdout
    for args, words in ((["--quarter", "2026Q7"], "is not a quarter"),
                        (["--quarter", "2024Q1"], "no change merged from 2024-01-01 to 2024-03-31"),
                        (["--quarter", "2026Q4", "--size", "0"], "less than 1")):
        out = cli("self-audit", *args, home=home)
        assert out.returncode == 2 and words in out.stderr and "Traceback" not in out.stderr, out.stderr
