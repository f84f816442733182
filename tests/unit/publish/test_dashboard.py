"""The Compliance page's core (publish/dashboard.py): its numbers are control_results', it reads
only, it escapes hostile data, it serves only the evidence folder's files, and verify is cached."""

from __future__ import annotations

import hashlib
import io
import re
import subprocess
import sys
import tarfile
from datetime import date
from html.parser import HTMLParser
from pathlib import Path

import duckdb
import pytest
from ccwatch.common.paths import evidence_dir, warehouse_path
from ccwatch.controls.catalogue import CONTROL_IDS, STATUSES
from ccwatch.publish import dashboard as dash
from ccwatch.publish.dashboard import files as dash_files
from ccwatch.warehouse import connection

from tests.helpers import outputs_world as D

DAY, PREV_DAY = D.AS_OF.date(), D.PREV.date()


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Path:
    """The outputs world's CCWATCH_HOME: two dates, the newer one's evidence written twice."""
    return D.build_home(tmp_path_factory.mktemp("ccwatch_home"))


def read(home: Path, day: date | None = None, **kw) -> dash.DashboardData:
    with dash.open_warehouse(home) as con:
        return dash.read_dashboard(con, day, **kw)


def page(home: Path, day: date | None = None, checks: dash.ArchiveChecks | None = None, **kw) -> str:
    data = read(home, day, **kw)
    return dash.render_dashboard(data, dash.evidence_files(home, data.day), checks or dash.ArchiveChecks(),
                                 user="admin")


def sql_counts(home: Path, day: date) -> dict[str, dict[str, int]]:
    con = duckdb.connect(str(warehouse_path(home)), read_only=True)
    try:
        rows = con.execute("SELECT control_id, status, count(*) FROM control_results "
                           "WHERE CAST(as_of AS DATE) = ? GROUP BY ALL", [day]).fetchall()
    finally:
        con.close()
    out: dict[str, dict[str, int]] = {}
    for control, status, n in rows:
        out.setdefault(control, {})[status] = n
    return out


def page_counts(html: str) -> dict[str, dict[str, int]]:
    table = html[html.index('<table id="counts">'):]
    table = table[:table.index("</table>")]
    out = {}
    for control, row in re.findall(r'<tr data-control="([^"]+)">(.*?)</tr>', table):
        out[control] = {s: int(n) for s, n in re.findall(r'data-status="([a-z_]+)">(\d+)</td>', row)}
    return out


# --- the numbers ----------------------------------------------------------------------------------


@pytest.mark.parametrize("day", [DAY, PREV_DAY])
def test_counts_are_control_results_of_the_date(home, day):
    want = sql_counts(home, day)
    assert want, "the world has results for this date"
    data = read(home, day)
    shown = page_counts(page(home, day))
    assert list(shown) == list(CONTROL_IDS), "every control of the catalogue, in catalogue order"
    for control in CONTROL_IDS:
        expected = {s: want.get(control, {}).get(s, 0) for s in STATUSES}
        assert shown[control] == expected, control
        assert {s: data.counts[control].get(s, 0) for s in STATUSES} == expected
    assert dash.dashboard_json(data, dash.evidence_files(home, day))["counts"] == {
        c: {s: want.get(c, {}).get(s, 0) for s in STATUSES} for c in CONTROL_IDS}


def test_the_dates_newest_first_and_the_newest_by_default(home):
    data = read(home)
    assert data.dates == (DAY, PREV_DAY) and data.day == DAY
    assert data.as_of == D.AS_OF.replace(tzinfo=None)
    html = page(home)
    assert re.search(r'<option value="2026-11-25" selected>2026-11-25</option><option value="2026-11-24">', html)
    with pytest.raises(dash.UnknownDate, match="2026-11-23"):
        read(home, date(2026, 11, 23))


@pytest.mark.parametrize("text", ["2026-11-25x", "../2026", "2026-13-01", "", "20261125"])
def test_a_date_parameter_is_a_date(text):
    with pytest.raises(ValueError):
        dash.parse_day(text)


