"""Evidence folder, manifest, reproducible archive, no-overwrite numbering and verification."""

from __future__ import annotations

import calendar
import csv
import gzip
import hashlib
import io
import json
import socket
import subprocess
import sys
import tarfile
from datetime import UTC, datetime
from pathlib import Path

import pytest
from ccwatch.common.changes import change_folder
from ccwatch.controls.catalogue import CONTROL_NAMES
from ccwatch.publish.evidence.archive import build_archive
from ccwatch.publish.evidence.verify import verify_archive
from ccwatch.publish.evidence.write import write_evidence

from tests.helpers import outputs_world as D
from tests.helpers.paths import ROOT

ENDPOINTS = {
    "github": f"https://x-access-token:{D.SECRET}@api.github.com/?access_token={D.SECRET}",
    "jira": "https://acme.atlassian.net",
    "slack": "https://slack.com/api/",
}


def _write(home: Path, con=None, **kw):
    con = con or D.build()
    return write_evidence(con, D.settings(), D.AS_OF, home, D.gx_results(), "<html>report</html>\n", ENDPOINTS, **kw)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    home = tmp_path_factory.mktemp("home")
    return _write(home)


def _read_json(path: Path):
    return json.loads(path.read_text(encoding="utf-8"))


def test_layout_and_counts(run):
    d = run.directory
    assert d.name == "2026-11-25" and d.parent.name == "evidence"
    for name in ("control_results.csv", "population.csv", "gx_validation.json", "report.html", "POLICY.md",
                 "README.txt", "manifest.json", "SHA256SUMS"):
        assert (d / name).is_file(), name
    assert run.archive.name == "ccwatch-evidence-2026-11-25.tar.gz" and not run.numbered
    assert run.files == sum(1 for p in d.rglob("*") if p.is_file())
    assert (d / "report.html").read_text() == "<html>report</html>\n"
    assert _read_json(d / "gx_validation.json") == D.gx_results()


def test_control_results_csv_is_this_date_sorted(run):
    rows = list(csv.DictReader((run.directory / "control_results.csv").open(encoding="utf-8")))
    assert list(rows[0]) == ["as_of", "change_id", "repo", "control_id", "status", "detail", "exception"]
    assert {r["exception"] for r in rows} == {""}, "no register: no row carries an exception"
    assert len(rows) == 11 * 3 + 4
    assert {r["as_of"] for r in rows} == {"2026-11-25T00:00:00Z"}
    keys = [(r["change_id"], r["control_id"]) for r in rows]
    assert keys == sorted(keys)
    hostile = next(r for r in rows if r["change_id"] == "acme/payments-api#13" and r["control_id"] == "CC8.1-01")
    assert hostile["detail"].endswith(D.HOSTILE)  # data kept verbatim in CSV (quoted, not altered)


def test_population_csv(run):
    rows = list(csv.DictReader((run.directory / "population.csv").open(encoding="utf-8")))
    assert list(rows[0])[:12] == ["change_id", "repo", "number", "sha", "title", "author", "merged_at",
                                  "merged_by", "ticket_key", "deployed_at", "deployer", "category"]
    assert [r["change_id"] for r in rows] == ["acme/payments-api#12", "acme/payments-api#13",
                                              f"acme/web-frontend@{D.PUSH}"]
    r12 = rows[0]
    assert (r12["number"], r12["sha"], r12["merged_at"], r12["deployed_at"], r12["ticket_key"]) == (
        "12", D.M12, "2026-11-20T10:00:00Z", "2026-11-20T12:00:00Z", "PAY-7")
    assert rows[1]["title"] == D.HOSTILE
    assert rows[2]["change_kind"] == "direct_push" and rows[2]["number"] == ""


