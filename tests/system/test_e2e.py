"""End to end: `airflow dags test ccwatch_nightly` against the API double, as a user runs it.

The DAG runs in a real Airflow subprocess (own AIRFLOW_HOME, SQLite) with connections
given only as AIRFLOW_CONN_* variables pointing at the sandbox, which serves the bundled
demo org through the real GitHub/Jira/Slack REST shapes.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import duckdb
import pytest
from ccwatch.demo_env import DEMO_AUTH, connection_env
from ccwatch.publish.evidence.verify import verify_archive
from ccwatch.sandbox import SandboxServer

from tests.helpers.chromium import FLAGS, require_chromium
from tests.helpers.paths import CONFIG, DEMO_SCENARIO, ROOT

AIRFLOW = Path(sys.executable).with_name("airflow")
DATE = "2026-11-25"
SCENARIO = json.loads(DEMO_SCENARIO.read_text(encoding="utf-8"))
DEMO_EXPECTED = json.loads((ROOT / "include/demo/expected.json").read_text(encoding="utf-8"))
EXPECTED = DEMO_EXPECTED["results"]


@pytest.fixture(scope="module")
def airflow_env(tmp_path_factory):
    home = tmp_path_factory.mktemp("airflow_home")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW_CONN_", "AIRFLOW_VAR_"))}
    env.update(
        AIRFLOW_HOME=str(home),
        AIRFLOW__CORE__DAGS_FOLDER=str(ROOT / "dags"),
        AIRFLOW__CORE__PLUGINS_FOLDER=str(ROOT / "plugins"),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=f"sqlite:///{home}/airflow.db",
        CCWATCH_CONFIG=str(CONFIG),
        CCWATCH_RETRY_DELAY_SECONDS="1",
        PYTHONPATH=os.pathsep.join([str(ROOT / "include"), str(ROOT / "plugins")]),
    )
    out = subprocess.run([str(AIRFLOW), "db", "migrate"], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    return env


def run_dag(env: dict, server: SandboxServer, data: Path, tokens: dict | None = None) -> subprocess.CompletedProcess:
    scenario = {"auth": {**DEMO_AUTH, **(tokens or {})}}
    run_env = {**env, "CCWATCH_HOME": str(data), **connection_env(scenario, server.url)}
    return subprocess.run(
        [str(AIRFLOW), "dags", "test", "ccwatch_nightly", DATE],
        env=run_env, capture_output=True, text=True, timeout=600,
    )


def results(data: Path) -> list[tuple]:
    con = duckdb.connect(str(data / "warehouse.duckdb"), read_only=True)
    try:
        return con.execute(
            "SELECT change_id, control_id, status, detail FROM control_results "
            "WHERE CAST(as_of AS DATE) = ? ORDER BY change_id, control_id", [DATE]
        ).fetchall()
    finally:
        con.close()


@pytest.fixture(scope="module")
def demo_run(airflow_env, tmp_path_factory):
    data = tmp_path_factory.mktemp("ccwatch_home")
    scenario = copy.deepcopy(SCENARIO)
    scenario["auth"] = dict(DEMO_AUTH)  # the double rejects any other credential
    with SandboxServer(scenario) as server:
        first = run_dag(airflow_env, server, data)
        first_messages = list(server.slack_messages)
        first_rows = results(data) if first.returncode == 0 else []
        second = run_dag(airflow_env, server, data)
        second_messages = list(server.slack_messages)
        requests = list(server.requests)
    return {
        "data": data, "first": first, "second": second, "first_rows": first_rows,
        "first_messages": first_messages, "second_messages": second_messages, "requests": requests,
    }


def test_demo_run_completes(demo_run):
    for key in ("first", "second"):
        proc = demo_run[key]
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]


def test_every_planted_case_has_its_expected_status(demo_run):
    got = {(c, k): s for c, k, s, _ in demo_run["first_rows"]}
    wrong = []
    for change_id, controls in EXPECTED.items():
        for control_id, status in controls.items():
            if control_id.startswith("CC8.1-") and got.get((change_id, control_id)) != status:
                wrong.append(f"{change_id} {control_id}: expected {status}, got {got.get((change_id, control_id))}")
    assert not wrong, "\n".join(wrong)
    changes = {c for c, *_ in demo_run["first_rows"]}
    assert changes == set(EXPECTED), "population differs from the planted demo org"


def test_every_r2_case_has_its_statuses_and_names_its_evidence(demo_run):
    """(r2) Each contract-revision-2 case planted in the demo (docs/DEMO.md) comes out with its statuses, and
    its detail line names what decided it."""
    rows = {(c, k): (s, d) for c, k, s, d in demo_run["first_rows"]}
    cases = DEMO_EXPECTED["r2_cases"]
    for name, case in cases.items():
        for control_id, status in case["statuses"].items():
            assert rows[(case["change_id"], control_id)][0] == status, (name, control_id)
    detail = {name: {k: rows[(c["change_id"], k)][1] for k in c["statuses"]} for name, c in cases.items()}
    assert "(activity log)" in detail["backdated-push"]["CC8.1-10"]
    assert "by carol-dev at 2026-11-10T20:00Z" in detail["backdated-push"]["CC8.1-10"]
    assert "by grace-dev at 2026-10-21T12:00Z" in detail["push-of-pr-commit-merged-elsewhere"]["CC8.1-10"]
    assert "force push by frank-dev at 2026-11-13T17:40Z" in detail["force-push"]["CC8.1-14"]
    off = cases["off-branch-deployment"]["why"]
    assert "by frank-dev" in detail["off-branch-deployment"]["CC8.1-15"] and "pricing-experiment" in off
    assert "unknown Jira user" in detail["deleted-jira-approver"]["CC8.1-04"]
    assert "creator is unknown" in detail["null-deployment-creator"]["CC8.1-04"]
    assert "filled in only later: Testing Plan" in detail["docs-after-deployment"]["CC8.1-02"]
    assert "2026-11-17T13:06Z" in detail["superseded-deployment"]["CC8.1-06"]
    assert "post-mortem written at 2026-11-08T10:00Z" in detail["renamed-field"]["CC8.1-09"]
    assert "post-mortem due by" in detail["postmortem-after-as-of"]["CC8.1-09"]
    # issue #12 item 5: the author's commit status does not stand in for the pinned app's failed run
    assert ("failed: build failure by app github-actions (required from app github-actions (id 15368, branch "
            "protection); not counted: status success by grace-dev)") in detail["user-status-for-pinned-check"]["CC8.1-05"]
    # issue #12 item 7: the merge queue's merger is whoever added the PR to the queue
    assert ("frank-dev merged their own PR: added it to the merge queue at 2026-11-05T14:00Z (merged by "
            "github-merge-queue[bot]; the activity log shows merge_queue_merge)") in \
        detail["merge-queue-self-enqueued"]["CC8.1-04"]
    assert ("merged by bob-rev through the merge queue (added at 2026-10-13T09:00Z; merged by "
            "github-merge-queue[bot]; the activity log shows merge_queue_merge)") in \
        detail["merge-queue-enqueued-by-other"]["CC8.1-04"]


def test_exceptions_register_marks_only_its_valid_entry(demo_run):
    """(r2) The demo's register: the valid entry marks its failing row, the expired and the self-approved
    entries apply to nothing and are reported with their reason; Slack does not alert the excepted row."""
    con = duckdb.connect(str(demo_run["data"] / "warehouse.duckdb"), read_only=True)
    try:
        verdicts = {i: (s, r, a) for i, s, r, a in con.execute(
            "SELECT id, status, reason, applied FROM exceptions WHERE CAST(as_of AS DATE) = ?", [DATE]).fetchall()}
        marked = con.execute("SELECT change_id, control_id, status, exception FROM control_results "
                             "WHERE CAST(as_of AS DATE) = ? AND exception IS NOT NULL", [DATE]).fetchall()
    finally:
        con.close()
    want = DEMO_EXPECTED["exceptions"]
    assert verdicts == {k: (e["status"], e["reason"], e["applied"]) for k, e in want.items()}
    assert marked == [(e["target"], e["control_id"], "fail", k) for k, e in want.items() if e["applied"]]
    text = json.dumps(demo_run["first_messages"][0])
    assert "CC8.1-12" not in text, "an excepted failure is not alerted"
    assert "2 exception entries do not apply" in text
    with tarfile.open(demo_run["data"] / "evidence" / f"ccwatch-evidence-{DATE}.tar.gz") as tar:
        names = tar.getnames()
    assert f"{DATE}/exceptions.csv" in names and f"{DATE}/config/exceptions.yaml" in names


def test_exactly_one_row_per_change_and_control_and_rerun_replaces(demo_run):
    first = demo_run["first_rows"]
    keys = [(c, k) for c, k, *_ in first]
    assert len(keys) == len(set(keys))
    assert results(demo_run["data"]) == first, "a rerun of the date must replace its rows identically"


def test_every_detail_is_a_readable_line(demo_run):
    for change_id, control_id, _status, detail in demo_run["first_rows"]:
        assert detail and "\n" not in detail, (change_id, control_id)


def test_archive_verifies_and_rerun_gets_a_numbered_archive(demo_run):
    evidence = demo_run["data"] / "evidence"
    first, second = evidence / f"ccwatch-evidence-{DATE}.tar.gz", evidence / f"ccwatch-evidence-{DATE}.1.tar.gz"
    assert first.is_file() and second.is_file()
    assert verify_archive(first) == [] and verify_archive(second) == []
    with tarfile.open(first) as tar:
        names = tar.getnames()
    for expected in ("control_results.csv", "population.csv", "manifest.json", "report.html", "POLICY.md"):
        assert any(n.endswith("/" + expected) for n in names), expected
    assert any("/changes/" in n for n in names)


def test_no_token_reaches_any_output(demo_run):
    secrets = [v for k, v in DEMO_AUTH.items() if "token" in k]
    for path in demo_run["data"].rglob("*"):
        if path.is_file() and path.suffix != ".gz":
            blob = path.read_bytes()
            for s in secrets:
                assert s.encode() not in blob, f"token found in {path}"
    for req in demo_run["requests"]:
        assert not any(s in json.dumps(req) for s in secrets)


def test_no_token_in_airflow_output_or_logs(demo_run, airflow_env):
    """The Airflow subprocesses' stdout/stderr and every file of the Airflow home (task logs, the
    metadata DB with its XComs) carry no token; nor do the archives' members."""
    secrets = [v.encode() for k, v in DEMO_AUTH.items() if "token" in k]
    blobs = [(f"{key} {stream}", getattr(demo_run[key], stream).encode())
             for key in ("first", "second") for stream in ("stdout", "stderr")]
    home = Path(airflow_env["AIRFLOW_HOME"])
    files = [p for p in home.rglob("*") if p.is_file()]
    # `airflow dags test` runs the tasks in process: their logs are in the captured output
    assert home / "airflow.db" in files and "load_warehouse" in demo_run["first"].stdout + demo_run["first"].stderr
    blobs += [(str(p), p.read_bytes()) for p in files]
    for archive in (demo_run["data"] / "evidence").glob("*.tar.gz"):
        with tarfile.open(archive) as tar:
            blobs += [(f"{archive.name}!{m.name}", tar.extractfile(m).read()) for m in tar.getmembers() if m.isfile()]
    for name, blob in blobs:
        for s in secrets:
            assert s not in blob, f"token found in {name}"


