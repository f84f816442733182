"""Hostile source data: the demo org with PR titles, logins and ticket text built to break outputs.

Every stage runs in process against the API double (as in test_fault_matrix.py).  The data
must be stored faithfully (the same string back from raw_payloads and the normalised tables) and
come out inert everywhere it is shown: report.html and the auditor packet (parsed with
html.parser: no injected element or attribute), the Slack blocks (no <!channel>, no link from the
data), the CSV files (one row per change whatever the title holds) and the OSCAL JSON.  Ticket
linking follows CONTROLS.md: the first key of an in-scope project in the title, nowhere else.

Lone UTF-16 surrogates (valid JSON escapes, e.g. a title cut inside an emoji) are the one thing
that cannot be kept: no UTF-8 file or DuckDB VARCHAR can hold them, so staging turns each into
U+FFFD (``ccwatch.ingest.records.utf8_safe``); everything around them is kept.
"""

from __future__ import annotations

import csv
import io
import json
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from ccwatch.audit.packet import sample_packet
from ccwatch.common.times import parse_as_of
from ccwatch.sandbox import SandboxServer
from ccwatch.settings import load_settings

from tests.helpers.harness import query, run_pipeline
from tests.helpers.hostile import (
    BAD_LOGIN,
    IMG,
    KEYS,
    PREFIX,
    SCRIPT,
    ascii_json,
    hostile_scenario,
    stored,
)
from tests.helpers.paths import CONFIG

DAY = parse_as_of("2026-11-25")
PAY = "acme/payments-api"
@pytest.fixture(scope="module")
def settings():
    return load_settings(str(CONFIG))


@pytest.fixture(scope="module")
def run(settings, tmp_path_factory):
    home = tmp_path_factory.mktemp("hostile")
    with SandboxServer(hostile_scenario()) as server:
        server.fault_hook = ascii_json
        run = run_pipeline(settings, server, DAY, home)
        messages = list(server.slack_messages)
    assert run.error is None, f"{run.failed_stage}: {run.error}"
    assert run.alert == {"sent": True}
    ev = run.evidence
    packet = sample_packet(home, settings, "2026-08-27", "2026-11-25", size=200, seed=7)
    return {"home": home, "evidence": Path(ev["directory"]), "messages": messages, "packet": packet}


def expected_titles() -> dict[int, str]:
    s = hostile_scenario()
    return {x["number"]: stored(x["title"]) for x in s["github"]["repos"][PAY]["pulls"]
            if x["number"] in PREFIX or x["number"] in KEYS}


def test_stored_faithfully(run):
    want = expected_titles()
    got = dict(query(run["home"], "SELECT number, title FROM pull_requests WHERE repo = ?", [PAY]))
    for n, title in want.items():
        assert got[n] == title, n
    assert len(got[120]) > 100_000
    # the raw PR: the GraphQL PullRequest node (gql_pull), or a REST pull fetched for an overflowing piece
    raw = {}
    for _kind, k, v in query(run["home"], "SELECT kind, natural_key, payload FROM raw_payloads WHERE kind IN "
                            "('gql_pull', 'pull') AND natural_key LIKE ? ORDER BY kind", [f"{PAY}#%"]):
        raw[json.loads(k.split("#")[1])] = json.loads(v)["title"]
    assert query(run["home"], "SELECT count(*) FROM raw_payloads WHERE kind = 'gql_pull'")[0][0] > 0
    for n, title in want.items():
        assert raw[n] == title, n
    assert "\x00\x07\x1b" in got[129] and "🚀 \ufffd \ufffd \ufffd é" in got[129]
    assert query(run["home"], "SELECT reviewer_login FROM reviews WHERE review_id = 990001") == [(BAD_LOGIN,)]
    assert query(run["home"], "SELECT summary FROM tickets WHERE key = 'PAY-305'") == [(IMG + " summary",)]


def test_ticket_linking_follows_the_title_rule(run):
    rows = dict((n, (k, o)) for n, k, o in query(
        run["home"], "SELECT number, ticket_key, title_other_keys FROM change_facts WHERE repo = ?", [PAY]))
    for n, (_t, _b, key, others) in KEYS.items():
        assert rows[n][0] == key, n
        assert (rows[n][1] or "") == others, n
    for n in PREFIX:  # the hostile prefixes carry no key: the original one is still found
        assert rows[n][0] is not None
    status = dict(query(run["home"], "SELECT change_id, status FROM control_results WHERE control_id = 'CC8.1-01'"))
    assert status[f"{PAY}#146"] == "fail" and status[f"{PAY}#148"] == "fail"
    assert status[f"{PAY}#152"] == "pass" and status[f"{PAY}#153"] == "pass"


