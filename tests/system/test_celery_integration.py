"""ccwatch_nightly on a real distributed Airflow: CeleryExecutor, PostgreSQL, Redis, one worker.

Runs scripts/celery_it.py (see its docstring and docs/DEPLOYMENT.md, "Scale-out on
CeleryExecutor"): PostgreSQL and Redis from Debian's packages on loopback, Airflow's
api-server, scheduler, dag-processor and a Celery worker with the settings docker-compose.yaml
uses (deploy/airflow-celery.env), the demo org served by the API double, the nightly DAG
triggered through the REST API.  Passes when the run succeeds, every task instance - among
them one ``ingest_github_repo`` per configured repository - ran on the Celery worker, and
the run's control_results equal include/demo/expected.json.

Skipped where PostgreSQL or Redis is not installed, unless CCWATCH_REQUIRE_CELERY_IT=1
(as in CI, .ci/run): then a missing package is installed (root) or the test fails.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys

import pytest

from tests.helpers.airflow_stack import stack_module
from tests.helpers.paths import ROOT

DRIVER = ROOT / "scripts" / "celery_it.py"
REQUIRED = os.environ.get("CCWATCH_REQUIRE_CELERY_IT") == "1"


def _missing_reason(missing: list[str], required: bool, root: bool) -> str | None:
    """Why the test cannot run here (None: it can; required + root: the driver installs them)."""
    if missing and not (required and root):
        return f"not installed: {', '.join(missing)}"
    return None


def _unavailable() -> str | None:
    reason = _missing_reason(stack_module().missing_binaries(), REQUIRED, os.geteuid() == 0)
    if reason:
        return reason
    for module in ("celery", "redis", "psycopg2", "asyncpg", "airflow.providers.celery"):
        if importlib.util.find_spec(module.split(".")[0]) is None:
            return f"Python package for {module} missing (pip install -r requirements.txt)"
    return None


def _result(stdout: str) -> dict:
    lines = [line for line in stdout.splitlines() if line.startswith("CELERY_IT_RESULT ")]
    assert lines, "the driver printed no CELERY_IT_RESULT line:\n" + stdout[-5000:]
    return json.loads(lines[-1].removeprefix("CELERY_IT_RESULT "))


def test_driver_reads_the_shared_settings_file_like_compose(tmp_path):
    """The driver's env-file reader takes KEY=value literally and refuses what compose would
    treat differently (quotes, $-references), so both read the same values."""
    stack = stack_module()
    good = tmp_path / "good.env"
    good.write_text("# comment\n\nAIRFLOW__CORE__EXECUTOR=CeleryExecutor\nA_B=x=y\n")
    assert stack.read_env_file(good) == {"AIRFLOW__CORE__EXECUTOR": "CeleryExecutor", "A_B": "x=y"}
    for bad in ("X='quoted'", "X=${OTHER}", "not a line", "X Y=1"):
        path = tmp_path / "bad.env"
        path.write_text(bad + "\n")
        with pytest.raises(ValueError, match="bad.env:1"):
            stack.read_env_file(path)
    shared = stack.read_env_file(ROOT / "deploy" / "airflow-celery.env")
    assert shared["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"


@pytest.mark.parametrize(
    ("missing", "required", "root", "runs"),
    [
        ([], False, False, True),
        (["redis-server"], False, True, False),  # skipped locally
        (["redis-server"], True, False, False),  # required, cannot install: fails
        (["redis-server"], True, True, True),  # required as root (CI): the driver apt-installs
    ],
)
def test_when_the_integration_test_runs(missing, required, root, runs):
    assert (_missing_reason(missing, required, root) is None) == runs


def test_nightly_runs_on_the_celery_worker():
    reason = _unavailable()
    if reason:
        if REQUIRED:
            pytest.fail(f"CCWATCH_REQUIRE_CELERY_IT=1 but {reason}")
        pytest.skip(reason)
    argv = [sys.executable, str(DRIVER), "--require-mapped", "--timeout", "480"]
    if REQUIRED:
        argv.append("--install")
    proc = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        stdout, stderr = proc.communicate(timeout=900)
    except subprocess.TimeoutExpired:
        proc.terminate()  # SIGTERM: the driver stops every process it started before exiting
        stdout, stderr = proc.communicate(timeout=120)
    out = stdout + stderr
    result = _result(stdout)
    print(out[-3000:])  # the timings, shown with -s or -rA
    assert proc.returncode == 0 and result["ok"], result.get("error", "") + "\n" + out[-20000:]
    assert result["repos"] >= 2 and result["mapped"] == result["repos"], result
    assert "ingest_github_repo" in result["tasks"] and "write_evidence" in result["tasks"], result
    assert result["hostname"].startswith("ccwatch-it-worker."), result
    assert result["control_results"] > 0, result
