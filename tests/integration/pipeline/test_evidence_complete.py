"""Completeness an auditor can check (CONTROLS.md r2, issue #13): the population reconciliation,
branch_history.csv, the settings history with settings_at_merge.json, and ticket_fields.json, on real
demo runs of the whole pipeline against the API double (tests/helpers/harness.py).

The independent count is GitHub search's ``issueCount`` (``CcwatchMergedCount``), which the double
answers through its schema-checked GraphQL executor by counting its own merged PRs.  The planted
mismatch is a ``drop_field`` fault that makes the double's search answer one more for the first
repository fetched (acme/payments-api: one worker fetches the repositories in config order).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from ccwatch.common.times import parse_as_of
from ccwatch.sandbox import SandboxServer
from ccwatch.settings import load_settings

from tests.helpers.harness import query, run_pipeline
from tests.helpers.paths import CONFIG, DEMO_SCENARIO

DAY, NEXT = "2026-11-25", "2026-11-26"
SCENARIO = json.loads(DEMO_SCENARIO.read_text(encoding="utf-8"))
PAY = "acme/payments-api"


def _csv(path: Path) -> list[dict]:
    with path.open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def _merged_in_window(repo: str, lo: str, hi: str) -> int:
    pulls = SCENARIO["github"]["repos"][repo]["pulls"]
    return sum(1 for p in pulls if p.get("merged_at") and p.get("base", "main") == "main" and lo <= p["merged_at"] <= hi)


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """Two nights of the demo, then a rerun of the first (settings history: only that date replaced)."""
    home = tmp_path_factory.mktemp("complete") / "home"
    settings = load_settings(CONFIG)
    runs = {}
    with SandboxServer(SCENARIO) as server:
        for day in (DAY, NEXT):
            run = run_pipeline(settings, server, parse_as_of(day), home)
            assert run.error is None, f"{run.failed_stage}: {run.error}"
            runs[day] = run
        history_before = query(home, "SELECT * FROM settings_history ORDER BY ALL")
        rerun = run_pipeline(settings, server, parse_as_of(DAY), home)
        assert rerun.error is None, f"{rerun.failed_stage}: {rerun.error}"
        messages = list(server.slack_messages)
    return {"home": home, "runs": runs, "history_before": history_before, "messages": messages,
            "folder": home / "evidence" / DAY}


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    """The demo with the double's search answering one more merged PR for acme/payments-api."""
    home = tmp_path_factory.mktemp("mismatch") / "home"
    settings = load_settings(CONFIG)
    true_count = _merged_in_window(PAY, "2026-08-27T00:00:00Z", "2026-11-25T00:00:00Z")
    # (issue #15) the counts of all repositories come in one aliased batch: c<i> is the i-th configured one
    alias = f"c{[rc.repo for rc in settings.github.repositories].index(PAY)}"
    fault = {"service": "github", "path": "graphql$", "method": "POST", "graphql": {"operationName": "CcwatchMergedCounts"},
             "mode": "drop_field", "field": f"data.{alias}.issueCount", "to": "value", "value": true_count + 1,
             "times": 1}
    with SandboxServer(dict(SCENARIO, faults=[fault])) as server:
        run = run_pipeline(settings, server, parse_as_of(DAY), home)
        messages = list(server.slack_messages)
    return {"home": home, "run": run, "messages": messages, "folder": home / "evidence" / DAY,
            "true_count": true_count}


