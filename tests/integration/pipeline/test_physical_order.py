"""The outputs do not depend on the order ``change_facts`` happens to be stored in.

``build_facts`` may store the facts in any order (a table is a set; the order DuckDB's joins
leave is not a guarantee), so every reader that publishes something must order what it reads.
The hostile org is run up to the evaluation, then its home is copied three times: one copy keeps
``change_facts`` as built, the others store it by a hash of the change id and reversed.  Every
copy is then evaluated and published, and every output must be byte for byte the same as the
first copy's: the date's results and population, GX's results, the report, the evidence folder
and archive, and an auditor's sample."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import duckdb
from ccwatch import pipeline
from ccwatch.audit.sampling import draw_sample
from ccwatch.common.paths import validation_path, warehouse_path
from ccwatch.common.times import parse_as_of
from ccwatch.publish.evidence.write import write_evidence
from ccwatch.publish.report.html import render_report
from ccwatch.settings import load_settings

from tests.helpers.harness import run_scenario_until
from tests.helpers.hostile import ascii_json, hostile_scenario
from tests.helpers.paths import CONFIG

DAY = parse_as_of("2026-11-25")
ENDPOINTS = {"github": "http://127.0.0.1:1/api/v3", "jira": "http://127.0.0.1:1", "slack": "http://127.0.0.1:1/api"}
GENERATED_AT = "2026-11-25T02:00:00.000000Z"  # manifest.json's wall clock, pinned (it differs per run by design)
ORDERS = {"as built": None, "by hash": "md5(change_id)", "reversed": "change_id DESC"}


def _stored_order(home: Path) -> list[str]:
    con = duckdb.connect(str(warehouse_path(home)), read_only=True)
    try:
        return [r[0] for r in con.execute("SELECT change_id FROM change_facts ORDER BY rowid").fetchall()]
    finally:
        con.close()


def _store_in_order(home: Path, order: str) -> None:
    con = duckdb.connect(str(warehouse_path(home)))
    try:
        con.execute(f"CREATE OR REPLACE TABLE change_facts AS SELECT * FROM change_facts ORDER BY {order}")
    finally:
        con.close()


def _outputs(home: Path, settings) -> dict:
    pipeline.evaluate_controls(settings, DAY, home)
    gx = json.loads(validation_path(home, DAY).read_text(encoding="utf-8"))
    con = duckdb.connect(str(warehouse_path(home)))
    try:  # as pipeline.write_evidence does, with the manifest's wall clock pinned
        html = render_report(con, settings, DAY, gx)
        ev = write_evidence(con, settings, DAY, home, gx, html, ENDPOINTS, generated_at=GENERATED_AT)
        sample = draw_sample(con, "2026-10-01", "2026-11-25", 5, seed=7)
        tables = {t: con.execute(f"SELECT * EXCLUDE (as_of) FROM {t} ORDER BY ALL").fetchall()
                  for t in ("control_results", "population")}
    finally:
        con.close()
    return {
        "gx": validation_path(home, DAY).read_bytes(),
        "report": html,
        "files": {str(p.relative_to(ev.directory)): hashlib.sha256(p.read_bytes()).hexdigest()
                  for p in sorted(Path(ev.directory).rglob("*")) if p.is_file()},
        "archive": ev.sha256,
        "sample": [c["change_id"] for c in sample.changes],
        "population_hash": sample.period.population_hash,
        **tables,
    }


def test_outputs_do_not_depend_on_the_stored_order_of_change_facts(tmp_path):
    settings = load_settings(str(CONFIG))
    built = tmp_path / "built"
    run_scenario_until(settings, hostile_scenario(), DAY, built, "evaluate_controls", fault_hook=ascii_json)
    homes = {}
    for name, order in ORDERS.items():
        home = tmp_path / name.replace(" ", "-")
        shutil.copytree(built, home)
        if order:
            _store_in_order(home, order)
        homes[name] = home
    orders = {name: _stored_order(home) for name, home in homes.items()}
    assert len(orders["as built"]) > 20
    assert len({tuple(o) for o in orders.values()}) == len(ORDERS), "each copy stores the facts in another order"
    want = _outputs(homes["as built"], settings)
    assert want["files"] and want["control_results"] and want["sample"]
    for name in ("by hash", "reversed"):
        got = _outputs(homes[name], settings)
        for key in want:
            assert got[key] == want[key], f"{key} differs when change_facts is stored {name}"
