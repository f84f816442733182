"""Time and peak memory of build_facts + evaluate for N synthetic changes (default 100,000).

Usage: .venv/bin/python benchmarks/bench_evaluation.py [N]
Data is generated in SQL straight into the normalised tables (10 repositories, one review,
two check runs, a ticket with approval and Done transitions per PR; every 5th merge deployed
to staging then production; 1% direct pushes).  Results go to benchmarks/RESULTS.md by hand.
"""

from __future__ import annotations

import resource
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "include"), str(ROOT / "tests")]

from ccwatch.settings import RepoConfig  # noqa: E402
from ccwatch.validation import evaluate  # noqa: E402
from ccwatch.warehouse.facts import build_facts  # noqa: E402
from ccwatch.warehouse.schema import connect  # noqa: E402
from test_controls_fixtures import make_settings  # noqa: E402

REPOS = 10

GEN = """
CREATE TEMP TABLE g AS SELECT i, 'acme/r' || (i % {repos}) AS repo, (i // {repos})::INTEGER AS n,
    md5('m' || i) || substr(md5('x' || i), 1, 8) AS merge, md5('h' || i) || substr(md5('y' || i), 1, 8) AS head,
    TIMESTAMP '2026-09-01' + to_seconds((i * (80 * 86400 // {n}))::BIGINT) AS t
FROM range({n}) r(i);
INSERT INTO pull_requests SELECT repo, n, 'FEAT: change ' || i || ' [PAY-' || i || ']', 'dev' || (i % 50), 'User',
    CASE WHEN i % 97 = 0 THEN ['emergency'] ELSE [] END, 'main', head, merge, t, 'rev' || (i % 7),
    'https://github.com/' || repo || '/pull/' || n FROM g WHERE i % 100 <> 99;
INSERT INTO commits SELECT repo, 'main', merge, n, NULL, 'dev' || (i % 50), 'web-flow', t, 'msg',
    CASE WHEN i % 100 = 99 THEN [] ELSE [n] END, '' FROM g;
INSERT INTO reviews SELECT repo, n, i, 'rev' || ((i + 1) % 7), 'User', 'APPROVED', head, t - INTERVAL 1 HOUR FROM g;
INSERT INTO checks SELECT repo, head, 'check_run', i * 2 + k, CASE k WHEN 0 THEN 'test' ELSE 'build' END,
    'completed', CASE WHEN i % 53 = 0 AND k = 0 THEN 'failure' ELSE 'success' END,
    t - INTERVAL 3 HOUR, t - INTERVAL 2 HOUR, '' FROM g, range(2) k(k);
INSERT INTO tickets SELECT 'PAY-' || i, 'PAY', true, 's', 'Story', 'Done', 'done', 'Medium', [], 'dev@x', t - INTERVAL 10 DAY,
    t, 'why', 'low', 'tests', NULL, '{{"Rollback Plan": "revert"}}', '' FROM g;
INSERT INTO ticket_transitions SELECT 'PAY-' || i, 'a' || i, 'alice@acme.example', t - INTERVAL 2 HOUR, 'Review',
    'Approved', 'indeterminate' FROM g;
INSERT INTO ticket_transitions SELECT 'PAY-' || i, 'd' || i, 'dev@x', t + INTERVAL 3 DAY, 'Approved', 'Done', 'done' FROM g;
INSERT INTO deployments SELECT repo, i * 2 + k, merge, 'main', CASE k WHEN 0 THEN 'staging' ELSE 'production' END,
    'github-actions[bot]', 'Bot', t + to_minutes(30 + 30 * k) FROM g, range(2) k(k) WHERE n % 5 = 4;
INSERT INTO deployment_statuses SELECT repo, deployment_id, deployment_id, 'success', creator_login,
    created_at + INTERVAL 5 MINUTE FROM deployments;
"""


def main(n: int) -> None:
    repos = tuple(RepoConfig(f"acme/r{i}", "main", ("production",), ("staging",), ("test", "build"))
                  for i in range(REPOS))
    settings = make_settings(extra_repos=repos)
    con = connect(":memory:")
    t0 = time.perf_counter()
    con.execute(GEN.format(n=n, repos=REPOS))
    t1 = time.perf_counter()
    as_of = datetime(2026, 11, 25, tzinfo=UTC)
    counts = build_facts(con, settings, as_of)
    t2 = time.perf_counter()
    res = evaluate(con, settings, as_of)
    t3 = time.perf_counter()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"changes={counts['changes']} rows={res.rows} generate={t1 - t0:.1f}s build_facts={t2 - t1:.1f}s "
          f"evaluate={t3 - t2:.1f}s peak_rss={peak:.0f}MiB")
    for cid, c in res.summary.items():
        print(cid, c)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 100_000)
