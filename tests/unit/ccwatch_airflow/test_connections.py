"""Airflow connections -> ccwatch endpoints, with connections given ONLY as AIRFLOW_CONN_* variables.

This runs in a plain pytest process (no task, no supervisor): the task SDK's
``BaseHook.get_connection`` then uses its fallback chain, whose environment-variable
backend reads ``AIRFLOW_CONN_<ID>`` on every call, so ``monkeypatch.setenv`` is enough.
"""

from __future__ import annotations

import json
import os

import pytest
from ccwatch.common.endpoints import Endpoint
from ccwatch_airflow.connections import (
    ConnectionConfigError,
    base_url_from,
    configured_endpoint,
    endpoint_for,
)

from tests.helpers.paths import ROOT

GH_TOKEN = "ghp_SECRETtoken0123456789"
JIRA_TOKEN = "ATATT3xSECRETjiraToken"
SLACK_TOKEN = "xoxb-1111-SECRET-slack"


@pytest.fixture(autouse=True)
def no_ambient_connections(monkeypatch):
    """Only what a test sets exists: no connection from the developer's shell leaks in."""
    for name in list(os.environ):
        if name.startswith(("AIRFLOW_CONN_", "AIRFLOW_VAR_")):
            monkeypatch.delenv(name)


def set_json(monkeypatch, conn_id: str, **fields) -> None:
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(fields))


def set_uri(monkeypatch, conn_id: str, uri: str) -> None:
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", uri)


def assert_token_hidden(endpoint: Endpoint, token: str) -> None:
    assert endpoint.token == token
    assert token not in repr(endpoint)
    assert token not in str(endpoint)
    assert token not in f"{endpoint}" and token not in f"{endpoint!r}"


# --- GitHub ------------------------------------------------------------------------

GITHUB_CASES = [
    ("json-no-host", {"conn_type": "github", "password": GH_TOKEN}, "https://api.github.com"),
    (
        "json-api.github.com",
        {"conn_type": "github", "host": "https://api.github.com", "password": GH_TOKEN},
        "https://api.github.com",
    ),
    (
        "json-ghe",
        {"conn_type": "github", "host": "https://ghe.example/api/v3", "password": GH_TOKEN},
        "https://ghe.example/api/v3",
    ),
    (
        "json-ghe-trailing-slash",
        {"conn_type": "github", "host": "https://ghe.example/api/v3/", "password": GH_TOKEN},
        "https://ghe.example/api/v3",
    ),
    (
        "json-ghe-host-port-schema",
        {
            "conn_type": "github",
            "host": "ghe.example",
            "port": 8443,
            "schema": "api/v3",
            "password": GH_TOKEN,
        },
        "https://ghe.example:8443/api/v3",
    ),
    (
        "json-loopback-url",
        {"conn_type": "github", "host": "http://127.0.0.1:48213/api/v3", "password": GH_TOKEN},
        "http://127.0.0.1:48213/api/v3",
    ),
    (
        "json-loopback-bare-host",
        {"conn_type": "github", "host": "127.0.0.1", "port": 48213, "schema": "api/v3", "password": GH_TOKEN},
        "http://127.0.0.1:48213/api/v3",
    ),
    (
        "json-extra-base_url-wins",
        {
            "conn_type": "github",
            "host": "https://ignored.example",
            "password": GH_TOKEN,
            "extra": {"base_url": "https://ghe.example/api/v3/"},
        },
        "https://ghe.example/api/v3",
    ),
    ("uri-ghe", f"github://:{GH_TOKEN}@ghe.example/api/v3", "https://ghe.example/api/v3"),
    ("uri-ghe-port", f"github://:{GH_TOKEN}@ghe.example:8443/api/v3", "https://ghe.example:8443/api/v3"),
    ("uri-loopback", f"github://:{GH_TOKEN}@127.0.0.1:48213/api/v3", "http://127.0.0.1:48213/api/v3"),
    ("uri-localhost", f"github://:{GH_TOKEN}@localhost:9000/api/v3", "http://localhost:9000/api/v3"),
    ("uri-ipv6-loopback", f"github://:{GH_TOKEN}@[::1]:9000/api/v3", "http://[::1]:9000/api/v3"),
    ("uri-https-type", f"https://:{GH_TOKEN}@ghe.example/api/v3", "https://ghe.example/api/v3"),
]