# ------------------------------------------------------------------------------- reconciliation
def test_the_reconciliation_matches_on_the_demo(demo):
    folder = demo["folder"]
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    block = manifest["reconciliation"]
    assert block["status"] == "match" and block["file"] == "reconciliation.csv"
    rows = _csv(folder / "reconciliation.csv")
    assert list(rows[0]) == ["repo", "branch", "window", "search_count", "population_count", "direct_pushes", "match",
                             "search_query", "searched_at", "detail"]
    assert {r["repo"] for r in rows} == {"acme/payments-api", "acme/web-frontend"}
    population = _csv(folder / "population.csv")
    for r in rows:
        assert r["match"] == "true" and r["window"] == "2026-08-27T00:00:00Z..2026-11-25T00:00:00Z"
        assert r["search_query"] == (f"repo:{r['repo']} is:pr is:merged base:main "
                                     "merged:2026-08-27T00:00:00+00:00..2026-11-25T00:00:00+00:00")
        prs = [p for p in population if p["repo"] == r["repo"] and p["change_kind"] == "pr"]
        pushes = [p for p in population if p["repo"] == r["repo"] and p["change_kind"] == "direct_push"]
        assert int(r["search_count"]) == int(r["population_count"]) == len(prs)
        assert int(r["direct_pushes"]) == len(pushes)
        # independent of the connector: the double counted its own scenario data
        assert int(r["search_count"]) == _merged_in_window(r["repo"], "2026-08-27T00:00:00Z", "2026-11-25T00:00:00Z")
    assert {(x["repo"], x["match"]) for x in block["repositories"]} == {(r["repo"], True) for r in rows}
    # the raw answer is stored as fetched
    (payload,) = query(demo["home"], "SELECT payload FROM raw_payloads WHERE kind = 'merged_count' "
                                     "AND natural_key = 'acme/payments-api:main'")[0]
    assert json.loads(payload)["data"]["search"]["issueCount"] == int(rows[0]["search_count"])
    report = (folder / "report.html").read_text(encoding="utf-8")
    assert 'id="reconciliation"' in report and "reconciliation-alert" not in report
    assert not any("RECONCILIATION" in json.dumps(m) for m in demo["messages"])


def test_a_planted_mismatch_is_reported_loudly(planted, demo):
    run = planted["run"]
    assert run.error is None, f"{run.failed_stage}: {run.error}"  # the evidence of the mismatch is published
    folder = planted["folder"]
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["reconciliation"]["status"] == "mismatch"
    rows = {r["repo"]: r for r in _csv(folder / "reconciliation.csv")}
    pay = rows[PAY]
    assert pay["match"] == "false"
    assert int(pay["search_count"]) == planted["true_count"] + 1 == int(pay["population_count"]) + 1
    assert "MISMATCH" in pay["detail"] and "1 more in the search" in pay["detail"]
    assert rows["acme/web-frontend"]["match"] == "true"
    report = (folder / "report.html").read_text(encoding="utf-8")
    assert 'id="reconciliation-alert"' in report and "Population reconciliation FAILED" in report
    assert "MISMATCH" in report
    (msg,) = planted["messages"]
    assert "POPULATION RECONCILIATION FAILED" in msg["text"] and PAY in msg["text"]
    assert any("POPULATION RECONCILIATION FAILED" in json.dumps(b) for b in msg.get("blocks") or [])
    # the controls are not touched: the same results as the clean run of the same date
    sql = "SELECT change_id, control_id, status, detail FROM control_results WHERE as_of = '2026-11-25' ORDER BY ALL"
    assert query(planted["home"], sql) == query(demo["home"], sql)
    assert query(planted["home"], "SELECT repo FROM reconciliation WHERE NOT \"match\"") == [(PAY,)]


