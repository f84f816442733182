"""The vectorised (SQL) detail lines equal the controls' Python functions, the reference.

Compared for every change control and every status over: the demo org's warehouse, the hostile
data warehouse (quotes, markup, control characters, lone surrogates), the benchmark's synthetic
changes, and a mutation table (each fact column set to NULL, and set to awkward text) under
several settings.  Any difference fails.  Rows SQL cannot reproduce exactly are marked NULL by
the expression (the evaluator computes those in Python); that they are rare is checked too.
Finally ``evaluate`` as a whole writes exactly the rows the row-by-row Python path writes.
"""

from __future__ import annotations

import dataclasses
import json
import sys

import duckdb
import pytest
from ccwatch.common.paths import warehouse_path
from ccwatch.common.times import naive_utc, parse_as_of
from ccwatch.controls import evaluate as ev
from ccwatch.controls import gx_validate as validation
from ccwatch.controls import result_rows
from ccwatch.controls.catalogue import STATUSES
from ccwatch.controls.facts import build_facts
from ccwatch.controls.families import CONTROLS
from ccwatch.controls.sqltext import NORMALIZED
from ccwatch.settings import ReviewConfig, SodConfig, load_settings
from ccwatch.warehouse.connection import connect

from tests.helpers.harness import run_scenario_until
from tests.helpers.hostile import ascii_json, hostile_scenario
from tests.helpers.paths import BENCHMARKS, CONFIG, DEMO_SCENARIO

sys.path.insert(0, str(BENCHMARKS))
import bench_evaluation as bench  # noqa: E402

DAY = parse_as_of("2026-11-25")
SQL_CONTROLS = [c for c in CONTROLS if c.detail_sql is not None]
AWKWARD = ["it's", 'say "hi"', "both ' and \"", "back\\slash", "tab\there", "new\nline", "nbsp\u00a0x",
           "  lead  and trail  ", "", "émoji 🚀", "x\u2028y", "PAY-1"]


def _demo_con(tmp_path_factory, scenario: dict, name: str, hook=None) -> duckdb.DuckDBPyConnection:
    home = tmp_path_factory.mktemp(name)
    settings = load_settings(str(CONFIG))
    run_scenario_until(settings, scenario, DAY, home, "evaluate_controls", fault_hook=hook)
    src = duckdb.connect(str(warehouse_path(home)), read_only=True)
    con = duckdb.connect(":memory:")
    for table in ("change_facts",):
        df = src.execute(f"SELECT * FROM {table}").df()  # noqa: F841 (DuckDB reads it by name)
        con.execute(f"CREATE TABLE {table} AS SELECT * FROM df")
    src.close()
    return con


@pytest.fixture(scope="module")
def worlds(tmp_path_factory):
    from ccwatch.demo_env import DEMO_AUTH

    demo = json.loads(DEMO_SCENARIO.read_text(encoding="utf-8"))
    demo["auth"] = dict(DEMO_AUTH)
    out = {"demo": _demo_con(tmp_path_factory, demo, "demo"),
           "hostile": _demo_con(tmp_path_factory, hostile_scenario(), "hostile", ascii_json)}
    syn = connect(":memory:")
    syn.execute(bench.GEN.format(n=400, repos=bench.REPOS))
    build_facts(syn, bench.settings(), bench.AS_OF)
    out["synthetic"] = syn
    # mutations of the demo's facts: each column NULL, each text column awkward
    mut = duckdb.connect(":memory:")
    base = out["demo"].execute("SELECT * FROM change_facts").df()  # noqa: F841 (read by name)
    mut.execute("CREATE TABLE change_facts AS SELECT * FROM base")
    types = dict(mut.execute("SELECT column_name, data_type FROM information_schema.columns "
                             "WHERE table_name = 'change_facts'").fetchall())
    for col, typ in types.items():
        if col == "change_id":
            continue
        mut.execute(f'INSERT INTO change_facts SELECT * REPLACE (NULL AS "{col}") FROM base')
        if typ == "VARCHAR":
            for v in AWKWARD:
                mut.execute(f'INSERT INTO change_facts SELECT * REPLACE (?::VARCHAR AS "{col}") FROM base', [v])
        if typ == "BOOLEAN":
            mut.execute(f'INSERT INTO change_facts SELECT * REPLACE (NOT coalesce("{col}", false) AS "{col}") FROM base')
        if typ == "BIGINT":
            mut.execute(f'INSERT INTO change_facts SELECT * REPLACE (CASE WHEN "{col}" = 1 THEN 0 ELSE 1 END AS "{col}") '
                        "FROM base")
    out["mutations"] = mut
    yield out
    for con in out.values():
        con.close()