@pytest.mark.parametrize(
    ("value", "expected"), [c[1:] for c in GITHUB_CASES], ids=[c[0] for c in GITHUB_CASES]
)
def test_github_endpoint(monkeypatch, value, expected):
    if isinstance(value, dict):
        set_json(monkeypatch, "github_default", **value)
    else:
        set_uri(monkeypatch, "github_default", value)
    endpoint = endpoint_for("github_default", "github")
    assert endpoint.base_url == expected
    assert endpoint.login is None  # the URI form gives '' for "no login": normalised
    assert endpoint.verify_tls is True
    assert_token_hidden(endpoint, GH_TOKEN)


def test_connection_is_read_from_the_environment_on_every_call(monkeypatch):
    set_json(
        monkeypatch, "github_default", conn_type="github", host="https://a.example/api/v3", password=GH_TOKEN
    )
    assert endpoint_for("github_default", "github").base_url == "https://a.example/api/v3"
    set_json(
        monkeypatch, "github_default", conn_type="github", host="https://b.example/api/v3", password=GH_TOKEN
    )
    assert endpoint_for("github_default", "github").base_url == "https://b.example/api/v3"


def test_custom_conn_id(monkeypatch):
    set_uri(monkeypatch, "ghe_prod", f"github://:{GH_TOKEN}@ghe.corp.example/api/v3")
    assert endpoint_for("ghe_prod", "github").base_url == "https://ghe.corp.example/api/v3"


@pytest.mark.parametrize(
    ("extra", "verify"),
    [({"verify": False}, False), ({"verify": "false"}, False), ({"verify": True}, True), ({}, True)],
)
def test_verify_tls_from_extra(monkeypatch, extra, verify):
    set_json(monkeypatch, "github_default", conn_type="github", password=GH_TOKEN, extra=extra)
    assert endpoint_for("github_default", "github").verify_tls is verify


def test_verify_from_uri_query(monkeypatch):
    set_uri(monkeypatch, "github_default", f"github://:{GH_TOKEN}@ghe.example/api/v3?verify=false")
    endpoint = endpoint_for("github_default", "github")
    assert endpoint.verify_tls is False and endpoint.base_url == "https://ghe.example/api/v3"


# --- Jira --------------------------------------------------------------------------


def test_jira_json_login_and_password(monkeypatch):
    set_json(
        monkeypatch,
        "jira_default",
        conn_type="jira",
        host="https://acme.atlassian.net/",
        login="ccwatch@acme.example",
        password=JIRA_TOKEN,
    )
    endpoint = endpoint_for("jira_default", "jira")
    assert (endpoint.base_url, endpoint.login) == ("https://acme.atlassian.net", "ccwatch@acme.example")
    assert_token_hidden(endpoint, JIRA_TOKEN)


def test_jira_uri_with_encoded_login_and_context_path(monkeypatch):
    set_uri(monkeypatch, "jira_default", f"jira://ccwatch%40acme.example:{JIRA_TOKEN}@jira.corp.example/jira")
    endpoint = endpoint_for("jira_default", "jira")
    assert (endpoint.base_url, endpoint.login) == ("https://jira.corp.example/jira", "ccwatch@acme.example")
    assert_token_hidden(endpoint, JIRA_TOKEN)


def test_jira_loopback(monkeypatch):
    set_json(
        monkeypatch,
        "jira_default",
        conn_type="jira",
        host="http://127.0.0.1:5000",
        login="u",
        password="t0ken",
    )
    assert endpoint_for("jira_default", "jira").base_url == "http://127.0.0.1:5000"


def test_jira_without_host_is_an_error(monkeypatch):
    set_json(monkeypatch, "jira_default", conn_type="jira", login="u", password=JIRA_TOKEN)
    with pytest.raises(ConnectionConfigError) as info:
        endpoint_for("jira_default", "jira")
    assert "'jira_default'" in str(info.value) and "no host" in str(info.value)
    assert JIRA_TOKEN not in str(info.value)