# ------------------------------------------------------------------------------- branch history
def test_branch_history_lets_an_auditor_reperform_deployment_contains_change(demo):
    folder = demo["folder"]
    rows = _csv(folder / "branch_history.csv")
    assert list(rows[0]) == ["repo", "branch", "position", "sha", "parent_sha", "committed_at", "reached_at",
                             "change_kind", "pr_number", "change_id", "deployed_here", "carried_by"]
    population = {p["change_id"]: p for p in _csv(folder / "population.csv")}
    assert {r["change_id"] for r in rows} == set(population)  # every change of the window has its commit(s)
    by_repo: dict[str, list[dict]] = {}
    for r in rows:
        by_repo.setdefault(r["repo"], []).append(r)
        p = population[r["change_id"]]
        assert r["change_kind"] == p["change_kind"] and r["reached_at"] == p["merged_at"]
        assert (r["pr_number"] == p["number"]) if r["change_kind"] == "pr" else (r["pr_number"] == "")
    checked = 0
    for repo, line in by_repo.items():
        # first-parent order: each commit's parent is the previous one listed (a line with no gap in the window)
        for a, b in zip(line, line[1:], strict=False):
            assert int(b["position"]) > int(a["position"])
        pos = {r["sha"]: int(r["position"]) for r in line}
        dep_sha: dict[str, str] = {}
        for r in line:
            for d in r["deployed_here"].split():
                dep_sha[d] = r["sha"]
        # re-perform: a deployment carries a change when its sha is the change's commit or later on the line
        for r in line:
            for d in r["carried_by"].split():
                if d in dep_sha:
                    assert pos[dep_sha[d]] >= pos[r["sha"]], (repo, r["change_id"], d)
                    checked += 1
    assert checked > 20
    # and agrees with the change folder's deployments.json (the definition the controls use)
    one = next(r for r in rows if r["carried_by"])
    cid = one["change_id"]
    folder_name = cid.replace("/", "__").replace("#", "__pr-").replace("@", "__push-")
    deps = json.loads((folder / "changes" / folder_name / "deployments.json").read_text(encoding="utf-8"))
    in_folder = sorted(f"{env['environment']}:{d['deployment']['id']}" for env in deps for d in env.get("deployments", []))
    assert sorted(one["carried_by"].split()) == in_folder


# ------------------------------------------------------------------------------ settings history
def test_settings_history_is_appended_nightly_and_a_rerun_replaces_only_its_date(demo):
    home = demo["home"]
    days = query(home, "SELECT CAST(as_of AS DATE)::VARCHAR, count(*) FROM settings_history GROUP BY ALL ORDER BY 1")
    assert [d for d, _ in days] == [DAY, NEXT] and all(n >= 4 for _, n in days)
    kinds = {k for (k,) in query(home, "SELECT DISTINCT kind FROM settings_history")}
    assert {"branch_protection", "branch_rules", "environment"} <= kinds
    after = query(home, "SELECT * FROM settings_history ORDER BY ALL")
    before = demo["history_before"]
    # the rerun of DAY left NEXT's rows exactly as they were, and rewrote DAY's (a later observation)
    assert [r for r in after if str(r[0])[:10] == NEXT] == [r for r in before if str(r[0])[:10] == NEXT]
    assert len([r for r in after if str(r[0])[:10] == DAY]) == len([r for r in before if str(r[0])[:10] == DAY])
    # a 404 (no classic protection) is kept as evidence too
    assert query(home, "SELECT status_code FROM settings_history WHERE natural_key = 'acme/web-frontend:main' "
                       "AND kind = 'branch_protection' LIMIT 1") == [(404,)]


def test_each_change_folder_says_which_settings_were_in_force_at_merge(demo):
    changes = demo["folder"] / "changes"
    pr_folders = [d for d in changes.iterdir() if "__pr-" in d.name or "__push-" in d.name]
    assert pr_folders
    # a snapshot's time is the latest answer of its night; the earliest snapshot per repository
    earliest = dict(query(demo["home"], "SELECT repo, min(taken) FROM (SELECT repo, as_of, max(observed_at) AS taken "
                                        "FROM settings_history GROUP BY ALL) GROUP BY repo"))
    for d in pr_folders:
        doc = json.loads((d / "settings_at_merge.json").read_text(encoding="utf-8"))
        # every demo change was merged before the first snapshot: said, never the current settings instead
        assert doc["snapshot"] is None and "records" not in doc
        assert doc["note"].startswith("no snapshot before the merge, earliest is "
                                      f"{earliest[doc['repo']].strftime('%Y-%m-%dT%H:%M:%S')}"), doc["note"]