def test_change_folders_hold_raw_evidence(run):
    ch = run.directory / "changes"
    assert sorted(p.name for p in ch.iterdir()) == sorted(
        ["acme__payments-api__pr-12", "acme__payments-api__pr-13", f"acme__web-frontend__push-{D.PUSH}",
         "acme__payments-api", "acme__web-frontend"])
    pr12 = ch / "acme__payments-api__pr-12"
    pull = _read_json(pr12 / "pull.json")
    assert pull["kind"] == "pull" and pull["url"] == "https://api.github.com/repos/acme/payments-api/pulls/12"
    assert pull["fetched_at"] == "2026-11-25T00:05:00Z" and pull["payload"]["merged_by"]["login"] == "bob-rev"
    assert _read_json(pr12 / "check_runs.json")["payload"][0]["head_sha"] == D.H12
    assert _read_json(pr12 / "ticket_changelog.json")["payload"][0]["items"][0]["toString"] == "Approved"
    deps = {e["environment"]: e for e in _read_json(pr12 / "deployments.json")}
    # failed 3001 (merge commit), then successful 3002 (later commit); not 3003 (after the first success)
    # nor 3009 (created after the as-of time)
    assert [d["deployment"]["id"] for d in deps["production"]["deployments"]] == [3001, 3002]
    assert deps["production"]["deployments"][1]["statuses"]["payload"][0]["state"] == "success"
    assert [d["deployment"]["id"] for d in deps["staging"]["deployments"]] == [2001]
    summary = _read_json(pr12 / "change.json")
    assert summary["facts"]["merged_at"] == "2026-11-20T10:00:00Z"
    assert {r["control_id"]: r["status"] for r in summary["control_results"]}["CC8.1-03"] == "fail"
    assert summary["not_found"] == []

    pr13 = ch / "acme__payments-api__pr-13"
    assert _read_json(pr13 / "ticket_missing.json")["status_code"] == 404
    s13 = _read_json(pr13 / "change.json")
    assert f"github check_runs acme/payments-api@{D.H13}" in s13["not_found"]
    assert any("PAY-8" in m for m in s13["not_found"])
    assert _read_json(pr13 / "deployments.json")[0]["deployments"] == []

    push = ch / f"acme__web-frontend__push-{D.PUSH}"
    assert _read_json(push / "commit.json")["payload"]["sha"] == D.PUSH
    assert _read_json(push / "commit_pulls.json")["payload"] == []

    repo = ch / "acme__payments-api"
    assert _read_json(repo / "branch_protection.json")["status_code"] == 404
    assert _read_json(repo / "rulesets.json")[0]["payload"]["enforcement"] == "active"
    assert _read_json(repo / "environments.json")[0]["payload"]["name"] == "production"
    assert _read_json(repo / "activity.json")["payload"][0]["activity_type"] == "pr_merge"  # (r2) CC8.1-14


def test_change_folder_names_are_safe():
    assert change_folder("acme/api#12") == "acme__api__pr-12"
    assert change_folder("acme/api@" + "a" * 40) == "acme__api__push-" + "a" * 40
    assert change_folder("../../etc/passwd") == "__..__etc__passwd"
    assert "/" not in change_folder("a/b/c#1") and not change_folder(".x/y").startswith(".")


def test_manifest_contents(run):
    d = run.directory
    m = _read_json(d / "manifest.json")
    files = {f["path"]: f for f in m["files"]}
    on_disk = sorted(p.relative_to(d).as_posix() for p in d.rglob("*") if p.is_file())
    assert sorted(files) == [p for p in on_disk if p != "manifest.json"]
    for rel, f in files.items():
        data = (d / rel).read_bytes()
        assert f["sha256"] == hashlib.sha256(data).hexdigest() and f["size"] == len(data)
    assert m["as_of"] == "2026-11-25T00:00:00Z" and m["evidence_date"] == "2026-11-25"
    v = m["versions"]
    assert v["ccwatch"] == "0.1.0" and v["apache-airflow"] and v["great-expectations"] and v["duckdb"]
    assert m["config"] == {"file": "ccwatch.yaml", "sha256": D.settings().sha256, "path": "config/ccwatch.yaml"}
    config = (d / "config" / "ccwatch.yaml").read_bytes()
    assert config == Path(D.settings().source_path).read_bytes()
    assert hashlib.sha256(config).hexdigest() == m["config"]["sha256"]
    assert m["endpoints"] == {"github": "https://api.github.com/", "jira": "https://acme.atlassian.net",
                              "slack": "https://slack.com/api/"}
    assert m["counts"]["control_results"] == 37 and m["counts"]["statuses"]["fail"] == 5


