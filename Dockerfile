# ccwatch's Airflow image: the official Airflow 3.3.2 image plus ccwatch's pinned
# requirements.  ccwatch's own code (dags/, plugins/, include/) is NOT baked in: the
# compose file mounts it read-only, so a config or code change needs no rebuild.
#
# The tag below must match the apache-airflow pin in requirements.txt
# (tests/system/test_compose.py checks it).  To upgrade Airflow, change both together.
FROM apache/airflow:3.3.2-python3.11

# Stay the image's unprivileged "airflow" user: pip then installs into that user's
# environment, next to the Airflow the image ships (never into the system Python).
USER airflow

COPY --chown=airflow:0 requirements.txt /opt/ccwatch/requirements.txt

# requirements.txt pins apache-airflow==3.3.2 itself.  Naming
# "apache-airflow==${AIRFLOW_VERSION}" (the image's own version, an ENV of the base image)
# as well, as Airflow's docs recommend, means pip can never up- or downgrade the Airflow
# of the image: if the two pins disagree the build fails here instead of producing a
# mixed image.  requirements.txt also pins the Celery provider, celery, redis, psycopg2 and
# asyncpg (the CI's real CeleryExecutor test runs on exactly these), so pip may move the
# image's own copies of those to the pinned versions; the other preinstalled providers
# (postgres, fab ...) stay as they are.  The smoke test below checks they still import.
RUN pip install --no-cache-dir "apache-airflow==${AIRFLOW_VERSION}" -r /opt/ccwatch/requirements.txt

# Smoke test: the image still runs this Airflow, the providers the compose file relies on
# import (CeleryExecutor, Postgres, FAB auth manager) and so do ccwatch's libraries.
# AIRFLOW_HOME points at a throw-away folder so no airflow.cfg is left in the image.
RUN AIRFLOW_HOME=/tmp/ccwatch-smoke python -c "\
import os, airflow; \
assert airflow.__version__ == os.environ['AIRFLOW_VERSION'], (airflow.__version__, os.environ['AIRFLOW_VERSION']); \
import airflow.providers.celery, airflow.providers.postgres, airflow.providers.fab, airflow.providers.redis; \
import airflow.providers.github, airflow.providers.atlassian.jira, airflow.providers.slack; \
import duckdb, great_expectations, github, jira, slack_sdk, pandas, yaml; \
print('ccwatch image OK: airflow', airflow.__version__)" \
 && rm -rf /tmp/ccwatch-smoke
