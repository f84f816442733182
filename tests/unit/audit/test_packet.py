"""The auditor's evidence packet, and the command line around it."""

from __future__ import annotations

import csv
import hashlib
import json
import re
from pathlib import Path

import duckdb
import pytest
from ccwatch.audit.packet import INDEX_COLUMNS, sample_packet, write_packet
from ccwatch.audit.questions import QUESTIONS
from ccwatch.audit.sampling import draw_sample
from ccwatch.controls.catalogue import CHANGE_CONTROLS
from ccwatch.publish.evidence.verify import verify_archive

from tests.helpers import outputs_world as od
from tests.helpers import sampling_world as sd
from tests.helpers.cli import cli

PERIOD = ("2026-11-01", "2026-11-30")


@pytest.fixture
def home(tmp_path) -> Path:
    return sd.make_home(tmp_path)


def read_index(folder: Path) -> list[dict]:
    with (folder / "index.csv").open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def test_same_draw_gives_byte_identical_files_and_never_overwrites(home):
    a = sample_packet(home, od.settings(), *PERIOD, 2, 5)
    b = sample_packet(home, od.settings(), *PERIOD, 2, 5)
    assert a.directory.name == "2026-11-01_2026-11-30_seed5_n2" and not a.numbered
    assert b.directory.name == "2026-11-01_2026-11-30_seed5_n2.1" and b.numbered
    for name in ("index.csv", "sample.json", "population.tsv", "index.html", "manifest.json"):
        assert (a.directory / name).read_bytes() == (b.directory / name).read_bytes(), name
    c = sample_packet(home, od.settings(), *PERIOD, 2, 6)
    assert [r["change_id"] for r in read_index(c.directory)] != [r["change_id"] for r in read_index(a.directory)]
    assert verify_archive(a.directory) == [] and verify_archive(b.directory) == []


def test_index_and_sample_json_record_the_draw(home):
    res = sample_packet(home, od.settings(), *PERIOD, 2, 5)
    meta = json.loads((res.directory / "sample.json").read_text(encoding="utf-8"))
    s = res.sample
    assert meta["seed"] == 5 and meta["size"] == 2 and meta["period"] == {
        "from": "2026-11-01", "to": "2026-11-30", "merged_at": "whole UTC days, both inclusive"}
    assert meta["population"]["size"] == 3 == s.population_size
    assert meta["population"]["as_of_dates"] == ["2026-11-25T00:00:00Z"]
    assert meta["ccwatch_version"] and meta["config_sha256"] == od.settings().sha256
    tsv = (res.directory / "population.tsv").read_bytes()
    assert hashlib.sha256(tsv).hexdigest() == meta["population"]["sha256"] == s.period.population_hash
    assert meta["sample"] == [c["change_id"] for c in s.changes]
    rows = read_index(res.directory)
    assert list(rows[0]) == list(INDEX_COLUMNS)
    assert [r["change_id"] for r in rows] == meta["sample"] and [r["n"] for r in rows] == ["1", "2"]


def test_statuses_in_index_and_pages_match_control_results(home):
    res = sample_packet(home, od.settings(), "2026-11-01", "2026-11-30", 10, 1)  # all three
    assert res.sample.all_taken
    con = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
    stored = con.execute("SELECT change_id, control_id, status, detail FROM control_results "
                         "WHERE as_of = '2026-11-25'").fetchall()
    con.close()
    want = {(c, k): (s, d) for c, k, s, d in stored}
    rows = read_index(res.directory)
    assert len(rows) == 3
    for r in rows:
        for cid in CHANGE_CONTROLS:
            assert r[cid] == want.get((r["change_id"], cid), ("", ""))[0], (r["change_id"], cid)
        page = (res.directory / r["page"]).read_text(encoding="utf-8")
        change = json.loads((res.directory / r["page"]).with_name("change.json").read_text(encoding="utf-8"))
        for item in change["control_results"]:
            assert (item["status"], item["detail"]) == want[(r["change_id"], item["control_id"])]
            assert f'<span class="st {item["status"]}">' in page
    assert {r["change_id"] for r in rows if r["CC8.1-03"] == "fail"} == {"acme/payments-api#12"}