def test_failing_pending_and_repository_findings(home):
    data = read(home)
    assert {(r["change_id"], r["control_id"]) for r in data.failing} == {
        ("acme/payments-api#12", "CC8.1-03"), ("acme/payments-api#13", "CC8.1-01"),
        (f"acme/web-frontend@{D.PUSH}", "CC8.1-10")}
    assert {(r["change_id"], r["control_id"]) for r in data.pending} == {
        ("acme/payments-api#12", "CC8.1-08"), ("acme/payments-api#13", "CC8.1-06"),
        ("acme/payments-api#13", "CC8.1-07")}
    assert [(r["change_id"], r["control_id"], r["status"]) for r in data.repo_rows] == [
        ("acme/payments-api", "CC8.1-11", "fail"), ("acme/payments-api", "CC8.1-12", "pass"),
        ("acme/web-frontend", "CC8.1-11", "pass"), ("acme/web-frontend", "CC8.1-12", "fail")]
    html = page(home)
    failing = html[html.index('<h2 id="failing">'):html.index('<h2 id="pending">')]
    assert "Failing changes (3)" in failing and "CC8.1-03 Independent peer review (1)" in failing
    assert 'href="https://github.com/acme/payments-api/pull/12"' in failing
    assert 'href="https://acme.atlassian.net/browse/PAY-7"' in failing
    assert f'href="https://github.com/acme/web-frontend/commit/{D.PUSH}"' in failing
    assert "no APPROVED review by anyone but carol-dev" in failing
    assert "Pending (3)" in html and "ticket not Done yet" in html
    repo = html[html.index('<h2 id="repo-findings">'):]
    assert "classic protection: Branch not protected" in repo and "production: environment missing" in repo


def test_a_change_reads_as_the_run_of_that_date_evaluated_it(home):
    """Titles come from the date's stored population, not from today's change_facts; a date
    without a stored population (runs before migration 3) falls back to change_facts."""
    html = page(home)
    assert D.POPULATION_TITLE in html and "FEAT: add login [PAY-7]" not in html
    older = page(home, PREV_DAY)
    assert "FEAT: add login [PAY-7]" in older and D.POPULATION_TITLE not in older


def test_long_lists_are_cut_per_control_and_say_so(tmp_path):
    con = connection.connect(str(warehouse_path(tmp_path)))
    try:
        D.build(con)
        con.execute("UPDATE control_results SET status = 'fail' WHERE control_id = 'CC8.1-03' AND as_of = ?",
                    [D.AS_OF.replace(tzinfo=None)])
        con.execute("UPDATE control_results SET status = 'pending' WHERE control_id = 'CC8.1-06' AND as_of = ?",
                    [D.AS_OF.replace(tzinfo=None)])
    finally:
        con.close()
    html = page(tmp_path, top_n=2)
    group = html[html.index("<h3>CC8.1-03 "):]
    group = group[:group.index("</table>")]
    assert "CC8.1-03 Independent peer review (3)" in group and "The first 2 of 3 (by change id)" in group
    assert group.count("<tr>") == 3, "a header and two rows"
    assert "At most 2 rows per control are listed (CC8.1-06 have more)" in html
    nothing = page(tmp_path, top_n=0)
    assert "The first 0 of 3 (by change id)" in nothing and "Nothing is pending." not in nothing


# --- notices: never an all-clear by omission ------------------------------------------------------


def test_an_empty_warehouse_is_no_all_clear(tmp_path):
    connection.connect(str(warehouse_path(tmp_path))).close()
    data = read(tmp_path)
    assert data.day is None and data.dates == ()
    html = dash.render_dashboard(data, dash.evidence_files(tmp_path, None), dash.ArchiveChecks())
    assert "No control results in the warehouse yet: nothing here is an all-clear." in html
    assert 'id="counts"' not in html


