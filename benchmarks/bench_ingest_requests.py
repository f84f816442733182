"""HTTP requests per change: a first (full) ingest vs incremental reruns, on the demo org.

    .venv/bin/python benchmarks/bench_ingest_requests.py

Runs the pipeline's ingest stages (ingest_github, ingest_jira, resolve_tickets, load_warehouse)
against the API double serving include/demo/scenario.json, through the real clients, and counts
the requests the double recorded, per request kind:

1. first run of 2026-11-25 (no state: full lookback window);
2. rerun of the same date (incremental on its own watermark);
3. next day, 2026-11-26, nothing changed at the sources;
4. next day, 2026-11-26, one merged PR changed (approval dismissed, a comment).
"""

from __future__ import annotations

import copy
import json
import re
import shutil
import sys
import tempfile
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "include")]

from ccwatch import pipeline as p  # noqa: E402
from ccwatch.common.endpoints import Endpoint  # noqa: E402
from ccwatch.common.times import parse_as_of  # noqa: E402
from ccwatch.demo_env import DEMO_AUTH  # noqa: E402
from ccwatch.sandbox import SandboxServer  # noqa: E402
from ccwatch.settings import load_settings  # noqa: E402

KINDS = [
    ("PR list", r"/repos/[^/]+/[^/]+/pulls$"), ("PR", r"/pulls/\d+$"), ("reviews", r"/reviews$"),
    ("check runs", r"/check-runs$"), ("commit statuses", r"/commits/[^/]+/statuses$"),
    ("commit list", r"/repos/[^/]+/[^/]+/commits$"), ("commit PRs", r"/commits/[^/]+/pulls$"),
    ("deployment list", r"/deployments$"), ("deployment statuses", r"/deployments/\d+/statuses$"),
    ("Jira search", r"/search"), ("Jira changelog", r"/changelog$"),
]


def kind(path: str) -> str:
    for name, pattern in KINDS:
        if re.search(pattern, path):
            return name
    return "repo/branch/protection/rules/env" if "/api/v3/" in path else "Jira serverInfo/field/status"


def ingest(settings, server, as_of, home) -> None:
    gh = Endpoint(server.url + "/api/v3", token=DEMO_AUTH["github_token"])
    jr = Endpoint(server.url, login=DEMO_AUTH["jira_user"], token=DEMO_AUTH["jira_token"])
    p.ingest_github(settings, gh, as_of, home)
    p.ingest_jira(settings, jr, as_of, home)
    p.resolve_tickets(settings, jr, as_of, home)
    p.load_warehouse(settings, as_of, home)


def changes(settings, as_of, home) -> int:
    return p.build_facts(settings, as_of, home)["changes"]


def main() -> None:
    settings = load_settings(str(ROOT / "include/config/ccwatch.yaml"))
    scenario = json.loads((ROOT / "include/demo/scenario.json").read_text(encoding="utf-8"))
    scenario["auth"] = dict(DEMO_AUTH)
    changed = copy.deepcopy(scenario)
    repo = changed["github"]["repos"]["acme/payments-api"]
    next(x for x in repo["pulls"] if x["number"] == 150)["updated_at"] = "2026-11-25T12:00:00Z"
    repo["reviews"]["150"][0]["state"] = "DISMISSED"
    d1, d2 = parse_as_of("2026-11-25"), parse_as_of("2026-11-26")
    runs = [("first run 2026-11-25 (full)", scenario, d1), ("rerun 2026-11-25 (incremental)", scenario, d1),
            ("2026-11-26, no change", scenario, d2), ("2026-11-26, one PR changed", changed, d2)]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        first = Path(tmp) / "first"
        for i, (label, scen, as_of) in enumerate(runs):
            home = first if i == 0 else Path(tmp) / f"run{i}"
            if i:  # every incremental run continues from the first run's warehouse and state
                shutil.copytree(first, home)
            with SandboxServer(scen) as server:
                ingest(settings, server, as_of, home)
                reqs = server.requests
            rows.append((label, changes(settings, as_of, home), Counter(kind(r["path"]) for r in reqs), len(reqs)))
    names = [k for k, _ in KINDS] + ["repo/branch/protection/rules/env", "Jira serverInfo/field/status"]
    print("| request kind | " + " | ".join(r[0] for r in rows) + " |")
    print("|---|" + "---:|" * len(rows))
    for name in names:
        print(f"| {name} | " + " | ".join(str(r[2].get(name, 0)) for r in rows) + " |")
    print("| **total** | " + " | ".join(f"**{r[3]}**" for r in rows) + " |")
    print("| changes in the window | " + " | ".join(str(r[1]) for r in rows) + " |")
    print("| requests per change | " + " | ".join(f"{r[3] / r[1]:.2f}" for r in rows) + " |")


if __name__ == "__main__":
    main()
