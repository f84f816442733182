"""Smoke version of benchmarks/bench_scale.py: every mode end to end at a tiny size, latency 0.

Correctness only (no timing assertions): the real pipeline stages ran against the API double
serving a synthetic org, every change got its control rows, requests were counted, and the
nightly run fetched the next day's new changes incrementally.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from ccwatch.controls import catalogue

from tests.helpers.paths import BENCHMARKS

sys.path.insert(0, str(BENCHMARKS))

import bench_evidence  # noqa: E402
import bench_scale  # noqa: E402
import scale_stages  # noqa: E402

# rows per change and per repository: CC8.1-01..10 and 13 per change; 11, 12, 14 and 15 per repository
CHANGE_CONTROLS, REPO_CONTROLS = len(catalogue.CHANGE_CONTROLS), len(catalogue.REPO_CONTROLS)
TINY = ["--repos", "4", "--latency-ms", "0", "--seed", "3"]


def run(tmp_path: Path, *argv: str) -> dict:
    out = tmp_path / "out.json"
    report = bench_scale.main([*argv, *TINY, "--json", str(out), "--workdir", str(tmp_path / "work")])
    assert json.loads(out.read_text(encoding="utf-8")) == json.loads(json.dumps(report))
    assert report["machine"]["cores"] >= 1 and report["machine"]["python"]
    return report


def check_run(m: dict, repos: int, merged_at_least: int) -> None:
    assert m["changes"] >= merged_at_least  # merged PRs (+ any direct pushes)
    assert m["result_rows"] == m["changes"] * CHANGE_CONTROLS + repos * REPO_CONTROLS
    assert m["github_core"] + m["graphql"] > 0 and m["jira"] > 0
    assert set(m["stages_s"]) == set(scale_stages.STAGES)
    assert m["requests_by_stage"]["ingest_github"] > 0 and m["requests_by_stage"]["build_facts"] == 0
    assert m["peak_rss_mib"] > 0 and m["core_charged"] == m["github_core"] and m["graphql_points"] >= 0


def test_backfill(tmp_path):
    report = run(tmp_path, "backfill", "--prs", "120")
    res = report["results"][0]
    m = res["median"]
    check_run(m, 4, 120)
    assert m["merged_prs"] == 120
    assert m["github_requests_per_merged_pr"] == pytest.approx((m["github_core"] + m["graphql"]) / 120, abs=1e-3)
    assert "| backfill | 4 | 120 |" in bench_scale.table_row(res)


def test_nightly_fetches_the_new_changes_incrementally(tmp_path):
    report = run(tmp_path, "nightly", "--prs", "120", "--new", "12")
    m = report["results"][0]["median"]
    check_run(m, 4, 132)  # the 12 new merged PRs are in the evaluated population
    assert m["new_changes"] == 12 and 0 < m["changed_repos"] <= 4
    assert m["changed_repos"] + m["unchanged_repos"] == 4
    assert m["github_requests_changed_repos"] > 0
    assert m["backfill_total_s"] > 0
    measured = m["github_core"] + m["github_304"] + m["graphql"] + m["jira"]
    assert 0 < measured < m["backfill_requests"]  # incremental: far fewer requests than the backfill


def test_nightly_breaks_the_counted_requests_down_and_asks_org_wide(tmp_path):
    """Issue #15 (B): every counted GitHub request of the night is in the breakdown by kind
    (changed repositories, unchanged ones, org-wide); the reconciliation counts and the night's
    merged PRs are asked org-wide, never per repository, and so are the commits' PRs and the
    deployments' statuses (one request holds those of every repository)."""
    report = run(tmp_path, "nightly", "--prs", "120", "--new", "12")
    m = report["results"][0]["median"]
    by_kind = m["counted_by_kind"]
    assert sum(n for kinds in by_kind.values() for n in kinds.values()) == m["github_core"] + m["graphql"]
    # one count batch, one settings batch (stop 29), one search page of the night's merged PRs, one
    # history page of the repositories that moved and one statuses lookup for the whole org
    assert by_kind["org_wide"] == {"GraphQL CcwatchMergedCounts": 1, "GraphQL CcwatchRepositories": 1,
                                   "GraphQL CcwatchMergedPullsSearch": 1, "GraphQL CcwatchBranchHistories": 1,
                                   "GraphQL CcwatchDeploymentStatuses": 1}
    assert m["github_requests_org_wide"] == 5
    for side in ("changed", "unchanged"):
        for kind in ("GraphQL CcwatchMergedCount", "GraphQL CcwatchMergedPulls", "REST pulls list",
                     "GraphQL CcwatchDeploymentStatuses", "GraphQL CcwatchBranchHistory",
                     "GraphQL CcwatchBranchHistories", "GraphQL CcwatchRepository", "REST repository"):
            assert kind not in by_kind[side], (side, kind)
    assert m["target_counted_max"] == m["new_changes"] + 0.5 * m["unchanged_repos"]
    assert set(m["stages_cpu_s"]) == set(scale_stages.STAGES) and m["total_cpu_s"] > 0