def test_a_failed_or_unfinished_latest_run_is_announced(tmp_path):
    con = connection.connect(str(warehouse_path(tmp_path)))
    try:
        D.build(con)
        con.execute("INSERT INTO runs VALUES ('2026-11-26', 'failed', NULL, NULL, 'ingest_github: 401 <b>Bad</b>')")
    finally:
        con.close()
    html = page(tmp_path)
    assert ("The latest run, as of 2026-11-26T00:00:00Z, failed (ingest_github: 401 &lt;b&gt;Bad&lt;/b&gt;)."
            in html)
    con = connection.connect(str(warehouse_path(tmp_path)))
    try:
        con.execute("UPDATE runs SET stage = 'loaded', detail = NULL WHERE as_of = '2026-11-26'")
    finally:
        con.close()
    assert "is at stage &#x27;loaded&#x27;: its results are not in yet" in page(tmp_path)
    assert "No evidence archive for 2026-11-25" in page(tmp_path)  # nothing written in this home


# --- escaping: PR titles, logins and details are attacker-controlled ----------------------------------

SAFE_TAGS = {"html", "head", "meta", "title", "style", "body", "h1", "h2", "h3", "p", "span", "b", "form",
             "label", "select", "option", "button", "div", "table", "thead", "tbody", "tr", "th", "td", "a",
             "code", "ul", "li"}


