"""Time and peak memory of the evaluation phases for N synthetic changes.

Usage:
    .venv/bin/python benchmarks/bench_evaluation.py --changes 10000 100000 1000000 [--runs 3] [--archive]
    .venv/bin/python benchmarks/bench_evaluation.py 100000            # one size, one run
    .venv/bin/python benchmarks/bench_evaluation.py 100000 --report-history 30   # the report over 30 run dates

Data is generated in SQL straight into the normalised tables (10 repositories, one review,
two check runs, a ticket with approval and Done transitions per PR; every 5th merge deployed
to staging then production; 1% direct pushes, ~1% emergencies, ~2% failing checks).  Phases:
generate, build_facts, evaluate (GX suites + derived statuses + detail lines + control_results
write), report (render_report), and with ``--archive`` the evidence folder and archive
(write_evidence: one folder per change and one OSCAL observation per control result; about
9 ms per change on this machine, so keep N at 10k-20k for it; the synthetic data has no raw
payloads, so the change folders hold only change.json and deployments.json).  With
``--report-history N`` the report is rendered over N run dates: before it, N-1 earlier dates are
added to control_results (copies of the evaluated date, one day apart, with a deterministic 2% of
each date's rows flipped between pass and fail, so the day-over-day change, the failure streaks
and the charts have work; phase ``history``, not counted in the total).  Each size runs in
its own child process (so its peak RSS is its own); the median of ``--runs`` runs is printed as
a Markdown row, plus the per-control summary.  ``run_once(n, home)`` is the smoke entry point
the tests use (correctness only, no timing assertions).
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
for p in (str(ROOT / "include"), str(ROOT)):  # ROOT: the tests package (tests.helpers)
    if p not in sys.path:
        sys.path.insert(0, p)

REPOS = 10
AS_OF = datetime(2026, 11, 25, tzinfo=UTC)

# the changes of temp table g (i, repo, n, merge, head, t) in the normalised tables; bench_evidence.py
# generates its window in batches with the same rows
CHANGE_ROWS = """INSERT INTO pull_requests SELECT repo, n, 'FEAT: change ' || i || ' [PAY-' || i || ']', 'dev' || (i % 50), 'User',
    CASE WHEN i % 97 = 0 THEN ['emergency'] ELSE [] END, 'main', head, merge, t, 'rev' || (i % 7),
    'https://github.com/' || repo || '/pull/' || n FROM g WHERE i % 100 <> 99;
INSERT INTO commits SELECT repo, 'main', merge, n, NULL, 'dev' || (i % 50), 'web-flow', t, 'msg',
    CASE WHEN i % 100 = 99 THEN [] ELSE [n] END, '' FROM g;
INSERT INTO reviews SELECT repo, n, i, 'rev' || ((i + 1) % 7), 'User', 'APPROVED', head, t - INTERVAL 1 HOUR FROM g;
INSERT INTO checks SELECT repo, head, 'check_run', i * 2 + k, CASE k WHEN 0 THEN 'test' ELSE 'build' END,
    'completed', CASE WHEN i % 53 = 0 AND k = 0 THEN 'failure' ELSE 'success' END,
    t - INTERVAL 3 HOUR, t - INTERVAL 2 HOUR, '', 15368, 'github-actions', NULL FROM g, range(2) k(k);
INSERT INTO tickets SELECT 'PAY-' || i, 'PAY', true, 's', 'Story', 'Done', 'done', 'Medium', [], 'dev@x', t - INTERVAL 10 DAY,
    t, 'why', 'low', 'tests', NULL, '{{"Rollback Plan": "revert"}}', '' FROM g;
INSERT INTO ticket_transitions SELECT 'PAY-' || i, 'a' || i, 'alice@acme.example', t - INTERVAL 2 HOUR, 'Review',
    'Approved', 'indeterminate' FROM g;
INSERT INTO ticket_transitions SELECT 'PAY-' || i, 'd' || i, 'dev@x', t + INTERVAL 3 DAY, 'Approved', 'Done', 'done' FROM g;
INSERT INTO deployments SELECT repo, i * 2 + k, merge, 'main', CASE k WHEN 0 THEN 'staging' ELSE 'production' END,
    'github-actions[bot]', 'Bot', t + to_minutes(30 + 30 * k) FROM g, range(2) k(k) WHERE n % 5 = 4;
INSERT INTO deployment_statuses SELECT d.repo, d.deployment_id, d.deployment_id, 'success', d.creator_login,
    d.created_at + INTERVAL 5 MINUTE FROM deployments d JOIN g ON d.sha = g.merge;
