"""Helpers of scripts/demo.sh: connection variables for the API double, and the closing summary.

``python -m ccwatch.demo_env SCENARIO URL`` prints ``export AIRFLOW_CONN_...`` lines (JSON
connections, the form users give for real services) for the double at URL; the demo's
tokens are the scenario's ``auth`` values or fixed demo strings.

``python -m ccwatch.demo_env --report HOME DATE URL LOG RC`` prints the per-control summary,
where the report, the warehouse and the archive are, and what was posted to Slack; it
exits non-zero when the Airflow run did not complete every stage.
"""

from __future__ import annotations

import json
import shlex
import sys
import urllib.request
from pathlib import Path

DEMO_AUTH = {
    "github_token": "ghp_demo_token",
    "jira_user": "ccwatch@acme.example",
    "jira_token": "jira-demo-token",
    "slack_token": "xoxb-demo-token",
}


def connection_env(scenario: dict, url: str) -> dict[str, str]:
    auth = {**DEMO_AUTH, **(scenario.get("auth") or {})}
    base = url.rstrip("/")
    conns = {
        "AIRFLOW_CONN_GITHUB_DEFAULT": {"conn_type": "github", "host": f"{base}/api/v3",
                                        "password": auth["github_token"]},
        "AIRFLOW_CONN_JIRA_DEFAULT": {"conn_type": "jira", "host": base, "login": auth["jira_user"],
                                      "password": auth["jira_token"]},
        "AIRFLOW_CONN_SLACK_API_DEFAULT": {"conn_type": "slack", "password": auth["slack_token"],
                                           "extra": {"base_url": f"{base}/api/"}},
    }
    return {k: json.dumps(v, sort_keys=True) for k, v in conns.items()}


def _report(home: Path, date: str, url: str, log: str, rc: int) -> int:
    from ccwatch.common.paths import warehouse_path
    from ccwatch.common.times import parse_as_of
    from ccwatch.publish.evidence.ledger import latest_record
    from ccwatch.publish.results import summary_table
    from ccwatch.warehouse import connection
    from ccwatch.warehouse.runs import run_stage

    as_of = parse_as_of(date)
    db = warehouse_path(home)
    stage, detail, table, record = None, None, "", None
    if db.is_file():
        con = connection.connect(db, read_only=True)
        try:
            stage, detail = run_stage(con, as_of)
            table = summary_table(con, as_of)
            record = latest_record(con, as_of)
        finally:
            con.close()
    if rc != 0 or stage != "archived":
        print(f"[demo] the run of {date} did not complete (airflow exit {rc}, last stage {stage or 'none'}).")
        print(f"[demo] see the log: {log}")
        return 1
    try:
        with urllib.request.urlopen(f"{url.rstrip('/')}/_sandbox/slack/messages", timeout=5) as resp:
            messages = json.load(resp)
    except OSError:
        messages = []
    print()
    print(f"ccwatch nightly run for {date}: control results (counts of changes)")
    print(table)
    print()
    evidence = home / "evidence" / date
    print(f"report:    {evidence / 'report.html'}")
    print(f"warehouse: {db}")
    print(f"archive:   {detail}")
    if record:
        print(f"sha256:    archive {record['sha256']}")
        print(f"           manifest.json {record['manifest_sha256']} ({'signed' if record['signed'] else 'unsigned'})")
    print(f"evidence:  {evidence}/")
    print(f"verify:    python -m ccwatch verify {detail}")
    news = [m for m in messages if "no new failures" not in str(m.get("text", ""))]
    if news:
        print(f"slack:     {len(messages)} message(s) posted to the API double's #compliance-alerts "
              "(new failures, with the digests)")
    elif messages:
        print("slack:     no new failures (all alerted on an earlier run); posted the digest line: "
              f"{messages[-1].get('text', '')}")
    else:
        print("slack:     nothing posted (every night posts at least the digest line: see the log)")
    print(f"log:       {log}")
    return 0


def main(argv: list[str]) -> int:
    if argv and argv[0] == "--report":
        home, date, url, log, rc = argv[1:6]
        return _report(Path(home), date, url, log, int(rc))
    scenario_path, url = argv[0], argv[1]
    scenario = json.loads(Path(scenario_path).read_text(encoding="utf-8"))
    for key, value in connection_env(scenario, url).items():
        print(f"export {key}={shlex.quote(value)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