def test_manifest_trust_fields(run):
    """(r2) generated_at, run, fetched, previous, signature, timestamp: plain Python knows no DAG run."""
    m = _read_json(run.directory / "manifest.json")
    assert m["manifest_version"] == 2
    generated = datetime.strptime(m["generated_at"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    assert abs((datetime.now(UTC) - generated).total_seconds()) < 600, "the wall clock, not the as-of time"
    r = m["run"]
    assert (r["dag_id"], r["run_id"], r["try_number"]) == (None, None, None)
    assert r["host"] == socket.gethostname() and r["ccwatch_version"] == "0.1.0"
    head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True)
    if head.returncode == 0:
        assert r["source_revision"] == head.stdout.strip() and r["source_revision_from"] == "git"
        assert isinstance(r["source_modified"], bool)
    fetched = {p["fetched_at"] for f in run.directory.rglob("changes/*/*.json")
               for p in [_read_json(f)] if isinstance(p, dict) and p.get("fetched_at")}
    assert m["fetched"] == {"earliest": min(fetched), "latest": max(fetched)}
    assert m["previous"] is None, "the first archive of this home"
    assert m["signature"]["status"] == "unsigned" and m["timestamp"]["status"] == "none"
    assert not (run.directory / "manifest.json.sig").exists() and not (run.directory / "manifest.json.tsr").exists()
    assert run.manifest_sha256 == hashlib.sha256((run.directory / "manifest.json").read_bytes()).hexdigest()


def test_no_token_anywhere(run):
    secret = D.SECRET.encode()
    for p in run.directory.rglob("*"):
        if p.is_file():
            assert secret not in p.read_bytes(), p
    with tarfile.open(run.archive) as tar:
        for m in tar.getmembers():
            if m.isfile():
                assert secret not in tar.extractfile(m).read(), m.name


def test_policy_and_readme(run):
    policy = (run.directory / "POLICY.md").read_text()
    for needle in ("`acme/payments-api`", "`main`", "`production`", "`staging`", "`alice@acme.example`",
                   "`cto@acme.example`", "`ops-dave`", "within 72 hours", "within 14 days", "`standard-change`",
                   "`Emergency Change`", D.settings().sha256):
        assert needle in policy, needle
    readme = (run.directory / "README.txt").read_text()
    for cid, name in CONTROL_NAMES.items():
        assert f"**{cid} {name}**" in policy and f"{cid} {name}" in readme
    assert "sha256sum -c SHA256SUMS" in readme and "manifest.json" in readme
    # the CSVs keep audited text verbatim: the reader is told how to open them without formulas
    assert "= + - @" in readme and "as Text" in readme


def test_archive_members_are_normalised(run):
    raw = run.archive.read_bytes()
    epoch = calendar.timegm((2026, 11, 25, 0, 0, 0))
    assert int.from_bytes(raw[4:8], "little") == epoch  # gzip header MTIME
    assert raw[3] & 0x08 == 0  # no original file name stored
    with tarfile.open(run.archive) as tar:
        members = tar.getmembers()
    names = [m.name for m in members]
    assert names == sorted(names) and names[0] == "2026-11-25"
    assert all(m.uid == 0 and m.gid == 0 and m.uname == "" and m.mtime == epoch for m in members)
    files = {m.name[len("2026-11-25/"):] for m in members if m.isfile()}
    assert files == {p.relative_to(run.directory).as_posix() for p in run.directory.rglob("*") if p.is_file()}


GEN = "2026-11-25T02:00:00.000000Z"  # a pinned wall clock: manifest.json "generated_at" differs per run by design


def test_archive_is_reproducible(tmp_path):
    a = _write(tmp_path / "a", generated_at=GEN)
    b = _write(tmp_path / "b", generated_at=GEN)
    assert a.archive.read_bytes() == b.archive.read_bytes()
    assert a.sha256 == b.sha256 == hashlib.sha256(a.archive.read_bytes()).hexdigest()


def test_runs_differ_only_in_generated_at_and_each_archive_is_its_folders(tmp_path):
    """Without a pinned clock two runs of the same data differ in manifest.json's generated_at (and so in
    the manifest's and the archive's hashes) and in nothing else; each archive is rebuilt byte for byte
    from its folder."""
    a, b = _write(tmp_path / "a"), _write(tmp_path / "b")
    ma, mb = (_read_json(x.directory / "manifest.json") for x in (a, b))
    assert ma["generated_at"] != mb["generated_at"] and a.sha256 != b.sha256
    assert {k: v for k, v in ma.items() if k != "generated_at"} == {k: v for k, v in mb.items() if k != "generated_at"}
    for res in (a, b):
        rebuilt = tmp_path / f"{res.directory.parent.parent.name}.tar.gz"
        build_archive(res.directory, "2026-11-25", D.AS_OF, rebuilt)
        assert rebuilt.read_bytes() == res.archive.read_bytes()


def test_rerun_never_overwrites_and_numbers(tmp_path):
    con = D.build()
    first = _write(tmp_path, con, generated_at=GEN)
    before = first.archive.read_bytes()
    same = _write(tmp_path, con, generated_at=GEN)
    assert same.numbered and same.archive.name == "ccwatch-evidence-2026-11-25.1.tar.gz"
    assert same.archive.read_bytes() == before  # same inputs -> same bytes, under a new name
    # the data changes (a rerun after a fix): new numbered archive, the first one untouched
    con.execute("DELETE FROM change_facts WHERE change_id = 'acme/payments-api#13'")
    third = _write(tmp_path, con, generated_at=GEN)
    assert third.archive.name == "ccwatch-evidence-2026-11-25.2.tar.gz" and third.numbered
    assert first.archive.read_bytes() == before and third.archive.read_bytes() != before
    # the folder holds the latest run only (no stale change folder)
    assert not (third.directory / "changes" / "acme__payments-api__pr-13").exists()
    assert sorted(p.name for p in (tmp_path / "evidence").iterdir()) == [
        "2026-11-25", "ccwatch-evidence-2026-11-25.1.tar.gz", "ccwatch-evidence-2026-11-25.2.tar.gz",
        "ccwatch-evidence-2026-11-25.tar.gz"]
    assert verify_archive(third.archive) == [] and verify_archive(third.directory) == []


def _rewrite(src: Path, dst: Path, change=None, drop=None, add=None):
    """Copy an archive member by member, tampering with it on the way."""
    out = io.BytesIO()
    with tarfile.open(src) as tin, tarfile.open(fileobj=out, mode="w") as tout:
        for m in tin.getmembers():
            if drop and m.name.endswith(drop):
                continue
            data = tin.extractfile(m).read() if m.isfile() else None
            if change and m.name.endswith(change):
                data = data.replace(b"fail", b"pass")
                m.size = len(data)
            tout.addfile(m, io.BytesIO(data) if data is not None else None)
        if add:
            info = tarfile.TarInfo(f"2026-11-25/{add}")
            info.size = 5
            tout.addfile(info, io.BytesIO(b"extra"))
    dst.write_bytes(gzip.compress(out.getvalue()))
    return dst


def test_verify_detects_modified_missing_added(run, tmp_path):
    assert verify_archive(run.archive) == []
    assert verify_archive(run.directory) == []
    mod = verify_archive(_rewrite(run.archive, tmp_path / "m.tar.gz", change="control_results.csv"))
    assert len(mod) == 1 and mod[0].startswith("modified: control_results.csv")
    miss = verify_archive(_rewrite(run.archive, tmp_path / "d.tar.gz", drop="pr-12/pull.json"))
    assert miss == ["missing: changes/acme__payments-api__pr-12/pull.json (listed in the manifest, absent)"]
    added = verify_archive(_rewrite(run.archive, tmp_path / "a.tar.gz", add="changes/extra.json"))
    assert added == ["added: changes/extra.json (not listed in the manifest)"]
    nomanifest = verify_archive(_rewrite(run.archive, tmp_path / "n.tar.gz", drop="/manifest.json"))
    assert nomanifest == ["missing: manifest.json"]
    (tmp_path / "junk.tar.gz").write_bytes(b"not an archive")
    assert verify_archive(tmp_path / "junk.tar.gz")[0].startswith("unreadable archive")


def test_readme_verification_recipe_works(run, tmp_path):
    """The stdlib-only snippet of README.txt finds nothing on a good copy and flags a modified file."""
    with tarfile.open(run.archive) as tar:
        tar.extractall(tmp_path, filter="data")
    folder = tmp_path / "2026-11-25"
    readme = (folder / "README.txt").read_text()
    snippet = readme.split("python3 - <<'PY'\n", 1)[1].split("\nPY\n", 1)[0]
    ok = subprocess.run([sys.executable, "-c", snippet], cwd=folder, capture_output=True, text=True, check=True)
    assert ok.stdout.strip() == f"checked {run.files - 1} files"
    sums = subprocess.run(["sha256sum", "-c", "--quiet", "SHA256SUMS"], cwd=folder, capture_output=True, text=True)
    assert sums.returncode == 0, sums.stdout + sums.stderr
    (folder / "population.csv").write_text("tampered\n")
    bad = subprocess.run([sys.executable, "-c", snippet], cwd=folder, capture_output=True, text=True, check=True)
    assert "modified: population.csv" in bad.stdout


def test_graphql_raw_kinds_are_change_evidence(tmp_path):
    """A PR fetched as a GraphQL PullRequest node (REST check runs kept: an overflow piece), a direct
    push's GraphQL history node and a deployment's GraphQL statuses are the change's evidence
    files (docs/OUTPUTS.md); the deployment list stops at the first success as with REST."""
    pr, f = "acme/payments-api", "2026-11-25T00:05:00"
    gql_url = "https://api.github.com/graphql"
    con = D.build()
    con.execute("DELETE FROM raw_payloads WHERE (kind IN ('pull', 'reviews', 'statuses') AND natural_key IN (?, ?)) "
                "OR kind = 'commit_pulls' OR (kind = 'deployment_statuses' AND natural_key = ?)",
                [f"{pr}#12", f"{pr}@{D.H12}", f"{pr}/deployments/3002"])
    node = {"number": 12, "headRefOid": D.H12, "mergedAt": "2026-11-20T10:00:00Z",
            "author": {"__typename": "User", "login": "carol-dev"},
            "reviews": {"pageInfo": {"hasNextPage": False, "endCursor": None}, "nodes": []}}
    history = {"oid": D.PUSH, "associatedPullRequests": {"nodes": []}}
    dep = {"id": "DE_kwDOAbc", "databaseId": 3002,
           "statuses": {"pageInfo": {"hasNextPage": False, "endCursor": None},
                        "nodes": [{"id": "DES_kwDOAbc", "state": "SUCCESS", "createdAt": "2026-11-20T12:05:00Z",
                                   "creator": {"__typename": "Bot", "login": "github-actions"}}]}}
    con.executemany("INSERT INTO raw_payloads VALUES (?, ?, ?, ?, ?, NULL, 200, ?)", [
        ("github", "gql_pull", f"{pr}#12", gql_url + "#CcwatchMergedPulls", f, json.dumps(node)),
        ("github", "gql_commit_pulls", f"acme/web-frontend@{D.PUSH}", gql_url + "#CcwatchBranchHistory", f,
         json.dumps(history)),
        ("github", "gql_deployment_statuses", f"{pr}/deployments/3002", gql_url + "#CcwatchDeploymentStatuses", f,
         json.dumps(dep))])
    ch = _write(tmp_path, con).directory / "changes"
    pr12 = ch / "acme__payments-api__pr-12"
    assert not (pr12 / "pull.json").exists() and not (pr12 / "reviews.json").exists()
    assert _read_json(pr12 / "pull.graphql.json")["payload"]["headRefOid"] == D.H12
    assert _read_json(pr12 / "check_runs.json")["payload"][0]["head_sha"] == D.H12  # REST piece, found via headRefOid
    deps = {e["environment"]: e for e in _read_json(pr12 / "deployments.json")}
    assert [d["deployment"]["id"] for d in deps["production"]["deployments"]] == [3001, 3002]
    assert deps["production"]["deployments"][1]["statuses"] is None
    assert deps["production"]["deployments"][1]["statuses_graphql"]["file"] == "deployment_statuses.graphql.json"
    assert [r["natural_key"] for r in _read_json(pr12 / "deployment_statuses.graphql.json")] == [
        f"{pr}/deployments/3002"]
    summary = _read_json(pr12 / "change.json")
    assert summary["not_found"] == []
    assert "pull.graphql.json" in summary["evidence_files"]
    push = ch / f"acme__web-frontend__push-{D.PUSH}"
    assert _read_json(push / "commit_pulls.graphql.json")["kind"] == "gql_commit_pulls"
    assert _read_json(push / "change.json")["not_found"] == []


# --- the exceptions register (r2): exceptions.csv, config/exceptions.yaml, the exception column ----


@pytest.fixture(scope="module")
def run_with_register(tmp_path_factory):
    con = D.build()
    register = D.set_exceptions(con)
    return _write(tmp_path_factory.mktemp("home_exc"), con), register


def test_without_a_register_exceptions_csv_is_a_header_and_there_is_no_register_file(run):
    text = (run.directory / "exceptions.csv").read_text(encoding="utf-8")
    assert text == ",".join(D_EXCEPTION_COLUMNS) + "\n"
    assert not (run.directory / "config" / "exceptions.yaml").exists()


def test_exception_column_is_set_on_the_excepted_failure_only(run_with_register):
    run, _ = run_with_register
    rows = list(csv.DictReader((run.directory / "control_results.csv").open(encoding="utf-8")))
    marked = [(r["change_id"], r["control_id"], r["status"], r["exception"]) for r in rows if r["exception"]]
    assert marked == [("acme/payments-api#12", "CC8.1-03", "fail", "EX-1")]
    summary = _read_json(run.directory / "changes" / "acme__payments-api__pr-12" / "change.json")
    by_control = {r["control_id"]: r for r in summary["control_results"]}
    assert by_control["CC8.1-03"]["status"] == "fail" and by_control["CC8.1-03"]["exception"] == "EX-1"
    assert by_control["CC8.1-01"]["exception"] is None


def test_exceptions_csv_lists_every_entry_with_its_verdict(run_with_register):
    run, _ = run_with_register
    rows = list(csv.DictReader((run.directory / "exceptions.csv").open(encoding="utf-8")))
    assert list(rows[0]) == list(D_EXCEPTION_COLUMNS)
    got = [(r["entry"], r["id"], r["change_id"], r["repo"], r["status"], r["reason"], r["result_status"],
            r["applied"]) for r in rows]
    assert got == [("0", "EX-1", "acme/payments-api#12", "", "valid", "", "fail", "true"),
                   ("1", "EX-2", "acme/payments-api#13", "", "invalid", "expired", "fail", "false"),
                   ("2", "EX-3", "", "acme/payments-api", "invalid", "unknown_approver", "fail", "false")]
    assert rows[0]["approved_at"] == "2026-11-21T09:00:00Z" and rows[0]["expires"] == "2027-02-21T00:00:00Z"
    assert rows[1]["justification"].startswith('=HYPERLINK("http://evil.example")')  # verbatim (CSV-quoted)
    assert {r["as_of"] for r in rows} == {"2026-11-25T00:00:00Z"}


def test_the_register_file_travels_byte_for_byte_and_the_manifest_covers_both(run_with_register):
    run, register = run_with_register
    d = run.directory
    assert (d / "config" / "exceptions.yaml").read_bytes() == register.content
    files = {f["path"]: f for f in _read_json(d / "manifest.json")["files"]}
    for rel in ("exceptions.csv", "config/exceptions.yaml"):
        assert files[rel]["sha256"] == hashlib.sha256((d / rel).read_bytes()).hexdigest()
    sums = (d / "SHA256SUMS").read_text()
    assert "  exceptions.csv\n" in sums and "  config/exceptions.yaml\n" in sums
    with tarfile.open(run.archive) as tar:
        members = {m.name: m for m in tar.getmembers()}
    assert members["2026-11-25/config"].isdir()
    assert tar_bytes(run.archive, "2026-11-25/config/exceptions.yaml") == register.content
    assert verify_archive(run.archive) == [] and verify_archive(d) == []


def test_the_register_archived_is_the_one_evaluated_not_the_file_now(run_with_register, tmp_path):
    _, register = run_with_register
    con = D.build()
    reg = D.set_exceptions(con)
    Path(reg.path).write_text("- tampered\n", encoding="utf-8")  # the file changed after evaluation
    res = _write(tmp_path, con)
    assert (res.directory / "config" / "exceptions.yaml").read_bytes() == register.content


def tar_bytes(archive: Path, name: str) -> bytes:
    with tarfile.open(archive) as tar:
        return tar.extractfile(name).read()


D_EXCEPTION_COLUMNS = ("as_of", "entry", "id", "change_id", "repo", "control_id", "justification", "approved_by",
                       "approved_at", "expires", "status", "reason", "detail", "result_status", "applied")


def test_policy_names_the_app_a_required_check_is_pinned_to():
    """(r2) POLICY.md states which app must report a pinned required check."""
    from dataclasses import replace

    from ccwatch.publish.policy import control_statements, render_policy
    from ccwatch.settings import load_settings

    from tests.helpers.paths import CONFIG

    s = load_settings(CONFIG)
    pay = replace(s.github.repositories[0], required_checks=("test", "build"),
                  required_check_apps=(("build", "github-actions"),))
    s = replace(s, github=replace(s.github, repositories=(pay, *s.github.repositories[1:])))
    assert "`test`, `build` (app `github-actions`)" in render_policy(s, datetime(2026, 11, 25, tzinfo=UTC))
    assert "counts only when that app reported it" in control_statements(s)["CC8.1-05"]


def test_jira_field_list_is_archived_once_with_its_fetch_time(tmp_path):
    """(issue #15) Jira's field list (raw kind ``fields``), from which every ticket_fields.json takes its
    names, is one top-level file: the record as fetched, with the fetch time the change folders leave out."""
    con = D.build()
    assert not (_write(tmp_path / "none", con=con).directory / "jira_field_list.json").exists()
    con.execute("INSERT INTO raw_payloads VALUES ('jira', 'fields', 'fields', 'https://acme.atlassian.net/rest/api/2/field',"
                " TIMESTAMP '2026-11-25 00:04:00', NULL, 200, '[{\"id\": \"customfield_10001\", \"name\": \"Why\"}]')")
    res = _write(tmp_path / "with", con=con)
    rec = _read_json(res.directory / "jira_field_list.json")
    assert rec["kind"] == "fields" and rec["fetched_at"] == "2026-11-25T00:04:00Z"
    assert rec["payload"] == [{"id": "customfield_10001", "name": "Why"}]
    assert "jira_field_list.json" in {f["path"] for f in _read_json(res.directory / "manifest.json")["files"]}
    assert verify_archive(res.archive) == []