def test_slack_alert_sent_once_for_new_failures_and_every_night_carries_the_digests(demo_run):
    first, second = demo_run["first_messages"], demo_run["second_messages"]
    assert len(first) == 1, "one alert for the first run's failures"
    text = json.dumps(first[0])
    assert "CC8.1-03" in text and "acme/" in text
    assert len(second) == 2, "the rerun posts one line, not the failures again"
    rows = duckdb.connect(str(demo_run["data"] / "warehouse.duckdb"), read_only=True).execute(
        "SELECT path, sha256, manifest_sha256, signed FROM evidence_archives ORDER BY generated_at").fetchall()
    assert [Path(r[0]).name for r in rows] == [f"ccwatch-evidence-{DATE}.tar.gz", f"ccwatch-evidence-{DATE}.1.tar.gz"]
    for msg, (_, sha, msha, signed) in zip(second, rows, strict=True):
        assert sha in json.dumps(msg) and msha in json.dumps(msg) and signed is False
    assert second[1]["text"].startswith(f"ccwatch {DATE}: no new failures; archive ccwatch-evidence-{DATE}.1.tar.gz")
    manifest = json.loads((demo_run["data"] / "evidence" / DATE / "manifest.json").read_text())
    assert manifest["run"]["dag_id"] == "ccwatch_nightly" and manifest["run"]["try_number"] == 1
    assert manifest["run"]["run_id"] and manifest["signature"]["status"] == "unsigned"