def _settings_variants():
    s = bench.settings()
    return {"default": s,
            "self_merge_stale_ok": dataclasses.replace(s, sod=SodConfig(allow_self_merge=True),
                                                       review=ReviewConfig(min_approvals=2, allow_stale_approval=True))}


def compare(con, settings) -> tuple[int, int]:
    """(rows compared, rows left to Python); asserts every SQL detail equals the Python one."""
    cur = con.execute("SELECT * FROM change_facts")
    cols = [d[0] for d in cur.description]
    rows = [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]
    compared = python = 0
    for c in SQL_CONTROLS:
        raw = c.detail_sql(settings)
        for status in STATUSES:
            got = [r[0] for r in con.execute(
                f"SELECT {NORMALIZED} FROM (SELECT {raw} AS _raw FROM (SELECT *, ?::VARCHAR AS _st FROM change_facts))",
                [status]).fetchall()]
            assert len(got) == len(rows)
            for row, sql in zip(rows, got, strict=True):
                if sql is None:
                    python += 1
                    continue
                want = result_rows.detail_line(c, row, status, settings)[1]
                assert sql == want, (c.id, status, row["change_id"])
                compared += 1
    return compared, python


@pytest.mark.parametrize("variant", list(_settings_variants()))
@pytest.mark.parametrize("world", ["demo", "hostile", "synthetic", "mutations"])
def test_sql_detail_equals_python(worlds, world, variant):
    compared, python = compare(worlds[world], _settings_variants()[variant])
    assert compared > 0
    if world in ("demo", "synthetic"):
        assert python == 0  # printable ASCII data: everything set-based
    if world == "mutations":
        assert python > 0  # non-ASCII / control characters: the Python fallback is needed
    assert python < compared


def test_every_change_control_has_sql_detail():
    assert {c.id for c in SQL_CONTROLS} == {c.id for c in CONTROLS if c.scope == "change"}


def test_evaluate_writes_the_rows_of_the_python_path(tmp_path_factory):
    """The whole write path (SQL details, Python fallback for hostile text, repo controls) against
    the row-by-row reference, on the hostile org's warehouse."""
    home = tmp_path_factory.mktemp("hostile-eval")
    settings = load_settings(str(CONFIG))
    run_scenario_until(settings, hostile_scenario(), DAY, home, "evaluate_controls", fault_hook=ascii_json)
    con = duckdb.connect(str(warehouse_path(home)))
    # text only Python reproduces exactly: non-ASCII, tabs, Unicode whitespace, quotes for repr
    con.execute("UPDATE change_facts SET author = 'Jos\u00e9\u00a0dev', title = 'Fix \U0001F680 it''s\tbroken', "
                "merged_by = 'ops\u2028bot' WHERE change_id IN (SELECT change_id FROM change_facts "
                "ORDER BY change_id LIMIT 7)")
    ev.evaluate(con, settings, DAY)
    t = naive_utc(DAY)
    got = sorted(con.execute("SELECT change_id, control_id, status, detail FROM control_results "
                             "WHERE as_of = ?", [t]).fetchall())
    statuses, _ = validation.run_suites(con, settings, t.strftime("%Y-%m-%dT%H:%M:%SZ"))
    want = sorted((r.change_id, r.control_id, r.status, r.detail)
                  for df in result_rows.result_chunks(con, statuses, settings) for r in df.itertuples())
    con.close()
    assert len(got) == len(want) > 0
    assert got == want
    assert sum("Jos\u00e9 dev" in d for _, _, _, d in got) >= 7  # the fallback rows are there, normalised


def test_a_sql_detail_that_disagrees_with_python_is_an_error(monkeypatch):
    con = connect(":memory:")
    con.execute(bench.GEN.format(n=200, repos=bench.REPOS))
    s = bench.settings()
    build_facts(con, s, bench.AS_OF)
    wrong = [dataclasses.replace(c, detail_sql=lambda st: "'approved'") if c.id == "CC8.1-03" else c
             for c in CONTROLS]
    for module in (ev, validation, result_rows):  # every stage of the evaluation sees the wrong catalogue
        monkeypatch.setattr(module, "CONTROLS", wrong)
    with pytest.raises(validation.EvaluationError, match="CC8.1-03: the SQL detail"):
        ev.evaluate(con, s, bench.AS_OF)
    assert con.execute("SELECT count(*) FROM control_results").fetchall()[0][0] == 0  # rolled back
    con.close()
