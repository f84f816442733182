#!/usr/bin/env bash
# Set up (idempotent) and run the nightly pipeline once on the bundled demo org:
# starts the local API double with include/demo/scenario.json, points the Airflow
# connections at it, runs `airflow dags test ccwatch_nightly <date>` and prints where
# the results are.  Usage: bash scripts/demo.sh [YYYY-MM-DD]   (default 2026-11-25)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
DATE="${1:-2026-11-25}"
bash scripts/setup.sh

PY="$ROOT/.venv/bin/python"
export AIRFLOW_HOME="${AIRFLOW_HOME:-$ROOT/airflow_home}"
export CCWATCH_HOME="${CCWATCH_HOME:-$ROOT/data}"
export CCWATCH_CONFIG="${CCWATCH_CONFIG:-$ROOT/include/config/ccwatch.yaml}"
export CCWATCH_RETRY_DELAY_SECONDS="${CCWATCH_RETRY_DELAY_SECONDS:-2}"
SCENARIO="${CCWATCH_SCENARIO:-$ROOT/include/demo/scenario.json}"
mkdir -p "$CCWATCH_HOME/logs"

ready="$(mktemp)"; rm -f "$ready"
"$PY" -m ccwatch.sandbox --scenario "$SCENARIO" --port 0 --ready-file "$ready" \
  > "$CCWATCH_HOME/logs/sandbox.log" 2>&1 &
SANDBOX_PID=$!
trap 'kill $SANDBOX_PID 2>/dev/null || true; rm -f "$ready"' EXIT
for _ in $(seq 1 100); do [ -s "$ready" ] && break; sleep 0.1; done
[ -s "$ready" ] || { echo "[demo] the API double did not start:"; cat "$CCWATCH_HOME/logs/sandbox.log"; exit 1; }
URL="$(cat "$ready")"
echo "[demo] API double (GitHub, Jira, Slack) listening at $URL"

# Connections as environment variables, exactly as a user would give them for real
# services (GitHub Enterprise style base URL, Jira user + token, Slack bot token).
eval "$("$PY" -m ccwatch.demo_env "$SCENARIO" "$URL")"

LOG="$CCWATCH_HOME/logs/ccwatch_nightly-$DATE.log"
echo "[demo] running: airflow dags test ccwatch_nightly $DATE   (log: $LOG)"
set +e
"$ROOT/.venv/bin/airflow" dags test ccwatch_nightly "$DATE" > "$LOG" 2>&1
rc=$?
set -e
"$PY" -m ccwatch.demo_env --report "$CCWATCH_HOME" "$DATE" "$URL" "$LOG" "$rc"
