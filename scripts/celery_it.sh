#!/usr/bin/env bash
# The CeleryExecutor integration test by hand: sets up (idempotent), installs PostgreSQL and
# Redis from Debian's packages when missing (as root), then runs scripts/celery_it.py, which
# starts everything on loopback, runs ccwatch_nightly on the demo org through a Celery worker,
# checks it and stops everything.  Logs: build/celery-it/logs/.  Extra arguments go to the
# driver (e.g. --timeout 600, --workdir DIR).  CI runs the same through
# tests/system/test_celery_integration.py (CCWATCH_REQUIRE_CELERY_IT=1).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
bash scripts/setup.sh > /dev/null
install=()
[ "$(id -u)" = 0 ] && install=(--install)
exec "$ROOT/.venv/bin/python" scripts/celery_it.py --require-mapped "${install[@]}" "$@"