# ------------------------------------------------------------------------------- ticket fields
def test_ticket_fields_name_the_custom_field_ids_and_ticket_json_stays_raw(demo):
    home, changes = demo["home"], demo["folder"] / "changes"
    names = {f["id"]: f["name"] for f in SCENARIO["jira"]["fields"]}
    seen = 0
    for d in changes.iterdir():
        if not (d / "ticket.json").is_file():
            continue
        ticket = json.loads((d / "ticket.json").read_text(encoding="utf-8"))
        fields = json.loads((d / "ticket_fields.json").read_text(encoding="utf-8"))
        ids = [k for k in ticket["payload"]["fields"] if k.startswith("customfield_")]
        assert ids and all(fields["fields"][i] == names[i] for i in ids if i in names)
        assert fields["ticket"] == ticket["natural_key"] and fields["field_list"]["kind"] == "fields"
        (raw,) = query(home, "SELECT payload FROM raw_payloads WHERE source = 'jira' AND kind = 'issue' "
                             "AND natural_key = ?", [ticket["natural_key"]])[0]
        assert ticket["payload"] == json.loads(raw)  # the raw payload, unchanged (nothing mapped in it)
        seen += 1
    assert seen > 10


# --------------------------------------------------------------------------------- README.txt
# Files README.txt names that a demo folder does not hold, each with the module that writes it and the
# condition README.txt states for it ("only when ..."): a name README.txt gives must be a real file.
CONDITIONAL = {
    "pull.json": "publish/evidence/contents.py", "reviews.json": "publish/evidence/contents.py",
    "check_runs.json": "publish/evidence/contents.py", "statuses.json": "publish/evidence/contents.py",
    "commit_pulls.json": "publish/evidence/contents.py", "rulesets.json": "publish/evidence/contents.py",
    "repo.json": "publish/evidence/contents.py", "branch.json": "publish/evidence/contents.py",
    "config/exceptions.yaml": "publish/evidence/folder.py",
    "manifest.json.sig": "publish/evidence/signing.py", "manifest.json.tsr": "publish/evidence/timestamp.py",
}
# names of files outside the folder: the archive itself and what the auditor obtains from the company
OUTSIDE = {"ccwatch-evidence-<date>.tar.gz", "ccwatch-evidence-<date>.1.tar.gz", "ccwatch-signing.pub.pem",
           "tsa-ca.pem"}
_NAME = r"(?<![\w<>/.-])((?:config/)?[\w<>.-]+\.(?:json|csv|txt|md|html|yaml|sig|tsr|gz|pem)|SHA256SUMS)(?![\w])"


def test_readme_describes_every_file_of_the_folder_and_names_only_real_files(demo):
    import re

    from tests.helpers.paths import ROOT

    folder = demo["folder"]
    readme = (folder / "README.txt").read_text(encoding="utf-8")
    named = set(re.findall(_NAME, readme))
    present = set()
    for p in folder.rglob("*"):
        if p.is_file():
            rel = p.relative_to(folder).as_posix()
            present.add(rel.split("/", 2)[2] if rel.startswith("changes/") else rel)
    assert present - named == set(), "files of the demo folder README.txt does not describe"
    unknown = named - present - set(CONDITIONAL) - OUTSIDE
    assert unknown == set(), "names in README.txt that are no file of the evidence"
    for name, module in CONDITIONAL.items():
        assert name in named
        src = (ROOT / "include" / "ccwatch" / module).read_text(encoding="utf-8")
        assert name.rsplit("/", 1)[-1] in src or name.split(".")[-1].upper() in src, (name, module)
    layout = readme.split("Layout", 1)[1].split("Statuses", 1)[0]
    for name in ("pull.json", "rulesets.json", "config/exceptions.yaml", "manifest.json.sig", "manifest.json.tsr"):
        block = layout[layout.index(name):][:400]
        assert "only when" in block, name


def test_auditor_md_names_only_real_evidence_files(demo):
    import re

    from tests.helpers.paths import ROOT

    doc = (ROOT / "docs" / "AUDITOR.md").read_text(encoding="utf-8")
    readme = (demo["folder"] / "README.txt").read_text(encoding="utf-8")
    evidence_names = set(re.findall(_NAME, readme))
    # every evidence-folder file AUDITOR.md names in backticks (changes/... or a top-level evidence file)
    for name in re.findall(r"`(?:changes/<[^>]+>/)?([\w.-]+\.json)`", doc):
        assert name in evidence_names or name in {"sample.json", "index.json", "packet.json"}, name
    for gone in ("`pull.json`, `reviews.json`, `check_runs.json`, `statuses.json` (of the head commit)",):
        assert gone not in doc
