"""The pipeline-failure alert (plugins/ccwatch_airflow/callbacks.py) through the real slack_sdk to the
API double, including when the configuration file itself is what broke the run."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
from ccwatch.sandbox import SandboxServer
from ccwatch.settings import ConfigError, load_settings
from ccwatch_airflow.callbacks import alert_pipeline_failure

from tests.helpers.paths import CONFIG

TOKEN = "xoxb-callback-test"


def _scenario():
    return {"meta": {"name": "callbacks"}, "auth": {"slack_token": TOKEN},
            "slack": {"channels": {"compliance-alerts": "C0CCWATCH1", "sec-alerts": "C0SEC"}}}


@pytest.fixture
def slack(monkeypatch):
    with SandboxServer(_scenario()) as sb:
        monkeypatch.setenv("AIRFLOW_CONN_SLACK_API_DEFAULT", json.dumps(
            {"conn_type": "slack", "password": TOKEN, "extra": {"base_url": sb.url + "/api/"}}))
        yield sb


def _context(exc):
    ti = SimpleNamespace(dag_id="ccwatch_nightly", task_id="github_repositories", run_id="scheduled__2026-11-25")
    return {"task_instance": ti, "exception": exc, "run_id": ti.run_id}


def _texts(sb) -> list[str]:
    return [json.dumps(m, ensure_ascii=False) for m in sb.slack_messages]


def test_a_broken_config_still_alerts_naming_the_file_and_key(slack, tmp_path, monkeypatch):
    broken = tmp_path / "ccwatch.yaml"
    broken.write_text(CONFIG.read_text(encoding="utf-8").replace("lookback_days:", "lokback_days: 3\nlookback_days:"))
    monkeypatch.setenv("CCWATCH_CONFIG", str(broken))
    with pytest.raises(ConfigError) as err:  # what the task itself died of
        load_settings()
    alert_pipeline_failure(_context(err.value))
    (text,) = _texts(slack)
    assert "configuration is broken" in text and str(broken) in text and "lokback_days" in text
    assert "C0CCWATCH1" in text or "compliance-alerts" in text  # the channel the file names


def test_a_config_that_is_not_yaml_alerts_the_default_channel(slack, tmp_path, monkeypatch):
    broken = tmp_path / "ccwatch.yaml"
    broken.write_text("slack: [unclosed\n")
    monkeypatch.setenv("CCWATCH_CONFIG", str(broken))
    monkeypatch.setenv("CCWATCH_ALERT_CHANNEL", "#sec-alerts")
    with pytest.raises(ConfigError) as err:
        load_settings()
    alert_pipeline_failure(_context(err.value))
    (text,) = _texts(slack)
    assert "configuration is broken" in text and "not valid YAML" in text


def test_an_ordinary_failure_alerts_as_before(slack, monkeypatch):
    monkeypatch.setenv("CCWATCH_CONFIG", str(CONFIG))
    alert_pipeline_failure(_context(RuntimeError("GitHub acme/api: GET /repos/acme/api answered HTTP 401")))
    (text,) = _texts(slack)
    assert "pipeline failed: github_repositories" in text and "HTTP 401" in text
    assert "configuration is broken" not in text