# --- Slack -------------------------------------------------------------------------

SLACK_CASES = [
    ("json-default", {"conn_type": "slack", "password": SLACK_TOKEN}, "https://slack.com/api/"),
    (
        "json-extra-base_url",
        {"conn_type": "slack", "password": SLACK_TOKEN, "extra": {"base_url": "http://127.0.0.1:48213/api/"}},
        "http://127.0.0.1:48213/api/",
    ),
    (
        "json-extra-base_url-gets-trailing-slash",
        {"conn_type": "slack", "password": SLACK_TOKEN, "extra": {"base_url": "http://127.0.0.1:48213/api"}},
        "http://127.0.0.1:48213/api/",
    ),
    (
        "json-extra-as-string",
        {
            "conn_type": "slack",
            "password": SLACK_TOKEN,
            "extra": json.dumps({"base_url": "https://s.example/api"}),
        },
        "https://s.example/api/",
    ),
    (
        "json-host",
        {"conn_type": "slack", "host": "https://slack.example/api", "password": SLACK_TOKEN},
        "https://slack.example/api/",
    ),
    ("uri-default", f"slack://:{SLACK_TOKEN}@", "https://slack.com/api/"),
    (
        "uri-extra-base_url",
        f"slack://:{SLACK_TOKEN}@/?base_url=http%3A%2F%2F127.0.0.1%3A48213%2Fapi",
        "http://127.0.0.1:48213/api/",
    ),
]


@pytest.mark.parametrize(("value", "expected"), [c[1:] for c in SLACK_CASES], ids=[c[0] for c in SLACK_CASES])
def test_slack_endpoint(monkeypatch, value, expected):
    if isinstance(value, dict):
        set_json(monkeypatch, "slack_api_default", **value)
    else:
        set_uri(monkeypatch, "slack_api_default", value)
    endpoint = endpoint_for("slack_api_default", "slack")
    assert endpoint.base_url == expected
    assert_token_hidden(endpoint, SLACK_TOKEN)


def test_token_from_extra_when_no_password(monkeypatch):
    set_json(monkeypatch, "slack_api_default", conn_type="slack", extra={"token": SLACK_TOKEN})
    assert_token_hidden(endpoint_for("slack_api_default", "slack"), SLACK_TOKEN)


# --- errors ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("conn_id", "service", "env_var"),
    [
        ("github_default", "github", "AIRFLOW_CONN_GITHUB_DEFAULT"),
        ("jira_default", "jira", "AIRFLOW_CONN_JIRA_DEFAULT"),
        ("slack_api_default", "slack", "AIRFLOW_CONN_SLACK_API_DEFAULT"),
    ],
)
def test_missing_connection_names_conn_id_and_env_var(conn_id, service, env_var):
    with pytest.raises(ConnectionConfigError) as info:
        endpoint_for(conn_id, service)
    message = str(info.value)
    assert f"'{conn_id}'" in message and env_var in message and "not defined" in message


def test_a_connection_under_another_id_does_not_count(monkeypatch):
    set_json(monkeypatch, "github_other", conn_type="github", password=GH_TOKEN)
    with pytest.raises(ConnectionConfigError, match="AIRFLOW_CONN_GITHUB_DEFAULT"):
        endpoint_for("github_default", "github")


