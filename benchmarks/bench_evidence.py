"""The nightly evidence step (issue #15): a window of N changes, then the next date with M new ones.

Usage:
    .venv/bin/python benchmarks/bench_evidence.py --changes 20000 --new 500 [--repos 100] [--json FILE]
    .venv/bin/python benchmarks/bench_evidence.py --code /path/to/other/checkout/include ...   # "before"

Data is generated in SQL straight into the normalised tables (as ``bench_evaluation.py`` does:
one review, two check runs, a ticket with approval and Done transitions per PR, every 5th merge
deployed to staging then production, 1% direct pushes), spread over ``--repos`` repositories, and
into ``raw_payloads`` as the fetch stores them: per PR its GraphQL node (``gql_pull``, ~2 KB), its
Jira issue and changelog, per repository its settings records and per environment its deployments
list, per deployment its statuses, and the Jira field list.  Date D = 2026-11-25: facts, evaluation,
then ``write_evidence`` ("full": every change folder).  Date D+1: ``--new`` merged PRs more, in the
busiest repositories first (Zipf-like), every repository's listings and settings revalidated (their
``fetched_at`` moves, as a 304 does) and the Jira field list fetched again; facts, evaluation, then
``write_evidence`` of D+1 ("nightly": the measured step).  Wall and CPU seconds per phase, folders
written / carried (when the code reports them), archive sizes.

``--code DIR`` puts DIR (an ``include`` folder) first on the path, so the same script measures
another checkout's code ("before" = main, "after" = this branch, back to back).
``run(...)`` is the smoke entry point the tests use (correctness only, no timing).
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import bench_evaluation  # the changes' rows (CHANGE_ROWS), generated the same way

ROOT = Path(__file__).resolve().parents[1]
AS_OF = datetime(2026, 11, 25, tzinfo=UTC)
DAY = 86400

GEN = """
CREATE OR REPLACE TEMP TABLE g AS
SELECT i, 'acme/r' || CAST(floor(pow({repos}, ((i * 7919) % 10007) / 10007.0)) - 1 AS INTEGER) AS repo,
    i AS n, md5('m' || i) || substr(md5('x' || i), 1, 8) AS merge, md5('h' || i) || substr(md5('y' || i), 1, 8) AS head,
    TIMESTAMP '2026-09-01' + to_seconds((i * ({span} // {n0}))::BIGINT) AS t
FROM range({start}, {end}) r(i);
""" + bench_evaluation.CHANGE_ROWS + """-- raw records, as the fetch stores them
INSERT INTO raw_payloads SELECT 'github', 'gql_pull', repo || '#' || n, 'https://api.github.com/graphql',
    TIMESTAMP '{fetched}', NULL, 200, json_object(
    'number', n, 'title', 'FEAT: change ' || i || ' [PAY-' || i || ']', 'headRefOid', head, 'mergeCommit',
    json_object('oid', merge), 'mergedAt', strftime(t, '%Y-%m-%dT%H:%M:%SZ'), 'author', json_object('login', 'dev' || (i % 50)),
    'body', repeat('Why: a change of the synthetic org. ', 20),
    'reviews', json_object('nodes', [json_object('author', json_object('login', 'rev' || ((i + 1) % 7)),
        'state', 'APPROVED', 'commit', json_object('oid', head),
        'submittedAt', strftime(t - INTERVAL 1 HOUR, '%Y-%m-%dT%H:%M:%SZ'))]),
    'commits', json_object('nodes', [json_object('commit', json_object('oid', head, 'checkSuites', json_object('nodes',
        [json_object('app', json_object('databaseId', 15368, 'slug', 'github-actions'), 'checkRuns', json_object('nodes',
        [json_object('databaseId', i * 2, 'name', 'test', 'status', 'COMPLETED', 'conclusion', 'SUCCESS'),
         json_object('databaseId', i * 2 + 1, 'name', 'build', 'status', 'COMPLETED', 'conclusion', 'SUCCESS')]))])))]))
    FROM g WHERE i % 100 <> 99;
INSERT INTO raw_payloads SELECT 'github', 'commit_pulls', repo || '@' || merge,
    'https://api.github.com/repos/' || repo || '/commits/' || merge || '/pulls', TIMESTAMP '{fetched}', NULL, 200,
    '[]'::JSON FROM g WHERE i % 100 = 99;
INSERT INTO raw_payloads SELECT 'jira', 'issue', 'PAY-' || i, 'https://acme.atlassian.net/rest/api/2/issue/PAY-' || i,
    TIMESTAMP '{fetched}', NULL, 200, json_object('key', 'PAY-' || i, 'fields', json_object('summary',
    'change ' || i, 'status', json_object('name', 'Done'), 'customfield_10001', 'why', 'customfield_10002', 'low',
    'description', repeat('Rollback: revert the merge. ', 10))) FROM g;
INSERT INTO raw_payloads SELECT 'jira', 'changelog', 'PAY-' || i,
    'https://acme.atlassian.net/rest/api/2/issue/PAY-' || i || '/changelog', TIMESTAMP '{fetched}', NULL, 200,
    json_array(json_object('id', 'a' || i, 'author', json_object('emailAddress', 'alice@acme.example'),
    'created', strftime(t - INTERVAL 2 HOUR, '%Y-%m-%dT%H:%M:%SZ'), 'items', json_array(json_object('field', 'status',
    'fieldId', 'status', 'fromString', 'Review', 'toString', 'Approved'))),
    json_object('id', 'd' || i, 'author', json_object('emailAddress', 'dev@x'),
    'created', strftime(t + INTERVAL 3 DAY, '%Y-%m-%dT%H:%M:%SZ'), 'items', json_array(json_object('field', 'status',
    'fieldId', 'status', 'fromString', 'Approved', 'toString', 'Done')))) FROM g;
INSERT INTO raw_payloads SELECT 'github', 'deployment_statuses', d.repo || '/deployments/' || d.deployment_id,
    'https://api.github.com/repos/' || d.repo || '/deployments/' || d.deployment_id || '/statuses',
    TIMESTAMP '{fetched}', NULL, 200, json_array(json_object('id', d.deployment_id, 'state', 'success',
    'created_at', strftime(d.created_at + INTERVAL 5 MINUTE, '%Y-%m-%dT%H:%M:%SZ')))
    FROM deployments d JOIN g ON d.sha = g.merge;
"""

# every repository's listings and settings, and the Jira field list: fetched (again) each night
LISTS = """
INSERT OR REPLACE INTO raw_payloads SELECT 'github', 'deployments', repo || ':' || environment,
    'https://api.github.com/repos/' || repo || '/deployments', TIMESTAMP '{fetched}', 'W/"' || md5(repo || count(*)) || '"',
    200, to_json(list(json_object('id', deployment_id, 'sha', sha, 'ref', 'main', 'environment', environment,
    'creator', json_object('login', creator_login), 'created_at', strftime(created_at, '%Y-%m-%dT%H:%M:%SZ'))
    ORDER BY deployment_id DESC))
    FROM deployments GROUP BY repo, environment;
INSERT OR REPLACE INTO raw_payloads SELECT 'github', k, repo || ':main',
    'https://api.github.com/repos/' || repo, TIMESTAMP '{fetched}', 'W/"' || md5(repo) || '"', 200,
    json_object('name', repo, 'default_branch', 'main', 'protected', true)
    FROM (SELECT DISTINCT repo FROM pull_requests), (VALUES ('branch'), ('branch_protection')) v(k);
INSERT OR REPLACE INTO raw_payloads SELECT 'github', 'gql_repository', repo,
    'https://api.github.com/graphql#CcwatchRepositories', TIMESTAMP '{fetched}', NULL, 200,
    json_object('id', 'R_' || md5(repo), 'nameWithOwner', repo, 'visibility', 'PRIVATE', 'isArchived', false,
    'defaultBranchRef', json_object('name', 'main'), 'squashMergeAllowed', true)
    FROM (SELECT DISTINCT repo FROM pull_requests);
INSERT OR REPLACE INTO raw_payloads VALUES ('jira', 'fields', 'fields', 'https://acme.atlassian.net/rest/api/2/field',
    TIMESTAMP '{fetched}', NULL, 200, '[{{"id": "status", "name": "Status"}}, {{"id": "summary", "name": "Summary"}},
    {{"id": "customfield_10001", "name": "Business Justification"}}, {{"id": "customfield_10002", "name": "Risk Assessment"}},
    {{"id": "customfield_10003", "name": "Testing Plan"}}, {{"id": "customfield_10004", "name": "Post-Mortem"}},
    {{"id": "customfield_10005", "name": "Rollback Plan"}}, {{"id": "description", "name": "Description"}}]');
"""


def settings(repos: int):
    from ccwatch.settings import RepoConfig

    from tests.helpers.controls_world import make_settings

    return make_settings(extra_repos=tuple(RepoConfig(f"acme/r{i}", "main", ("production",), ("staging",),
                                                      ("test", "build")) for i in range(repos)))


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run(n: int, new: int, home: Path, repos: int = 100, check: bool = False) -> dict:
    """Date D with ``n`` changes, then D+1 with ``new`` more; returns per phase {wall, cpu} and the
    evidence results' counts.  ``check``: also write D+1 from scratch in another folder and say whether
    the two archives are the same bytes (``nightly.equals_from_scratch``; not timed)."""
    from ccwatch.controls.evaluate import evaluate
    from ccwatch.controls.facts import build_facts
    from ccwatch.publish.evidence.write import write_evidence
    from ccwatch.warehouse.connection import connect

    s = settings(repos)
    home = Path(home)
    con = connect(str(home / "bench.duckdb"))
    con.execute("SET memory_limit = '2GB'")
    phases: dict[str, dict[str, float]] = {}
    out: dict = {"n": n, "new": new, "repos": repos, "phases": phases}

    def timed(name, fn):
        w, c = time.perf_counter(), time.process_time()
        res = fn()
        phases[name] = {"wall": round(time.perf_counter() - w, 2), "cpu": round(time.process_time() - c, 2),
                        "rss_mib": round(_peak_mib())}
        return res

    span = 80 * DAY
    for day, (start, end) in enumerate(((0, n), (n, n + new))):
        as_of = AS_OF + timedelta(days=day)
        fetched = (as_of - timedelta(hours=1)).strftime("%Y-%m-%d %H:%M:%S")
        label = "full" if day == 0 else "nightly"
        timed(f"generate_{label}", lambda s_=start, e_=end, f_=fetched: (
            con.execute(GEN.format(repos=repos, n0=n, span=span, start=s_, end=e_, fetched=f_)),
            con.execute(LISTS.format(fetched=f_))))
        timed(f"facts_{label}", lambda a=as_of: build_facts(con, s, a))
        res = timed(f"evaluate_{label}", lambda a=as_of: evaluate(con, s, a))
        ev = timed(f"evidence_{label}", lambda a=as_of, r=res: write_evidence(
            con, s, a, home, r.gx_results, "<html>report</html>\n", {}, generated_at="2026-11-26T01:00:00Z"))
        out[label] = {"files": ev.files, "archive_bytes": ev.archive.stat().st_size, "archive": str(ev.archive),
                      "folders": len(list((ev.directory / "changes").iterdir())),
                      "written": getattr(ev, "written", None), "carried": getattr(ev, "carried", None),
                      "files_written": getattr(ev, "files_written", None)}
        if check and day == 1:
            scratch = write_evidence(con, s, as_of, home / "from-scratch", res.gx_results, "<html>report</html>\n", {},
                                     generated_at="2026-11-26T01:00:00Z")
            out[label]["equals_from_scratch"] = scratch.archive.read_bytes() == ev.archive.read_bytes()
    out["peak_rss_mib"] = round(_peak_mib())
    con.close()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--changes", type=int, default=20000)
    ap.add_argument("--new", type=int, default=500)
    ap.add_argument("--repos", type=int, default=100)
    ap.add_argument("--code", help="an include folder to import ccwatch from (another checkout: 'before')")
    ap.add_argument("--home", help="where to write (default: a new temp folder)")
    ap.add_argument("--json", help="write the result here too")
    a = ap.parse_args()
    for p in (str(ROOT), a.code or str(ROOT / "include")):
        sys.path.insert(0, p)
    import ccwatch

    home = Path(a.home or tempfile.mkdtemp(prefix="ccwatch-bench-evidence-"))
    out = run(a.changes, a.new, home, a.repos)
    out["code"] = str(Path(ccwatch.__file__).resolve().parents[1])
    text = json.dumps(out, indent=2)
    print(text)
    if a.json:
        Path(a.json).write_text(text + "\n")


if __name__ == "__main__":
    main()