def test_one_page_per_sampled_change_answering_the_questions(home):
    res = sample_packet(home, od.settings(), *PERIOD, 3, 2)
    pages = sorted(res.directory.glob("changes/*/page.html"))
    assert len(pages) == 3 == len(read_index(res.directory))
    page = (res.directory / "changes/acme__payments-api__pr-12/page.html").read_text(encoding="utf-8")
    for q in QUESTIONS:
        assert q.text.replace("'", "&#x27;") in page
    # PR #12: the review question is answered "No" from CC8.1-03's failure, with the evidence line
    review = page.split("Was it peer reviewed")[1].split('<div class="q">')[0]
    assert '<span class="st no">No</span>' in review and "carol-dev COMMENTED" in review
    deploy = page.split("Who deployed it to production")[1].split('<div class="q">')[0]
    assert "Deployed to production at 2026-11-20T12:00:00Z by github-actions[bot]." in deploy
    assert "Normal change: the ticket must be approved by a change approver" in page
    assert "CC8.1-11" in page and "Branch not protected" in page  # the repository's controls, same run
    push = (res.directory / f"changes/acme__web-frontend__push-{od.PUSH}/page.html").read_text(encoding="utf-8")
    assert "Direct push: the commit reached the production branch without a pull request" in push


def test_raw_evidence_is_attached_with_its_provenance_and_no_credential(home):
    res = sample_packet(home, od.settings(), *PERIOD, 3, 2)
    folder = res.directory / "changes/acme__payments-api__pr-12"
    assert {"pull.json", "reviews.json", "check_runs.json", "statuses.json", "deployments.json",
            "ticket.json", "ticket_changelog.json", "change.json", "page.html"} <= {p.name for p in folder.iterdir()}
    pull = json.loads((folder / "pull.json").read_text(encoding="utf-8"))
    raw = next(r for r in od.raw_payloads() if r[1] == "pull" and r[2] == "acme/payments-api#12")
    assert pull["payload"] == raw[6] and pull["url"] == raw[3] and pull["fetched_at"] == "2026-11-25T00:05:00Z"
    missing = json.loads((res.directory / "changes/acme__payments-api__pr-13/change.json").read_text())
    assert any("PAY-8" in m for m in missing["not_found"])
    for path in res.directory.rglob("*"):
        if path.is_file():
            assert od.SECRET not in path.read_text(encoding="utf-8"), path
    page = (folder / "page.html").read_text(encoding="utf-8")
    for name in ("pull.json", "reviews.json", "ticket_changelog.json"):
        assert f'<a href="{name}">' in page


def test_everything_is_escaped_and_nothing_is_loaded_from_outside(home):
    res = sample_packet(home, od.settings(), *PERIOD, 3, 2)
    html_files = [res.directory / "index.html", *res.directory.glob("changes/*/page.html")]
    assert len(html_files) == 4
    for path in html_files:
        text = path.read_text(encoding="utf-8")
        assert "<script" not in text.lower() and "mallory<b>" not in text, path
        assert not re.search(r"""(?:href|src|action)\s*=\s*["']?\s*(?:[a-z][a-z0-9+.-]*:|//)""", text, re.I), path
        assert not re.search(r"<[^>]*\bsrc\s*=|url\(|@import|<link|<img|<iframe|<object", text, re.I), path
    page13 = (res.directory / "changes/acme__payments-api__pr-13/page.html").read_text(encoding="utf-8")
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page13 and "mallory&lt;b&gt;" in page13
    assert "javascript:alert(1)" in page13 and 'href="javascript' not in page13  # shown as text only
    index = (res.directory / "index.html").read_text(encoding="utf-8")
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in index


def test_manifest_covers_every_file_and_detects_tampering(home):
    res = sample_packet(home, od.settings(), *PERIOD, 2, 5)
    manifest = json.loads((res.directory / "manifest.json").read_text(encoding="utf-8"))
    listed = {f["path"] for f in manifest["files"]}
    on_disk = {p.relative_to(res.directory).as_posix() for p in res.directory.rglob("*") if p.is_file()}
    assert listed == on_disk - {"manifest.json"} and manifest["population"]["sha256"] == res.sample.period.population_hash
    page = next(res.directory.glob("changes/*/page.html"))
    page.write_text(page.read_text(encoding="utf-8").replace("pass", "PASS"), encoding="utf-8")
    problems = verify_archive(res.directory)
    assert len(problems) == 1 and problems[0].startswith("modified: changes/")


