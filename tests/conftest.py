"""Test-session isolation, and the suite's layers as markers.

Isolation: Airflow never touches the project's airflow_home or ambient connections.  This runs
before any test module imports Airflow (the venv's .pth would otherwise point AIRFLOW_HOME at
<project>/airflow_home).

Markers: every test is marked by the folder it lives in (``unit``, ``integration``, ``system``;
registered in pyproject.toml), so ``pytest -m "not system"`` is the fast subset.
"""

import atexit
import os
import shutil
import tempfile
from pathlib import Path

import pytest

os.environ["AIRFLOW_HOME"] = tempfile.mkdtemp(prefix="ccwatch-test-airflow-home-")
atexit.register(shutil.rmtree, os.environ["AIRFLOW_HOME"], True)
for _name in [n for n in os.environ if n.startswith(("AIRFLOW_CONN_", "AIRFLOW_VAR_"))]:
    del os.environ[_name]

TESTS = Path(__file__).resolve().parent
LAYERS = ("unit", "integration", "system")


def pytest_collection_modifyitems(config, items):
    for item in items:
        try:
            layer = Path(item.path).resolve().relative_to(TESTS).parts[0]
        except ValueError:  # a test outside tests/ (e.g. a path given on the command line)
            continue
        if layer not in LAYERS:
            raise pytest.UsageError(f"{item.nodeid}: every test lives under tests/unit, tests/integration or "
                                    "tests/system (tests/helpers holds no tests)")
        item.add_marker(getattr(pytest.mark, layer))
