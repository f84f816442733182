""".env.example and the example connections of the production deployment.

Every secret docker-compose.yaml requires is documented, .env.example carries nothing that
looks like a real token, the compose file refuses to start with it unedited, and the example
connections parse and resolve - through ccwatch's own connection code - to the documented
endpoints.  The compose structure and the image are checked in test_compose.py.
"""

from __future__ import annotations

import json
import re

import pytest
import yaml

from tests.helpers.compose import (
    COMPOSE,
    CONN_VARS,
    ENV_EXAMPLE,
    REQUIRED_SECRETS,
    interpolate,
    load_env_example,
)
from tests.helpers.compose import service_env as _env
from tests.helpers.paths import CONFIG


@pytest.fixture(scope="module")
def env_example() -> dict[str, str]:
    return load_env_example()


def test_required_compose_variables_are_documented(env_example):
    raw = COMPOSE.read_text(encoding="utf-8")
    # ${VAR} and ${VAR:?msg} have no default: .env must provide them; $${VAR} is for the container shell
    required = set(re.findall(r"(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?\?[^}]*)?\}", raw))
    assert set(REQUIRED_SECRETS) <= required
    for var in required:
        assert var in env_example, f"{var} is required by docker-compose.yaml but not in .env.example"
    with_default = set(re.findall(r"(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*):-", raw))
    example_text = ENV_EXAMPLE.read_text(encoding="utf-8")
    for var in with_default:
        assert var in example_text, f"{var} (optional) should be mentioned in .env.example"


# --- .env.example ------------------------------------------------------------------------

TOKEN_PATTERNS = [
    r"gh[pousr]_[A-Za-z0-9]{20,}",  # GitHub classic / OAuth / app tokens
    r"github_pat_[A-Za-z0-9_]{20,}",  # GitHub fine-grained PAT
    r"xox[abposr]-[A-Za-z0-9-]{10,}",  # Slack tokens
    r"xapp-[A-Za-z0-9-]{10,}",
    r"ATATT[A-Za-z0-9_\-=]{20,}",  # Atlassian API token
    r"AKIA[0-9A-Z]{16}",
    r"-----BEGIN [A-Z ]*PRIVATE KEY-----",
    # any long key-like run (base64 / hex) mixing letters and digits
    r"(?=[A-Za-z0-9+/_\-]*\d)(?=[A-Za-z0-9+/_\-]*[A-Za-z])[A-Za-z0-9+/_\-]{32,}={0,2}",
]


def looks_like_token(text: str) -> list[str]:
    return [m.group(0) for p in TOKEN_PATTERNS for m in re.finditer(p, text)]


def test_token_detector_catches_real_shapes():
    assert looks_like_token("password: ghp_" + "a1B2" * 9)
    assert looks_like_token("xoxb-" + "1234567890-" * 3)
    assert looks_like_token("FERNET_KEY=" + "Zm9v" * 11 + "=")
    assert looks_like_token("JWT_SECRET=" + "3f9a" * 9)
    assert not looks_like_token('{"password":"<github-token>"}  https://api.github.com')
    assert not looks_like_token(
        "# " + "-" * 80 + " https://id.atlassian.com/manage-profile/security/api-tokens"
    )


def test_env_example_contains_no_secrets(env_example):
    text = ENV_EXAMPLE.read_text(encoding="utf-8")
    assert looks_like_token(text) == []
    for key in REQUIRED_SECRETS:
        assert env_example[key] == "", f"{key} must be left for the user to generate"
    for var in CONN_VARS:
        password = json.loads(env_example[var]).get("password", "")
        assert re.fullmatch(r"<[a-z-]+>", password), f"{var}: password should be a <placeholder>"


def test_env_example_names_the_connections_of_the_config(env_example):
    from ccwatch.settings import load_settings

    settings = load_settings(CONFIG)
    expected = {
        f"AIRFLOW_CONN_{c.upper()}"
        for c in (settings.github.conn_id, settings.jira.conn_id, settings.slack.conn_id)
    }
    assert expected == set(CONN_VARS)
    for var in CONN_VARS:
        assert var in env_example


@pytest.mark.parametrize(
    "var, service, conn_type, base_url, login",
    [
        ("AIRFLOW_CONN_GITHUB_DEFAULT", "github", "github", "https://api.github.com", None),
        ("AIRFLOW_CONN_JIRA_DEFAULT", "jira", "jira", "https://acme.atlassian.net", "ccwatch@acme.example"),
        ("AIRFLOW_CONN_SLACK_API_DEFAULT", "slack", "slack", "https://slack.com/api/", None),
    ],
)
def test_example_connections_resolve_through_ccwatch(
    env_example, monkeypatch, var, service, conn_type, base_url, login
):
    """Set the example value exactly as the container would get it and resolve it the DAG's way."""
    from ccwatch_airflow.connections import endpoint_for

    value = env_example[var]
    assert json.loads(value)["conn_type"] == conn_type
    monkeypatch.setenv(var, value)
    endpoint = endpoint_for(var.removeprefix("AIRFLOW_CONN_").lower(), service)
    assert endpoint.base_url == base_url
    assert endpoint.login == login
    assert endpoint.token == json.loads(value)["password"]


def test_commented_alternatives_resolve_too(monkeypatch):
    """The GHE, Jira Server and Slack base_url variants shown in comments are valid connections."""
    from ccwatch_airflow.connections import endpoint_for

    alternatives = {}
    for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines():
        m = re.fullmatch(r"#\s*(AIRFLOW_CONN_[A-Z_]+)='(\{.*\})'", line.strip())
        if m:
            alternatives.setdefault(m.group(1), []).append(m.group(2))
    signing = alternatives.pop("AIRFLOW_CONN_CCWATCH_SIGNING")  # the optional evidence signing key
    assert [json.loads(v) for v in signing] == [{"conn_type": "generic", "password": "<ed25519-private-key-pem>"}]
    assert set(alternatives) == set(CONN_VARS)
    seen = {}
    for var, values in alternatives.items():
        for value in values:
            monkeypatch.setenv(var, value)
            service = json.loads(value)["conn_type"]
            seen[var] = endpoint_for(var.removeprefix("AIRFLOW_CONN_").lower(), service).base_url
    assert seen["AIRFLOW_CONN_GITHUB_DEFAULT"] == "https://ghe.example/api/v3"
    assert seen["AIRFLOW_CONN_SLACK_API_DEFAULT"] == "https://slack-gov.com/api/"
    assert seen["AIRFLOW_CONN_JIRA_DEFAULT"].startswith("https://")


def test_compose_refuses_to_start_with_the_unedited_example(env_example):
    """Interpolating the compose file with .env.example as-is fails (empty secrets); filled in, it works."""
    raw = COMPOSE.read_text(encoding="utf-8")
    with pytest.raises(KeyError, match="in .env"):
        interpolate(raw, env_example)
    filled = dict(env_example)
    for key in REQUIRED_SECRETS:
        filled[key] = f"generated-{key.lower()}"
    resolved = yaml.safe_load(interpolate(raw, filled))
    worker = _env(resolved["services"]["airflow-worker"])
    assert worker["AIRFLOW__API_AUTH__JWT_SECRET"] == "generated-airflow__api_auth__jwt_secret"
    assert resolved["services"]["airflow-apiserver"]["user"] == f"{env_example['AIRFLOW_UID']}:0"
    assert resolved["services"]["airflow-apiserver"]["ports"] == ["8080:8080"]