"""
GEN = """
CREATE TEMP TABLE g AS SELECT i, 'acme/r' || (i % {repos}) AS repo, (i // {repos})::INTEGER AS n,
    md5('m' || i) || substr(md5('x' || i), 1, 8) AS merge, md5('h' || i) || substr(md5('y' || i), 1, 8) AS head,
    TIMESTAMP '2026-09-01' + to_seconds((i * (80 * 86400 // {n}))::BIGINT) AS t
FROM range({n}) r(i);
""" + CHANGE_ROWS + """
DROP TABLE g;  -- the generator's own table: the pipeline's build_facts has no 1M-row temp table beside it
"""


def settings():
    from ccwatch.settings import RepoConfig

    from tests.helpers.controls_world import make_settings

    repos = tuple(RepoConfig(f"acme/r{i}", "main", ("production",), ("staging",), ("test", "build"))
                  for i in range(REPOS))
    return make_settings(extra_repos=repos)


def _peak_mib() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, children) / 1024


HISTORY = """
INSERT INTO control_results (as_of, change_id, repo, control_id, status, detail)
SELECT as_of - to_days(k::INTEGER), change_id, repo, control_id,
       CASE WHEN hash(change_id, control_id, k) % 50 = 0
            THEN CASE status WHEN 'fail' THEN 'pass' ELSE 'fail' END ELSE status END, detail
FROM control_results, range(1, {dates}) t(k) WHERE as_of = ?
"""


def run_once(n: int, home: Path | None = None, *, archive: bool = False, memory_limit: str | None = None,
             db_file: bool = False, report_history: int = 1) -> dict:
    """Generate n changes, run every phase; returns {phase: {wall, cpu}}, counts, summary, report size.
    ``db_file``: a warehouse file under ``home`` (as the pipeline has) instead of an in-memory one;
    ``report_history``: run dates the report is rendered over (earlier ones derived, see above)."""
    from ccwatch.controls.evaluate import evaluate
    from ccwatch.controls.facts import build_facts
    from ccwatch.publish.report.html import render_report
    from ccwatch.warehouse.connection import connect

    s = settings()
    home = Path(home or tempfile.mkdtemp(prefix="ccwatch-bench-"))
    con = connect(str(home / "bench.duckdb") if db_file else ":memory:")
    if memory_limit:
        con.execute(f"SET memory_limit = '{memory_limit}'")
    phases: dict[str, dict[str, float]] = {}

    def timed(name, fn):
        w, c = time.perf_counter(), time.process_time()
        out = fn()
        phases[name] = {"wall": time.perf_counter() - w, "cpu": time.process_time() - c, "rss_mib": _peak_mib()}
        return out

    timed("generate", lambda: con.execute(GEN.format(n=n, repos=REPOS)))
    counts = timed("build_facts", lambda: build_facts(con, s, AS_OF))
    res = timed("evaluate", lambda: evaluate(con, s, AS_OF))
    if report_history > 1:
        timed("history", lambda: con.execute(HISTORY.format(dates=int(report_history)), [AS_OF.replace(tzinfo=None)]))
    html = timed("report", lambda: render_report(con, s, AS_OF, res.gx_results))
    out = {"n": n, "phases": phases, "counts": counts, "rows": res.rows, "summary": res.summary,
           "report_bytes": len(html.encode("utf-8")), "report_history": report_history,
           "history_rows": con.execute("SELECT count(*) FROM control_results").fetchone()[0]}
    if archive:
        from ccwatch.publish.evidence.write import write_evidence

        ev = timed("archive", lambda: write_evidence(con, s, AS_OF, home, res.gx_results, html, {}))
        out["archive"] = str(ev.archive)
    out["peak_rss_mib"] = _peak_mib()
    con.close()
    return out


def _child(n: int, archive: bool, memory_limit: str | None, db_file: bool, report_history: int = 1) -> dict:
    cmd = [sys.executable, __file__, "--one", str(n)] + (["--archive"] if archive else [])
    cmd += (["--memory-limit", memory_limit] if memory_limit else []) + (["--db-file"] if db_file else [])
    cmd += ["--report-history", str(report_history)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode:
        raise SystemExit(f"size {n} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("n", nargs="?", type=int, help="one size (same as --changes N)")
    ap.add_argument("--changes", type=int, nargs="+", default=None)
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--archive", action="store_true", help="also time write_evidence (one folder per change)")
    ap.add_argument("--memory-limit", help="DuckDB memory_limit for the run (e.g. 2GB); default DuckDB's")
    ap.add_argument("--db-file", action="store_true", help="a warehouse file (as the pipeline) instead of :memory:")
    ap.add_argument("--report-history", type=int, default=1, metavar="N",
                    help="render the report over N run dates (N-1 earlier ones derived from the evaluated date)")
    ap.add_argument("--one", type=int, help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.one is not None:
        with tempfile.TemporaryDirectory(prefix="ccwatch-bench-") as home:
            print(json.dumps(run_once(a.one, Path(home), archive=a.archive, memory_limit=a.memory_limit,
                                      db_file=a.db_file, report_history=a.report_history), default=str))
        return
    sizes = a.changes or ([a.n] if a.n else [100_000])
    setup = {"generate", "history"}
    names = (["generate", "build_facts", "evaluate"] + (["history"] if a.report_history > 1 else []) + ["report"]
             + (["archive"] if a.archive else []))
    print("| changes | control rows | " + " | ".join(f"{p} s (cpu s)" for p in names)
          + " | total s (all but generate, history) | peak RSS MiB |")
    print("|---:|---:|" + "---:|" * (len(names) + 2))
    last = None
    for n in sizes:
        runs = [_child(n, a.archive, a.memory_limit, a.db_file, a.report_history) for _ in range(a.runs)]
        med = {p: (statistics.median(r["phases"][p]["wall"] for r in runs),
                   statistics.median(r["phases"][p]["cpu"] for r in runs)) for p in names}
        total = sum(med[p][0] for p in names if p not in setup)
        rss = statistics.median(r["peak_rss_mib"] for r in runs)
        print(f"| {n:,} | {runs[0]['rows']:,} | " + " | ".join(f"{w:.1f} ({c:.1f})" for w, c in med.values())
              + f" | {total:.1f} | {rss:,.0f} |", flush=True)
        last = runs[0]
        print("  peak RSS after each phase (MiB):", {p: round(v["rss_mib"]) for p, v in last["phases"].items()})
        print(f"  report: {last['report_bytes']:,} bytes over {last['report_history']} run date(s), "
              f"{last['history_rows']:,} control_results rows in the warehouse")
    if last:
        for cid, c in last["summary"].items():
            print(cid, c)


if __name__ == "__main__":
    main()
