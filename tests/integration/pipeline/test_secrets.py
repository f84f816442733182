"""No credential reaches any output: the whole pipeline, in process, with distinctive fake tokens.

Every stage runs against the API double with tokens nobody could mistake (``...CCWATCHSECRET...``)
and signs its evidence with an Ed25519 key (whose PEM body, raw bytes, hex and base64 are scanned for too),
debug logging on for ccwatch and the clients (github, urllib3, jira, slack_sdk), a clean run and a
rerun, then fault runs (a revoked token, a 5xx burst, Slack refusing the token).  Then EVERY byte
is scanned: each file under CCWATCH_HOME (staging, state, validations, evidence folders), every
member of every .tar.gz archive, the DuckDB file's bytes and every text column of every table,
the captured log records, the raised exceptions and failure markers, and the Slack messages.
The Airflow subprocess of tests/system/test_e2e.py gets the same scan of its output and log folder.
"""

from __future__ import annotations

import base64
import gzip
import json
import logging
import tarfile
from pathlib import Path

import duckdb
import pytest
from ccwatch.common.times import parse_as_of
from ccwatch.ingest.http.retry import RetryPolicy
from ccwatch.sandbox import SandboxServer
from ccwatch.settings import load_settings
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from tests.helpers.harness import run_pipeline
from tests.helpers.paths import CONFIG, DEMO_SCENARIO

AUTH = {
    "github_token": "ghp_CCWATCHSECRETgithub0123456789abcdef",
    "jira_user": "ccwatch@acme.example",
    "jira_token": "jira-CCWATCHSECRETjira0123456789",
    "slack_token": "xoxb-CCWATCHSECRET-slack-0123456789",
}
WRONG = {"github_token": "ghp_CCWATCHSECRETrevoked987654321", "slack_token": "xoxb-CCWATCHSECRET-revoked-42"}
MARKER = b"CCWATCHSECRET"
DATES = ("2026-11-25",)
LOGGERS = ("ccwatch", "github", "urllib3", "jira", "slack_sdk", "requests")


# the evidence signing key (evidence.signing_conn_id): its PEM body, its raw bytes in hex and base64
SIGNING_KEY = ed25519.Ed25519PrivateKey.generate()
SIGNING_PEM = SIGNING_KEY.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                        serialization.NoEncryption())
_RAW = SIGNING_KEY.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                                 serialization.NoEncryption())
KEY_FORMS = (b"".join(SIGNING_PEM.splitlines()[1:-1]), SIGNING_PEM.splitlines()[1], _RAW, _RAW.hex().encode(),
             base64.b64encode(_RAW), b"PRIVATE KEY-----")


def run_all(settings, server, as_of, home, tokens=None) -> BaseException | None:
    return run_pipeline(settings, server, as_of, home, tokens={**AUTH, **(tokens or {})},
                        signing_key=SIGNING_KEY).error


def blobs_under(home: Path):
    """(name, bytes) of every file under home, every archive member, and the DuckDB tables' text."""
    for path in sorted(home.rglob("*")):
        if not path.is_file():
            continue
        data = path.read_bytes()
        yield str(path), data
        if path.name.endswith(".tar.gz"):
            yield f"{path} (gunzipped)", gzip.decompress(data)
            with tarfile.open(path) as tar:
                for member in tar.getmembers():
                    if member.isfile():
                        yield f"{path}!{member.name}", tar.extractfile(member).read()
    db = home / "warehouse.duckdb"
    con = duckdb.connect(str(db), read_only=True)
    try:
        for (table,) in con.execute("SELECT table_name FROM information_schema.tables").fetchall():
            rows = con.execute(f'SELECT * FROM "{table}"').fetchall()
            yield f"table {table}", repr(rows).encode("utf-8", "surrogatepass")
    finally:
        con.close()


