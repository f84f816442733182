"""The quarterly self-audit: what an auditor's test of a sample would find, before they come.

``self_audit(con, "2026Q4", size, seed, home=...)`` draws the sample of the quarter
(``ccwatch.audit.sampling``; population = changes merged from the quarter's first to its last day,
each with its latest results up to the quarter's end) and writes, under
``CCWATCH_HOME/self-audits/<quarter>_seed<S>_n<N>/`` (never overwritten: ``.1``, ``.2``, ...):

- ``self-audit.html`` (self-contained) and ``self-audit.csv`` (the same numbers):
  for each auditor question (``ccwatch.audit.questions``) how many sampled changes answer yes / no /
  pending / not applicable; the exceptions (failing results of sampled changes) with their
  details and the pending ones; the pass rate of every control over the *whole* quarter
  population (change controls: each change's latest results; repository controls: every
  nightly run of the quarter, one row per repository and night); and a conclusion per control:
  ``effective`` (nothing failed), ``exceptions noted`` (something failed), or ``not tested``.

The default seed is the quarter's number, e.g. ``20264`` for 2026Q4, so a rerun draws the same.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import duckdb

from ccwatch.audit.packet_html import badge, e, html_document
from ccwatch.audit.questions import ANSWERS, QUESTIONS, answer
from ccwatch.audit.sampling import Sample, SamplingError, draw_sample
from ccwatch.common.files import building_folder, publish_folder
from ccwatch.common.paths import self_audits_dir
from ccwatch.controls.catalogue import REPO_CONTROLS, control_name
from ccwatch.controls.families import CONTROLS
from ccwatch.publish.results import pass_rate

_QUARTER = re.compile(r"(\d{4})-?Q([1-4])\Z", re.IGNORECASE)
CSV_COLUMNS = ("section", "key", "name", "yes_or_pass", "no_or_fail", "pending", "not_applicable",
               "pass_rate", "conclusion", "change_id", "detail")


def parse_quarter(quarter: str) -> tuple[str, date, date]:
    """'2026Q4' -> ('2026Q4', 2026-10-01, 2026-12-31); a clear SamplingError otherwise."""
    m = _QUARTER.match(str(quarter).strip())
    if not m:
        raise SamplingError(f"quarter {quarter!r} is not a quarter: write it like 2026Q4 (year, Q, 1-4)")
    year, q = int(m.group(1)), int(m.group(2))
    start = date(year, 3 * q - 2, 1)
    end = date(year + (q == 4), 1 if q == 4 else 3 * q + 1, 1).toordinal() - 1
    return f"{year}Q{q}", start, date.fromordinal(end)


def default_seed(quarter: str) -> int:
    name, _, _ = parse_quarter(quarter)
    return int(name.replace("Q", ""))


@dataclass
class ControlLine:
    control_id: str
    counts: dict[str, int]
    unit: str

    @property
    def rate(self) -> float | None:
        return pass_rate(self.counts)

    @property
    def conclusion(self) -> str:
        c = self.counts
        pend = f"; {c['pending']} pending, not judged yet" if c.get("pending") else ""
        if c.get("fail"):
            return f"exceptions noted: {c['fail']} of {c['fail'] + c.get('pass', 0)} {self.unit} failed{pend}"
        if c.get("pass"):
            return f"effective: all {c['pass']} judged {self.unit} passed{pend}"
        return f"not tested: nothing to judge in the quarter{pend}"


def _control_lines(con, sample: Sample) -> list[ControlLine]:
    p = sample.period
    counts = {c.id: dict.fromkeys(("pass", "fail", "pending", "not_applicable"), 0) for c in CONTROLS}
    for ch in p.changes:
        for cid, (status, _) in ch["results"].items():
            if cid in counts and status in counts[cid]:
                counts[cid][status] += 1
    rows = con.execute(
        "SELECT control_id, status, count(*) FROM control_results WHERE control_id IN (SELECT unnest(?)) "
        "AND CAST(as_of AS DATE) BETWEEN ? AND ? GROUP BY ALL", [list(REPO_CONTROLS), p.date_from, p.through]
    ).fetchall()
    for cid, status, n in rows:
        if status in counts.get(cid, {}):
            counts[cid][status] += n
    return [ControlLine(c.id, counts[c.id], "repository-nights" if c.id in REPO_CONTROLS else "changes")
            for c in CONTROLS]


def _answers(sample: Sample) -> dict[str, dict[str, list[str]]]:
    """question key -> answer -> sampled change ids."""
    out = {q.key: {a: [] for a in ANSWERS} for q in QUESTIONS}
    for ch in sample.changes:
        for q in QUESTIONS:
            out[q.key][answer(q, ch["results"])].append(ch["change_id"])
    return out


def _listed(sample: Sample, status: str) -> list[tuple[str, str, str]]:
    return [(ch["change_id"], cid, d) for ch in sorted(sample.changes, key=lambda c: c["change_id"])
            for cid, (s, d) in ch["results"].items() if s == status]


def _pct(rate: float | None) -> str:
    return "" if rate is None else f"{rate * 100:.1f}%"


def render_csv(name: str, sample: Sample, lines: list[ControlLine]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(CSV_COLUMNS)
    ans = _answers(sample)
    for q in QUESTIONS:
        a = ans[q.key]
        w.writerow(["question", q.key, q.text, len(a["yes"]), len(a["no"]), len(a["pending"]),
                    len(a["not_applicable"]), "", "", "", " ".join(q.controls)])
    for ln in lines:
        c = ln.counts
        w.writerow(["control", ln.control_id, control_name(ln.control_id), c["pass"], c["fail"], c["pending"],
                    c["not_applicable"], _pct(ln.rate), ln.conclusion, "", ln.unit])
    for section, status in (("exception", "fail"), ("pending", "pending")):
        for cid, control_id, detail in _listed(sample, status):
            w.writerow([section, control_id, control_name(control_id), "", "", "", "", "", "", cid, detail])
    for ch in sorted(sample.changes, key=lambda c: c["change_id"]):
        for q in QUESTIONS:
            w.writerow(["answer", q.key, answer(q, ch["results"]), "", "", "", "", "", "", ch["change_id"], ""])
    return buf.getvalue()


def render_html(name: str, sample: Sample, lines: list[ControlLine]) -> str:
    p, ans = sample.period, _answers(sample)
    dates = p.as_of_dates
    head = (f"<h1>Self-audit {e(name)}: CC8.1 change management</h1>"
            f'<table class="facts"><tr><th>Period</th><td>{e(p.date_from)} to {e(p.date_to)} (merged, UTC days)</td></tr>'
            f"<tr><th>Population</th><td>{e(sample.population_size)} changes; SHA-256 {e(p.population_hash)}</td></tr>"
            f"<tr><th>Sample</th><td>{e(sample.note)}</td></tr>"
            f"<tr><th>Results used</th><td>each change's latest run up to {e(p.through)}: {len(dates)} run(s), "
            f"{e(dates[0])} to {e(dates[-1])}</td></tr></table>")
    qrows = "".join(
        f"<tr><td>{e(q.text)}<br><span class=\"muted\">{e(', '.join(q.controls))}</span></td>"
        + "".join(f"<td>{len(ans[q.key][a])}</td>" for a in ANSWERS) + "</tr>" for q in QUESTIONS)
    qtable = ("<h2>The auditor's questions, over the sample</h2><table><tr><th>Question</th><th>Yes</th><th>No</th>"
              f"<th>Pending</th><th>Not applicable</th></tr>{qrows}</table>")

    def listing(title: str, items: list[tuple[str, str, str]], none: str) -> str:
        if not items:
            return f"<h2>{e(title)}</h2><p>{e(none)}</p>"
        rows = "".join(f"<tr><td>{e(c)}</td><td>{e(k)} {e(control_name(k))}</td><td>{e(d)}</td></tr>"
                       for c, k, d in items)
        return (f"<h2>{e(title)} ({len(items)})</h2><table><tr><th>Change</th><th>Control</th><th>Detail</th></tr>"
                f"{rows}</table>")

    crows = "".join(
        f"<tr><td>{e(ln.control_id)}</td><td>{e(control_name(ln.control_id))}</td><td>{ln.counts['pass']}</td>"
        f"<td>{ln.counts['fail']}</td><td>{ln.counts['pending']}</td><td>{ln.counts['not_applicable']}</td>"
        f"<td>{e(_pct(ln.rate) or '—')}</td><td>{badge('fail' if ln.counts['fail'] else 'pass' if ln.counts['pass'] else None, ln.conclusion)}</td></tr>"
        for ln in lines)
    ctable = ("<h2>Every control over the whole quarter population</h2><p class=\"muted\">Pass rate = pass / "
              "(pass + fail). Change controls count each change of the quarter once (its latest results); "
              "repository controls count every repository on every nightly run of the quarter.</p>"
              "<table><tr><th>Control</th><th>Name</th><th>Pass</th><th>Fail</th><th>Pending</th><th>N/A</th>"
              f"<th>Pass rate</th><th>Conclusion</th></tr>{crows}</table>")
    body = (head + qtable + listing("Exceptions in the sample", _listed(sample, "fail"),
                                    "No sampled change failed a control.")
            + listing("Not decided yet in the sample (pending)", _listed(sample, "pending"), "None.") + ctable)
    return html_document(f"ccwatch self-audit {name}", body, "quarterly self-audit")


def self_audit(con: duckdb.DuckDBPyConnection, quarter: str, size: int = 25, seed: int | None = None, *,
               home: Path) -> Path:
    """Write the quarter's self-audit (module doc); returns its folder. Raises SamplingError."""
    name, start, end = parse_quarter(quarter)
    seed = default_seed(name) if seed is None else seed
    sample = draw_sample(con, start, end, size, seed)
    lines = _control_lines(con, sample)
    base = self_audits_dir(home)
    stem = f"{name}_seed{seed}_n{size}"
    with building_folder(base, stem) as tmp:
        (tmp / "self-audit.html").write_text(render_html(name, sample, lines), encoding="utf-8", newline="")
        (tmp / "self-audit.csv").write_text(render_csv(name, sample, lines), encoding="utf-8", newline="")
        target, _ = publish_folder(tmp, base, stem)
    return target