class _Tags(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.tags, self.attrs, self.text = [], [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.attrs += attrs

    def handle_data(self, data):
        self.text.append(data)


def assert_inert(html: str) -> _Tags:
    """Only the page's own tags, no event handler, no link but relative ones and http(s)."""
    parsed = _Tags()
    parsed.feed(html)
    assert set(parsed.tags) <= SAFE_TAGS, set(parsed.tags) - SAFE_TAGS
    for name, value in parsed.attrs:
        assert not name.startswith("on"), (name, value)
        if name == "href":
            assert re.match(r"https?://|\?|\.\./|evidence/|verify/", value), value
    assert "javascript:" not in html.lower()
    return parsed


def test_hostile_titles_logins_and_urls_render_as_text(home):
    html = page(home)
    parsed = assert_inert(html)
    text = "".join(parsed.text)
    assert D.HOSTILE in text, "the hostile title is shown, as text"
    assert "mallory<b>" in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "<script>" not in html
    # PAY-8's ticket URL is javascript:...: the key is shown without a link
    assert re.search(r"<td>PAY-8</td>", html)


def test_a_title_is_cut_on_the_page(tmp_path):
    con = connection.connect(str(warehouse_path(tmp_path)))
    try:
        D.build(con)
        con.execute("UPDATE change_facts SET title = ? WHERE change_id = 'acme/payments-api#12'", ["<" * 100_000])
    finally:
        con.close()
    html = page(tmp_path)
    assert "&lt;" * dash.TITLE_CHARS + "…" in html and "&lt;" * (dash.TITLE_CHARS + 1) not in html
    assert_inert(html)


# --- the warehouse is opened read-only ----------------------------------------------------------------


def test_open_warehouse_is_read_only_and_never_creates_it(home, tmp_path):
    with pytest.raises(dash.WarehouseUnavailable, match="no warehouse yet") as exc:
        with dash.open_warehouse(tmp_path):
            pass
    assert exc.value.retry_after is None and not warehouse_path(tmp_path).exists()
    with dash.open_warehouse(home) as con:
        with pytest.raises(duckdb.Error, match="read-only"):
            con.execute("CREATE TABLE x (y INTEGER)")


def test_a_writer_holding_the_warehouse_gives_busy_with_retry_after(tmp_path):
    path = warehouse_path(tmp_path)
    connection.connect(str(path)).close()
    writer = subprocess.Popen(
        [sys.executable, "-c", "import duckdb, sys, time\ncon = duckdb.connect(sys.argv[1])\n"
         "print('locked', flush=True)\ntime.sleep(60)", str(path)],
        stdout=subprocess.PIPE, text=True)
    try:
        assert writer.stdout.readline().strip() == "locked"
        with pytest.raises(dash.WarehouseUnavailable, match="being written") as exc:
            with dash.open_warehouse(tmp_path):
                pass
        assert exc.value.retry_after == dash.RETRY_AFTER
    finally:
        writer.kill()
        writer.wait()
    with dash.open_warehouse(tmp_path):  # free again
        pass


# --- the evidence files ---------------------------------------------------------------------------


def test_evidence_files_of_the_date_newest_archive_first(home):
    files = dash.evidence_files(home, DAY)
    assert files.folder_files == dash.FOLDER_FILES
    assert [(a.name, a.number, a.current) for a in files.archives] == [
        ("ccwatch-evidence-2026-11-25.1.tar.gz", 1, True), ("ccwatch-evidence-2026-11-25.tar.gz", 0, False)]
    assert dash.evidence_files(home, PREV_DAY) == dash.EvidenceFiles((), ())
    html = page(home)
    assert '<a href="evidence/2026-11-25/report.html">report.html</a>' in html
    assert '<a href="evidence/ccwatch-evidence-2026-11-25.1.tar.gz">' in html
    assert "(superseded by a rerun)" in html
    assert "No evidence archive" not in html
    assert "No evidence archive for 2026-11-24" in page(home, PREV_DAY)


def test_only_the_evidence_folders_files_are_served(home, tmp_path):
    base = evidence_dir(home)
    assert dash.evidence_file(home, "2026-11-25", "report.html") == base / "2026-11-25" / "report.html"
    assert dash.archive_file(home, "ccwatch-evidence-2026-11-25.tar.gz") == base / "ccwatch-evidence-2026-11-25.tar.gz"
    (base / "2026-11-25" / "changes").mkdir(exist_ok=True)
    refused = [
        ("2026-11-25", "../../warehouse.duckdb"), ("2026-11-25", "SHA256SUMS"), ("2026-11-25", "changes"),
        ("..", "report.html"), ("2026-11-25/..", "report.html"), ("2026-11-26", "report.html"),
        ("/etc", "passwd"), ("2026-11-25", "/etc/passwd"), ("2026-11-25", "report.html/.."),
    ]
    for day, name in refused:
        assert dash.evidence_file(home, day, name) is None, (day, name)
    for name in ("../warehouse.duckdb", "warehouse.duckdb", "ccwatch-evidence-2026-11-25.tar.gz/..",
                 "ccwatch-evidence-2026-13-25.tar.gz", "ccwatch-evidence-2026-11-25.2.tar.gz",
                 "2026-11-25/report.html", "/etc/passwd", "ccwatch-evidence-2026-11-25.tar.gz\n", ""):
        assert dash.archive_file(home, name) is None, name
    # symlinks out of the evidence folder are refused, even under an allowed name
    outside = tmp_path / "secret.txt"
    outside.write_text("secret")
    link_home = tmp_path / "home"
    (link_home / "evidence" / "2026-11-25").mkdir(parents=True)
    (link_home / "evidence" / "2026-11-25" / "report.html").symlink_to(outside)
    (link_home / "evidence" / "ccwatch-evidence-2026-11-25.tar.gz").symlink_to(outside)
    (link_home / "evidence" / "2026-11-24").symlink_to(tmp_path)
    (tmp_path / "report.html").write_text("outside")
    assert dash.evidence_file(link_home, "2026-11-25", "report.html") is None
    assert dash.archive_file(link_home, "ccwatch-evidence-2026-11-25.tar.gz") is None
    assert dash.evidence_file(link_home, "2026-11-24", "report.html") is None


# --- digest and verify, on demand and cached --------------------------------------------------------


def test_digest_and_verify_are_computed_once(home, monkeypatch):
    calls = {"sha": 0, "verify": 0}
    real_sha, real_verify = dash_files.sha256_file, dash_files.verify_archive

    def sha(path):
        calls["sha"] += 1
        return real_sha(path)

    def verify(path):
        calls["verify"] += 1
        return real_verify(path)

    monkeypatch.setattr(dash_files, "sha256_file", sha)
    monkeypatch.setattr(dash_files, "verify_archive", verify)
    checks = dash.ArchiveChecks()
    path = dash.archive_file(home, "ccwatch-evidence-2026-11-25.tar.gz")
    assert checks.digest(path) == hashlib.sha256(path.read_bytes()).hexdigest()
    html = page(home, checks=checks)
    assert f"<code>{checks.digest(path)}</code>" in html and 'href="verify/ccwatch-evidence-2026-11-25.tar.gz"' in html
    assert calls["sha"] == 2, "one digest per archive, reused by the page"
    assert checks.verified(checks.digest(path)) is None
    first = checks.verify(path)
    assert first.ok and checks.verify(path) is first and calls["verify"] == 1
    html = page(home, checks=checks)
    assert "verified" in html and calls["sha"] == 2
    summary = dash.dashboard_json(read(home), dash.evidence_files(home, DAY), checks)
    assert summary["archives"][1] == {"name": "ccwatch-evidence-2026-11-25.tar.gz", "size": path.stat().st_size,
                                      "current": False, "sha256": first.digest,
                                      "verify": {"ok": True, "problems": []}}
    # the rerun's archive is another archive (manifest v2 records when it was generated and the
    # archive before it): its own digest, not verified until asked, and the first stays cached
    rerun = summary["archives"][0]
    assert rerun["sha256"] != first.digest and rerun["verify"] is None, rerun
    assert calls["verify"] == 1 and calls["sha"] == 2


def test_verify_reports_a_tampered_archive(home, tmp_path):
    src = dash.archive_file(home, "ccwatch-evidence-2026-11-25.tar.gz")
    tampered_home = tmp_path / "home"
    (tampered_home / "evidence").mkdir(parents=True)
    dst = tampered_home / "evidence" / src.name
    with tarfile.open(src) as tin, tarfile.open(dst, "w:gz") as tout:
        for m in tin.getmembers():
            data = tin.extractfile(m).read() if m.isfile() else None
            if m.name.endswith("/control_results.csv"):
                data = data.replace(b"fail", b"pass")
                m.size = len(data)
            tout.addfile(m, io.BytesIO(data) if data is not None else None)
    checks = dash.ArchiveChecks()
    v = checks.verify(dash.archive_file(tampered_home, src.name))
    assert not v.ok and any(p.startswith("modified: control_results.csv") for p in v.problems)
    html = dash.render_verification(src.name, DAY, v)
    assert "problem(s)" in html and "modified: control_results.csv" in html and 'href="../?date=2026-11-25"' in html
    assert_inert(html)


def test_verification_page_escapes_problems():
    v = dash.Verification("ab" * 32, ("added: <img src=x onerror=alert(1)> (not listed in the manifest)",), 0.1)
    html = dash.render_verification("ccwatch-evidence-2026-11-25.tar.gz", None, v)
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
    assert_inert(html)


def test_the_style_hash_is_the_inline_styles(home):
    import base64

    html = page(home)
    css = re.search(r"<style>(.*?)</style>", html, re.S).group(1)
    assert dash.style_hash() == "'sha256-" + base64.b64encode(hashlib.sha256(css.encode()).digest()).decode() + "'"


def test_the_read_only_connection_is_closed_once_the_page_is_read(home):
    """The read-only connection (which makes a nightly writer wait) is held only for the queries:
    once read, a writer's connection opens (DuckDB refuses one beside an open read-only connection
    to the same file in this process; speed belongs to benchmarks, not to this test)."""
    read(home)
    writer = duckdb.connect(str(warehouse_path(home)))
    writer.close()
    with dash.open_warehouse(home), pytest.raises(duckdb.ConnectionException, match="different configuration"):
        duckdb.connect(str(warehouse_path(home)))  # the check above can fail: an open reader refuses it