def assert_clean(name: str, data: bytes | str) -> None:
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data
    assert MARKER not in raw, f"a token reached {name}"
    for form in KEY_FORMS:
        assert form not in raw, f"the signing key reached {name}"
    for token in (*AUTH.values(), *WRONG.values()):
        if "SECRET" in token:
            assert token.encode() not in raw, f"{token[:8]}… reached {name}"


@pytest.fixture(scope="module")
def settings(tmp_path_factory):
    """The demo config, signing with the key above (as the Airflow glue hands it over)."""
    path = tmp_path_factory.mktemp("config") / "ccwatch.yaml"
    path.write_text(CONFIG.read_text(encoding="utf-8") + "\nevidence:\n  signing_conn_id: ccwatch_signing\n",
                    encoding="utf-8")
    return load_settings(str(path))


def test_no_token_in_any_output_byte(settings, tmp_path, caplog, monkeypatch):
    monkeypatch.setattr("ccwatch.ingest.github.client.RETRY_POLICY", RetryPolicy(retries=1, backoff=0.01,
                                                                              backoff_max=0.02))
    monkeypatch.setattr("ccwatch.ingest.jira.RETRY_POLICY", RetryPolicy(retries=1, backoff=0.01, backoff_max=0.02))
    caplog.set_level(logging.DEBUG)
    for name in LOGGERS:
        caplog.set_level(logging.DEBUG, logger=name)
    scenario = json.loads(DEMO_SCENARIO.read_text(encoding="utf-8"))
    scenario["auth"] = dict(AUTH)
    home = tmp_path / "home"
    errors: list[Exception] = []
    with SandboxServer(scenario) as server:
        for date in (DATES[-1], DATES[-1]):  # a night, then its rerun (numbered archive)
            assert run_all(settings, server, parse_as_of(date), home) is None
        assert len(server.slack_messages) >= 1
        # faults: a revoked GitHub token, a Jira 5xx burst, Slack refusing a revoked token
        errors.append(run_all(settings, server, parse_as_of("2026-11-26"), home, {"github_token": WRONG["github_token"]}))
        server.add_fault({"service": "jira", "path": r"/search/jql$", "mode": "status", "status": 502})
        errors.append(run_all(settings, server, parse_as_of("2026-11-26"), home))
        server.clear_faults()
        # a 5xx burst on a GraphQL query (POST bodies logged at DEBUG): the org-wide merged-PR search
        # this incremental night asks first (the per-repository CcwatchMergedPulls of a full plan is not
        # asked on it: tests/conftest.py fails a fault that fires on no request)
        server.add_fault({"service": "github", "path": r"/graphql$", "mode": "status", "status": 500,
                          "graphql": {"operationName": "CcwatchMergedPullsSearch"}})
        errors.append(run_all(settings, server, parse_as_of("2026-11-27"), home))
        server.clear_faults()
        errors.append(run_all(settings, server, parse_as_of("2026-11-26"), home, {"slack_token": WRONG["slack_token"]}))
        messages = list(server.slack_messages)
    assert all(e is not None for e in errors), errors
    assert "HTTP 401" in str(errors[0]) and "HTTP 502" in str(errors[1]) and "invalid_auth" in str(errors[3])
    assert "(CcwatchMergedPullsSearch) answered HTTP 500" in str(errors[2])  # the incremental night asks the search

    scanned = 0
    for name, data in blobs_under(home):
        assert_clean(name, data)
        scanned += 1
    assert scanned > 100 and any(".tar.gz!" in n for n, _ in blobs_under(home))
    for exc in errors:
        assert_clean(f"exception {type(exc).__name__}", f"{exc!r} {exc}")
    for record in caplog.records:
        assert_clean(f"log record {record.name}", record.getMessage())
    assert any(r.name.startswith(("urllib3", "github")) for r in caplog.records), "client debug logs captured"
    assert_clean("caplog", caplog.text)
    assert_clean("slack messages", json.dumps(messages, ensure_ascii=False))