def test_failed_fetch_fails_the_run_and_never_reads_as_all_clear(airflow_env, tmp_path):
    scenario = copy.deepcopy(SCENARIO)
    scenario["auth"] = dict(DEMO_AUTH)
    with SandboxServer(scenario) as server:
        proc = run_dag(airflow_env, server, tmp_path, tokens={"github_token": "ghp_revoked"})
        messages = list(server.slack_messages)
    assert proc.returncode != 0, "a 401 from GitHub must fail the run"
    assert "Bad credentials" in proc.stdout + proc.stderr
    assert not (tmp_path / "evidence").exists(), "no evidence may be published for a failed fetch"
    db = tmp_path / "warehouse.duckdb"
    if db.exists():
        assert results(tmp_path) == []
    texts = json.dumps(messages)
    # (issue #15) the first GitHub request of a night is the org-wide count batch of github_repositories
    assert "github_repositories" in texts, "the pipeline-failure alert names the failed task"
    assert "ghp_revoked" not in texts
    assert "ghp_revoked" not in proc.stdout + proc.stderr, "the rejected token must not be printed either"


def test_report_renders_in_headless_chromium(demo_run, tmp_path):
    """The demo's report loads in a real browser, offline, without console errors, showing the counts."""
    browser = require_chromium()
    report = demo_run["data"] / "evidence" / DATE / "report.html"
    proc = subprocess.run(
        [browser, *FLAGS, "--host-resolver-rules=MAP * ~NOTFOUND", f"--user-data-dir={tmp_path / 'profile'}",
         "--enable-logging=stderr", "--v=0", "--dump-dom", report.as_uri()],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    dom = proc.stdout
    console = [line for line in proc.stderr.splitlines() if "CONSOLE" in line or "Uncaught" in line]
    assert not console, "\n".join(console)
    assert "SOC 2 CC8.1 change management report" in dom
    counts = {}
    for _change, control, status, _detail in demo_run["first_rows"]:
        counts.setdefault(control, {}).setdefault(status, 0)
        counts[control][status] += 1
    import re

    for control, by_status in counts.items():
        # a control with failures links to them; one without (e.g. CC8.1-14/15 on the demo) is plain text
        row = re.search(rf"<tr><td>(?:<a [^>]*>)?{re.escape(control)}(?:</a>)?</td>.*?</tr>", dom, re.S)
        assert row, f"{control} missing from the rendered headline table"
        cells = re.findall(r"<td[^>]*>([^<]*)</td>", row.group(0))  # name, rate, pass, fail, pending, n/a
        want = [str(by_status.get(s, 0)) for s in ("pass", "fail", "pending", "not_applicable")]
        assert cells[-4:] == want, (control, cells)