def test_malformed_env_var_is_reported_as_such_without_its_value(monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_GITHUB_DEFAULT", '{"conn_type": "github", "password": "' + GH_TOKEN)
    with pytest.raises(ConnectionConfigError) as info:
        endpoint_for("github_default", "github")
    message = str(info.value)
    assert "AIRFLOW_CONN_GITHUB_DEFAULT is set but is not a valid connection" in message
    assert GH_TOKEN not in message


@pytest.mark.parametrize(
    ("conn_id", "service", "value"),
    [
        ("github_default", "github", {"conn_type": "github", "host": "https://ghe.example/api/v3"}),
        ("github_default", "github", "github://ghe.example/api/v3"),
        ("jira_default", "jira", {"conn_type": "jira", "host": "https://acme.atlassian.net", "login": "u"}),
        ("slack_api_default", "slack", {"conn_type": "slack", "password": ""}),
    ],
    ids=["github-json", "github-uri", "jira-login-only", "slack-empty-password"],
)
def test_missing_token_is_an_error(monkeypatch, conn_id, service, value):
    if isinstance(value, dict):
        set_json(monkeypatch, conn_id, **value)
    else:
        set_uri(monkeypatch, conn_id, value)
    with pytest.raises(ConnectionConfigError) as info:
        endpoint_for(conn_id, service)
    assert f"'{conn_id}'" in str(info.value) and "no password/token" in str(info.value)


@pytest.mark.parametrize(
    "fields",
    [
        {"host": f"https://x-access-token:{GH_TOKEN}@ghe.example/api/v3", "password": "other"},
        {"password": "other", "extra": {"base_url": f"https://u:{GH_TOKEN}@ghe.example/api/v3"}},
    ],
    ids=["host", "extra-base_url"],
)
def test_credentials_in_the_url_are_refused(monkeypatch, fields):
    set_json(monkeypatch, "github_default", conn_type="github", **fields)
    with pytest.raises(ConnectionConfigError) as info:
        endpoint_for("github_default", "github")
    assert "user:password@" in str(info.value) and GH_TOKEN not in str(info.value)


def test_unknown_service():
    with pytest.raises(ValueError, match="unknown service 'gitlab'"):
        endpoint_for("github_default", "gitlab")


# --- base_url_from -----------------------------------------------------------------

BASE_URL_CASES = [
    # (host, port, schema, extra, default) -> expected
    (("https://api.github.com", None, None, {}, None), "https://api.github.com"),
    (("https://ghe.example/api/v3/", None, None, {}, None), "https://ghe.example/api/v3"),
    (("https://ghe.example/api/v3", 8443, None, {}, None), "https://ghe.example:8443/api/v3"),
    (("http://127.0.0.1:5000/api/v3", 9999, None, {}, None), "http://127.0.0.1:5000/api/v3"),
    (("http://[::1]/api/v3", 5000, None, {}, None), "http://[::1]:5000/api/v3"),
    (("http://[::1]:5000/api/v3", 6000, None, {}, None), "http://[::1]:5000/api/v3"),
    (("ghe.example", None, "api/v3", {}, None), "https://ghe.example/api/v3"),
    (("ghe.example", None, "/api/v3/", {}, None), "https://ghe.example/api/v3"),
    (("ghe.example", 8443, "", {}, None), "https://ghe.example:8443"),
    (("ghe.example", None, None, {"scheme": "http"}, None), "http://ghe.example"),
    (("localhost", 8080, "api/v3", {}, None), "http://localhost:8080/api/v3"),
    (("127.0.0.1", None, None, {}, None), "http://127.0.0.1"),
    (("::1", 8080, "api", {}, None), "http://[::1]:8080/api"),
    (("127.0.0.2", None, None, {}, None), "https://127.0.0.2"),
    # the HTTP provider's convention: schema is the URL scheme, not a path
    (("jira.corp.example", None, "https", {}, None), "https://jira.corp.example"),
    (("jira.corp.example", None, "http", {}, None), "http://jira.corp.example"),
    # the "://" test keeps the schema out when the host is already a URL
    (("https://ghe.example/api/v3", None, "api/v3", {}, None), "https://ghe.example/api/v3"),
    ((None, None, None, {}, "https://slack.com/api/"), "https://slack.com/api/"),
    (("", None, None, {}, "https://api.github.com"), "https://api.github.com"),
    ((None, None, None, {"base_url": "http://127.0.0.1:1/api/"}, None), "http://127.0.0.1:1/api/"),
    (("https://ignored", 1, "x", {"base_url": "https://wins.example"}, None), "https://wins.example"),
]


@pytest.mark.parametrize(("args", "expected"), BASE_URL_CASES, ids=[str(c[0][:3]) for c in BASE_URL_CASES])
def test_base_url_from(args, expected):
    assert base_url_from(*args) == expected


def test_base_url_from_without_host_or_default():
    with pytest.raises(ConnectionConfigError, match="has no host"):
        base_url_from(None, None, None, {}, None)


@pytest.mark.parametrize("section, service", [("github", "github"), ("jira", "jira"), ("slack", "slack")])
def test_undefined_connection_names_the_config_key_and_file(tmp_path, section, service):
    """The DAG passes where the id came from: the error names the config key and file, the id and the variable."""

    from ccwatch.settings import load_settings

    root = ROOT
    text = (root / "include/config/ccwatch.yaml").read_text(encoding="utf-8")
    config = tmp_path / "other.yaml"
    default = {"github": "github_default", "jira": "jira_default", "slack": "slack_api_default"}[section]
    config.write_text(text.replace(f"conn_id: {default}", f"conn_id: {section}_typo"), encoding="utf-8")
    settings = load_settings(str(config))
    conn_id = getattr(settings, section).conn_id
    assert conn_id == f"{section}_typo"
    with pytest.raises(ConnectionConfigError) as err:
        configured_endpoint(settings, section)
    message = str(err.value)
    for part in (f"'{section}_typo'", f"{section}.conn_id", str(config), f"AIRFLOW_CONN_{section.upper()}_TYPO"):
        assert part in message, (part, message)
    # the DAG and the failure callback resolve every connection through the config
    for glue in ("dags/ccwatch_nightly.py", "plugins/ccwatch_airflow/callbacks.py"):
        source = (root / glue).read_text(encoding="utf-8")
        assert "endpoint_for(" not in source and "configured_endpoint(settings" in source, glue


# --- the evidence signing key (evidence.signing_conn_id) ------------------------------------------


def _signing_settings(conn_id: str | None = "ccwatch_signing"):
    from dataclasses import replace

    from ccwatch.settings import EvidenceConfig, load_settings

    s = load_settings(str(ROOT / "include" / "config" / "ccwatch.yaml"))
    return replace(s, evidence=EvidenceConfig(signing_conn_id=conn_id))


def _pem(key) -> str:
    from cryptography.hazmat.primitives import serialization

    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


def test_signing_key_from_a_connection_with_a_mangled_pem(monkeypatch):
    """The PEM as an env var mangles it (literal \\n, one line): it still loads, the same key."""
    from ccwatch.publish.evidence.signing import public_key_fingerprint
    from ccwatch_airflow.connections import configured_signing_key
    from cryptography.hazmat.primitives.asymmetric import ed25519

    key = ed25519.Ed25519PrivateKey.generate()
    set_json(monkeypatch, "ccwatch_signing", conn_type="generic", password=_pem(key).replace("\n", "\\n"))
    got = configured_signing_key(_signing_settings())
    assert public_key_fingerprint(got) == public_key_fingerprint(key)
    assert configured_signing_key(_signing_settings(None)) is None


def test_signing_key_errors_name_the_key_and_never_the_material(monkeypatch):
    from ccwatch_airflow.connections import configured_signing_key
    from cryptography.hazmat.primitives.asymmetric import rsa

    with pytest.raises(ConnectionConfigError, match="evidence.signing_conn_id.*not defined"):
        configured_signing_key(_signing_settings())
    set_json(monkeypatch, "ccwatch_signing", conn_type="generic")
    with pytest.raises(ConnectionConfigError, match="has no password"):
        configured_signing_key(_signing_settings())
    pem = _pem(rsa.generate_private_key(public_exponent=65537, key_size=2048))
    set_json(monkeypatch, "ccwatch_signing", conn_type="generic", password=pem)
    with pytest.raises(ConnectionConfigError) as err:
        configured_signing_key(_signing_settings())
    text = str(err.value)
    assert "an RSA key (2048 bits)" in text and "Ed25519" in text and "ccwatch_signing" in text
    body = "".join(pem.splitlines()[1:-1])
    assert not any(body[i:i + 16] in text for i in range(0, len(body) - 16, 16))
    assert err.value.__cause__ is None and err.value.__suppress_context__