def test_progress_reports_each_page(home):
    messages: list[str] = []
    con = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
    sample = draw_sample(con, *PERIOD, 3, 9)
    write_packet(con, sample, home, od.settings(), progress=messages.append)
    con.close()
    assert [m.split(":")[0] for m in messages] == [f"writing packet page {i}/3" for i in (1, 2, 3)]


# --- the command line -------------------------------------------------------------------

COMMANDS = ("summary", "verify", "check-config", "sample", "self-audit")


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help_with_an_example(command):
    out = cli(command, "--help")
    assert out.returncode == 0, out.stderr
    assert "example" in out.stdout and f"python -m ccwatch {command}" in out.stdout


def test_top_level_help_lists_every_command():
    out = cli("--help")
    assert out.returncode == 0 and all(c in out.stdout for c in COMMANDS)


def test_cli_sample_writes_the_packet_and_reports_progress(home):
    out = cli("sample", "--from", PERIOD[0], "--to", PERIOD[1], "--size", "2", "--seed", "5", home=home)
    assert out.returncode == 0, out.stderr
    assert "writing packet page 1/2" in out.stderr and "writing packet page 2/2" in out.stderr
    folder = home / "samples" / "2026-11-01_2026-11-30_seed5_n2"
    assert f"packet:     {folder}" in out.stdout and "sample:     2 of 3 changes drawn with seed 5" in out.stdout
    # the only run (11-25 00:00) is before the end of the period: changes merged later are not in it
    assert "warning:    the latest run considered is as of 2026-11-25T00:00:00Z" in out.stdout
    closed = cli("sample", "--from", PERIOD[0], "--to", "2026-11-24", "--size", "2", "--seed", "5", home=home)
    assert closed.returncode == 0 and "warning:" not in closed.stdout, closed.stdout
    assert cli("verify", str(folder)).returncode == 0


@pytest.mark.parametrize("args, words", [
    (["--from", "2026-11-31", "--to", "2026-11-30"], ["'2026-11-31'", "not a valid date"]),
    (["--from", "01/11/2026", "--to", "2026-11-30"], ["'01/11/2026'", "YYYY-MM-DD"]),
    (["--from", "2026-11-30", "--to", "2026-11-01"], ["from 2026-11-30 is after to 2026-11-01"]),
    (["--from", "2025-01-01", "--to", "2025-01-31"], ["no change merged from 2025-01-01 to 2025-01-31",
                                                       "merged from 2026-11-20 to 2026-11-24"]),
])
def test_cli_sample_errors_exit_2_with_a_clear_message(home, args, words):
    out = cli("sample", *args, "--size", "2", "--seed", "1", home=home)
    assert out.returncode == 2 and out.stdout == ""
    assert all(w in out.stderr for w in words), out.stderr
    assert "Traceback" not in out.stderr and not (home / "samples").exists()


def test_cli_usage_errors_exit_2(home, tmp_path):
    assert cli("sample", "--from", PERIOD[0], "--to", PERIOD[1], "--size", "0", "--seed", "1",
               home=home).returncode == 2
    assert cli("sample", "--from", PERIOD[0], "--to", PERIOD[1], "--size", "3", home=home).returncode == 2
    nowhere = cli("sample", "--from", PERIOD[0], "--to", PERIOD[1], "--size", "3", "--seed", "1",
                  home=tmp_path / "empty")
    assert nowhere.returncode == 2 and "no warehouse at" in nowhere.stderr


def test_cli_verify_unknown_or_corrupt_archive_exits_2(tmp_path):
    missing = cli("verify", str(tmp_path / "ccwatch-evidence-2026-11-25.tar.gz"))
    assert missing.returncode == 2 and "no such archive or folder" in missing.stderr
    corrupt = tmp_path / "ccwatch-evidence-2026-11-24.tar.gz"
    corrupt.write_bytes(b"not a gzip file at all")
    out = cli("verify", str(corrupt))
    assert out.returncode == 2 and "not a readable ccwatch evidence archive" in out.stderr and "gzip" in out.stderr
    (tmp_path / "folder").mkdir()
    out = cli("verify", str(tmp_path / "folder"))
    assert out.returncode == 2 and "no manifest.json" in out.stderr


