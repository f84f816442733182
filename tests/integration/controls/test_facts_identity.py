"""The fast paths of build_facts (issue #15 C) give exactly the rows of the former ones.

``change_facts``, ``repo_facts`` and ``change_deployments`` built twice from the same warehouse:
once as the pipeline builds them (title keys in RE2 where provably the same, ordered text
aggregates as sorted lists), once with the references swapped in (every title through
``title_ticket_key`` in Python, DuckDB's ``string_agg(... ORDER BY ...)``): the demo org's and
the hostile org's warehouses (after a pipeline run against the API double) and the benchmark's
synthetic warehouse with awkward titles."""

from __future__ import annotations

import json
import shutil
import sys

import duckdb
import pytest
from ccwatch.common.paths import warehouse_path
from ccwatch.common.times import parse_as_of
from ccwatch.controls import deployment, review, testing, ticket
from ccwatch.controls.facts import build_facts
from ccwatch.settings import load_settings
from ccwatch.warehouse import facts as base_facts
from ccwatch.warehouse.connection import connect
from ccwatch.warehouse.title_keys import build_title_keys_reference

from tests.helpers.harness import run_scenario_until
from tests.helpers.hostile import ascii_json, hostile_scenario
from tests.helpers.paths import BENCHMARKS, CONFIG, DEMO_SCENARIO

sys.path.insert(0, str(BENCHMARKS))

import bench_evaluation as bench  # noqa: E402

DAY = parse_as_of("2026-11-25")
TABLES = {"change_facts": "change_id", "repo_facts": "change_id", "change_deployments": "ALL"}


def _string_agg(value: str, sep: str, order: list[str], where: str | None = None) -> str:
    filt = f" FILTER (WHERE {where})" if where else ""
    return f"string_agg({value}, {sep} ORDER BY {', '.join(order)}){filt}"


def _reference(monkeypatch) -> None:
    monkeypatch.setattr(base_facts, "build_title_keys", build_title_keys_reference)
    for mod in (deployment, review, testing, ticket):
        monkeypatch.setattr(mod, "sorted_string_agg", _string_agg)


def _snapshot(con) -> dict:
    return {t: con.execute(f"SELECT * FROM {t} ORDER BY {o}").fetchall() for t, o in TABLES.items()}


def _both(con, settings, as_of, monkeypatch) -> tuple[dict, dict]:
    build_facts(con, settings, as_of)
    fast = _snapshot(con)
    with monkeypatch.context() as m:
        _reference(m)
        build_facts(con, settings, as_of)
        ref = _snapshot(con)
    return fast, ref


def _pipeline_warehouse(tmp_path_factory, scenario: dict, name: str, hook=None):
    home = tmp_path_factory.mktemp(name)
    settings = load_settings(str(CONFIG))
    run_scenario_until(settings, scenario, DAY, home, "evaluate_controls", fault_hook=hook)
    copy = home / "copy.duckdb"
    shutil.copy(warehouse_path(home), copy)
    return duckdb.connect(str(copy)), settings


@pytest.mark.parametrize("org", ["demo", "hostile"])
def test_pipeline_warehouses_give_the_reference_rows(org, tmp_path_factory, monkeypatch):
    if org == "demo":
        from ccwatch.demo_env import DEMO_AUTH

        scenario = json.loads(DEMO_SCENARIO.read_text(encoding="utf-8"))
        scenario["auth"] = dict(DEMO_AUTH)
        con, settings = _pipeline_warehouse(tmp_path_factory, scenario, org)
    else:
        con, settings = _pipeline_warehouse(tmp_path_factory, hostile_scenario(), org, ascii_json)
    fast, ref = _both(con, settings, DAY, monkeypatch)
    assert fast["change_facts"] and fast == ref
    con.close()


def test_synthetic_warehouse_with_awkward_titles_gives_the_reference_rows(monkeypatch):
    con = connect(":memory:")
    con.execute(bench.GEN.format(n=2000, repos=bench.REPOS))
    con.execute("""UPDATE pull_requests SET title = CASE number % 9
        WHEN 0 THEN 'SHA-256 pinning [PAY-' || number || '] OPS-1' WHEN 1 THEN 'Ünïcödé éPAY-' || number || ' [PAY-1]'
        WHEN 2 THEN 'fix [FOO-9]' WHEN 3 THEN NULL WHEN 4 THEN '' WHEN 5 THEN 'PAY-' || number || 'PAY-2 PAY-3'
        WHEN 6 THEN 'tab' || chr(9) || 'PAY-' || number WHEN 7 THEN 'PAY-١٢ [PAY-' || number || ']' ELSE title END""")
    # reviews and checks with several rows per change, so the ordered texts have work
    con.execute("INSERT INTO reviews SELECT repo, pr_number, review_id + 10000000, 'rev' || ((review_id + 3) % 7), 'User', "
                "CASE WHEN review_id % 3 = 0 THEN 'CHANGES_REQUESTED' ELSE 'COMMENTED' END, commit_id, "
                "submitted_at - INTERVAL 2 HOUR FROM reviews WHERE review_id % 2 = 0")
    fast, ref = _both(con, bench.settings(), bench.AS_OF, monkeypatch)
    assert len(fast["change_facts"]) == 2000 and fast == ref
    con.close()
