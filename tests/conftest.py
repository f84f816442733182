"""Test-session isolation: Airflow never touches the project's airflow_home or ambient connections.

Runs before any test module imports Airflow (the venv's .pth would otherwise point
AIRFLOW_HOME at <project>/airflow_home).
"""

import atexit
import os
import shutil
import tempfile

os.environ["AIRFLOW_HOME"] = tempfile.mkdtemp(prefix="ccwatch-test-airflow-home-")
atexit.register(shutil.rmtree, os.environ["AIRFLOW_HOME"], True)
for _name in [n for n in os.environ if n.startswith(("AIRFLOW_CONN_", "AIRFLOW_VAR_"))]:
    del os.environ[_name]