def test_changes_still_pending_are_flagged_everywhere_the_auditor_reads(tmp_path):
    """Results through the 10-21 run: the changes merged within 3 days before it are still pending on
    CC8.1-06/07 (their windows are open). The draw keeps them (the population is every change) and
    says so: sample.json, the note, index.csv, index.html and the change's page."""
    home = sd.make_home(tmp_path, sd.synthetic)
    res = sample_packet(home, od.settings(), "2026-10-01", "2026-10-31", 50, 1, through="2026-10-21")
    meta = json.loads((res.directory / "sample.json").read_text(encoding="utf-8"))
    expected = ["acme/api#118", "acme/web#117", "acme/web#119"]  # merged 10-18..10-20, run 10-21 02:00
    assert meta["pending"] == {"changes": expected, "count": 3, "controls": {c: ["CC8.1-06", "CC8.1-07"]
                                                                             for c in expected}}
    assert "3 sampled changes are still pending" in meta["note"]
    rows = {r["change_id"]: r for r in read_index(res.directory)}
    assert {c for c, r in rows.items() if r["pending_controls"]} == set(expected)
    assert rows["acme/web#117"]["pending_controls"] == "CC8.1-06 CC8.1-07"
    index = (res.directory / "index.html").read_text(encoding="utf-8")
    assert "Still pending" in index and "acme/web#117" in index
    page = (res.directory / "changes" / "acme__web__pr-117" / "page.html").read_text(encoding="utf-8")
    assert "not final" in page and "CC8.1-06" in page
    settled = (res.directory / "changes" / "acme__api__pr-100" / "page.html").read_text(encoding="utf-8")
    assert "not final" not in settled


def test_no_pending_change_says_so(tmp_path):
    """A period whose windows all closed before the last run: nothing is pending, and nothing says so."""
    home = sd.make_home(tmp_path, sd.synthetic)
    res = sample_packet(home, od.settings(), "2026-10-01", "2026-10-10", 50, 1, through="2026-10-31")
    meta = json.loads((res.directory / "sample.json").read_text(encoding="utf-8"))
    assert meta["pending"] == {"changes": [], "count": 0, "controls": {}}
    assert "pending" not in meta["note"]


def test_the_sample_cites_the_nightly_archive_of_each_results_date(tmp_path):
    """Each as-of date the sample's verdicts come from is tied to the archive published for it (the
    latest run of a rerun date); a date with no recorded archive says so instead of citing nothing."""
    from datetime import datetime

    from ccwatch.publish.evidence import ledger

    home = sd.make_home(tmp_path)
    con = duckdb.connect(str(home / "warehouse.duckdb"))
    try:
        dates = sorted({str(d) for (d,) in con.execute("SELECT DISTINCT CAST(as_of AS DATE) FROM population")
                        .fetchall()})
        first = datetime.fromisoformat(dates[0])
        ev = home / "evidence"
        for n, (path, digest) in enumerate(((ev / f"ccwatch-evidence-{dates[0]}.tar.gz", "a" * 64),
                                            (ev / f"ccwatch-evidence-{dates[0]}.1.tar.gz", "b" * 64))):
            ledger.record_archive(con, first, path, digest, str(n) * 64, f"2026-12-0{n + 1}T02:00:00Z", n == 1, None)
    finally:
        con.close()
    res = sample_packet(home, od.settings(), *PERIOD, 50, 1)
    meta = json.loads((res.directory / "sample.json").read_text(encoding="utf-8"))
    cited = {c["as_of"][:10]: c for c in meta["archives"]}
    assert sorted(cited) == sorted({d[:10] for d in meta["population"]["as_of_dates"]})
    assert cited[dates[0]] == {"as_of": cited[dates[0]]["as_of"], "archive": f"ccwatch-evidence-{dates[0]}.1.tar.gz",
                               "sha256": "b" * 64, "manifest_sha256": "1" * 64, "signed": True}
    others = [c for d, c in cited.items() if d != dates[0]]
    assert all(c["archive"] is None and "no archive" in c["note"] for c in others)
    manifest = json.loads((res.directory / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["archives"] == meta["archives"]