def test_curve(tmp_path):
    report = run(tmp_path, "curve", "--sizes", "40,80")
    sizes = [r["prs"] for r in report["results"]]
    assert sizes == [40, 80]
    for res in report["results"]:
        check_run(res["median"], 4, res["prs"])


def test_backfill_isolated_reports_each_stage_apart_from_the_double(tmp_path):
    report = run(tmp_path, "backfill", "--prs", "40", "--isolate")
    m = report["results"][0]["median"]
    check_run(m, 4, 40)
    assert set(m["stage_peak_rss_mib"]) == set(m["stage_cpu_s"]) == set(scale_stages.STAGES)
    assert all(v > 0 for v in m["stage_peak_rss_mib"].values())
    assert m["pipeline_peak_rss_mib"] == max(m["stage_peak_rss_mib"].values())


def test_load_alone_on_a_kept_staging(tmp_path):
    keep = tmp_path / "staging"
    staged = run(tmp_path, "stage", "--prs", "40", "--keep", str(keep))["results"][0]
    assert staged["merged_prs"] == 40 and (keep / "meta.json").is_file() and (keep / "ccwatch.yaml").is_file()
    loads = [run(tmp_path, "load", "--staging", str(keep), "--chunk-records", str(n))["results"][0]["median"]
             for n in (3, 100_000)]
    assert loads[0]["raw_payloads"] == loads[1]["raw_payloads"] > 40  # the same load in 3-record chunks
    assert all(m["peak_rss_mib"] > 0 and m["staging_mib"] > 0 and m["warehouse_mib"] > 0 for m in loads)


def test_evidence_nightly_step_writes_the_whole_window_reproducibly(tmp_path):
    """benchmarks/bench_evidence.py at a tiny size (issue #15): the next date's folder holds the window
    plus the new changes, verifies, and its archive is the bytes a from-scratch write of that date gives."""
    from ccwatch.publish.evidence.verify import verify_archive

    out = bench_evidence.run(300, 20, tmp_path, repos=5, check=True)
    full, night = out["full"], out["nightly"]
    assert night["folders"] == full["folders"] + 20
    assert night["equals_from_scratch"] is True
    assert verify_archive(night["archive"]) == []


def test_list_age_loads_a_night_over_aged_lists(tmp_path):
    """benchmarks/bench_list_age.py at a tiny size: each age's warehouse holds that many copies of the
    busiest repository's year, and one night on it loads (no error) and adds its 20 commits."""
    import bench_list_age

    keep = tmp_path / "staging"
    run(tmp_path, "stage", "--prs", "60", "--keep", str(keep))
    out = tmp_path / "age.json"
    rows = bench_list_age.main(["--staging", str(keep), "--years", "0,1,2", "--json", str(out)])
    assert json.loads(out.read_text(encoding="utf-8")) == rows
    assert [r["years"] for r in rows] == [0, 1, 2] and all("error" not in r for r in rows)
    zero, one, two = rows
    assert one["repo"] == bench_list_age.busiest(keep)
    assert two["commit_rows"] - 20 == 2 * (one["commit_rows"] - 20) > 0  # the year twice, plus the night's 20
    assert zero["stored_lists_mb"] <= one["stored_lists_mb"] < two["stored_lists_mb"]  # year 0: the newest 200
    assert all(r["cpu_s"] > 0 and r["peak_rss_mib"] > 0 for r in rows)