class Tags(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.tags, self.attrs, self.text = [], [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.attrs += [(tag, k, v) for k, v in attrs]

    def handle_data(self, data):
        self.text.append(data)


def parse(path: Path) -> Tags:
    t = Tags()
    t.feed(path.read_text(encoding="utf-8"))
    t.close()
    return t


def assert_inert(page: Tags, where: str) -> None:
    # the report draws its own svg charts: an injected <svg> is caught by its on* attribute
    assert not {"script", "img", "iframe", "object", "embed"} & set(page.tags), where
    assert not [a for a in page.attrs if a[1].startswith("on")], where
    for _tag, name, value in page.attrs:
        if name in ("href", "src"):
            assert not (value or "").lower().startswith(("javascript:", "data:text/html")), (where, value)


def test_report_escapes_everything(run):
    page = parse(run["evidence"] / "report.html")
    assert_inert(page, "report.html")
    text = "".join(page.text)
    assert SCRIPT in text and IMG in text, "shown as text, not dropped"


def test_packet_pages_escape_everything(run):
    pages = sorted(Path(run["packet"].directory).rglob("*.html"))
    assert len(pages) > 60
    seen = ""
    for page in pages:
        parsed = parse(page)
        assert_inert(parsed, page.name)
        seen += "".join(parsed.text)
    assert SCRIPT in seen and BAD_LOGIN in seen


def test_slack_blocks_carry_no_mention_or_link_from_the_data(run):
    (message,) = run["messages"]
    texts = [message.get("text") or ""]

    def walk(node):
        if isinstance(node, dict):
            for k, v in node.items():
                if k == "text" and isinstance(v, str):
                    texts.append(v)
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(message.get("blocks"))
    blob = "\n".join(texts)
    assert "<!channel>" not in blob and "<!here>" not in blob and "<http://evil" not in blob
    assert "<script" not in blob and "<img" not in blob
    links = re.findall(r"<([^>|]+)(?:\|[^>]*)?>", blob)  # every <url|label> left is one ccwatch made
    for url in links:
        assert url.startswith(("http://127.0.0.1", "https://")) and "evil" not in url, url
    assert "&lt;!channel&gt;" in blob, "the hostile title is in the message, escaped"


def test_csv_and_oscal_round_trip(run):
    want = {f"{PAY}#{n}": t for n, t in expected_titles().items()}
    text = (run["evidence"] / "population.csv").read_text(encoding="utf-8")
    rows = {r["change_id"]: r for r in csv.DictReader(io.StringIO(text, newline=""))}
    assert len(rows) == len(set(query(run["home"], "SELECT change_id FROM change_facts")))
    for cid, title in want.items():
        if cid in rows:
            assert rows[cid]["title"] == title.replace("\r\n", "\n").replace("\r", "\n") or rows[cid]["title"] == title
    results = list(csv.reader(io.StringIO((run["evidence"] / "control_results.csv").read_text(encoding="utf-8"),
                                          newline="")))
    assert len({len(r) for r in results}) == 1, "one column count for every row"
    oscal = json.loads((run["evidence"] / "oscal-assessment-results.json").read_text(encoding="utf-8"))
    assert SCRIPT in json.dumps(oscal, ensure_ascii=False)  # JSON-escaped by construction, kept as text


def test_a_huge_title_is_quoted_clipped_and_kept_whole_in_the_evidence(settings, tmp_path):
    """A 2 MB PR title without a ticket key: CC8.1-01's detail, the report and OSCAL quote at most 200
    characters of it; the change's evidence file keeps it whole, as fetched."""
    scenario = hostile_scenario()
    pulls = {x["number"]: x for x in scenario["github"]["repos"][PAY]["pulls"]}
    huge = "z" * (2 << 20)
    pulls[121]["title"] = huge
    with SandboxServer(scenario) as server:
        run = run_pipeline(settings, server, DAY, tmp_path)
    assert run.error is None, f"{run.failed_stage}: {run.error}"
    (detail,) = query(tmp_path, "SELECT detail FROM control_results WHERE change_id = ? AND control_id = 'CC8.1-01'",
                      [f"{PAY}#121"])[0]
    assert len(detail) < 400 and ("z" * 199 + "\u2026") in detail
    ev = Path(run.evidence["directory"])
    for name in ("report.html", "oscal-assessment-results.json", "control_results.csv"):
        assert "z" * 1000 not in (ev / name).read_text(encoding="utf-8"), name
    node = json.loads((ev / "changes" / "acme__payments-api__pr-121" / "pull.graphql.json").read_text())
    assert node["payload"]["title"] == huge
