#!/usr/bin/env bash
# The whole test suite (unit, sandbox-driven connectors, DAG integrity, end to end).
# Sets up first if needed (idempotent); extra arguments go to pytest.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
bash scripts/setup.sh > /dev/null
exec "$ROOT/.venv/bin/python" -m pytest "$@"
