"""Evaluation at scale: the benchmark's smoke mode, the derived statuses against GX's complete
unexpected lists, the consistency check that turns any disagreement into an error, and the
report's bounded failure lists.  Correctness only: no timing is asserted."""

from __future__ import annotations

import re
import sys

import pytest

from tests.helpers.paths import BENCHMARKS

sys.path.insert(0, str(BENCHMARKS))

import bench_evaluation as bench  # noqa: E402
from ccwatch.common.times import iso, naive_utc  # noqa: E402
from ccwatch.controls import evaluate as ev  # noqa: E402
from ccwatch.controls import gx_mask as derive  # noqa: E402
from ccwatch.controls import gx_validate as validation  # noqa: E402
from ccwatch.controls.catalogue import REPO_CONTROLS  # noqa: E402
from ccwatch.controls.facts import build_facts  # noqa: E402
from ccwatch.controls.families import CONTROLS  # noqa: E402
from ccwatch.publish.evidence.verify import verify_archive  # noqa: E402
from ccwatch.publish.report.html import render_report  # noqa: E402
from ccwatch.warehouse.connection import connect  # noqa: E402

N = 500


@pytest.fixture(scope="module")
def world():
    con = connect(":memory:")
    con.execute(bench.GEN.format(n=N, repos=bench.REPOS))
    s = bench.settings()
    build_facts(con, s, bench.AS_OF)
    yield con, s
    con.close()


def test_smoke_run_every_phase(tmp_path):
    out = bench.run_once(N, tmp_path, archive=True)
    repos = len(bench.settings().github.repositories)
    assert out["counts"]["changes"] == N and out["counts"]["repositories"] == repos
    assert out["rows"] == N * 11 + repos * len(REPO_CONTROLS)
    for cid, counts in out["summary"].items():
        assert sum(counts.values()) == (repos if cid in REPO_CONTROLS else N), cid
    assert out["summary"]["CC8.1-10"]["fail"] == N // 100  # every 100th change is a direct push
    assert out["summary"]["CC8.1-05"]["fail"] > 0  # every 53rd PR has a failing test check
    assert set(out["phases"]) == {"generate", "build_facts", "evaluate", "report", "archive"}
    assert verify_archive(out["archive"]) == []


def test_smoke_report_over_derived_run_dates(tmp_path):
    out = bench.run_once(200, tmp_path, report_history=3)
    assert set(out["phases"]) == {"generate", "build_facts", "evaluate", "history", "report"}
    assert out["history_rows"] == 3 * out["rows"] and out["report_history"] == 3


def test_derived_statuses_equal_gx_complete_unexpected_rows(world):
    """The vectorised derivation marks exactly the rows GX lists in COMPLETE format."""
    import great_expectations as gx

    con, s = world
    ctx = validation._context()
    ds = ctx.data_sources.add_pandas("reference")
    for control in CONTROLS:
        exps = control.expectations(s)
        frame = validation.facts_frame(con, validation.TABLES[control.scope], validation.suite_columns(control, exps))
        batch = ds.add_dataframe_asset(control.id).add_batch_definition_whole_dataframe("all").get_batch(
            batch_parameters={"dataframe": frame})
        res = batch.validate(gx.ExpectationSuite(name=control.id, expectations=exps), result_format={
            "result_format": "COMPLETE", "unexpected_index_column_names": ["change_id"]}).to_json_dict()
        for r in res["results"]:
            want = {i["change_id"] for i in r["result"].get("unexpected_index_list") or []}
            mask = derive.unexpected_mask(frame, r["expectation_config"])
            got = set(frame["change_id"].to_numpy()[mask].tolist())
            assert got == want, (control.id, r["expectation_config"]["type"])


def test_disagreement_with_gx_is_an_error_not_a_status(world, monkeypatch):
    con, s = world
    real = derive.unexpected_mask

    def off_by_one(frame, config):
        mask = real(frame, config).copy()
        if config["kwargs"].get("column") == "checks_not_green":
            mask[0] = not mask[0]
        return mask

    monkeypatch.setattr(validation, "unexpected_mask", off_by_one)
    before = con.execute("SELECT count(*) FROM control_results").fetchone()[0]
    with pytest.raises(validation.EvaluationError, match="CC8.1-05.*GX reports"):
        ev.evaluate(con, s, bench.AS_OF)
    assert con.execute("SELECT count(*) FROM control_results").fetchone()[0] == before


def test_an_expectation_without_derivation_is_an_error():
    import pandas as pd

    frame = pd.DataFrame({"change_id": ["a"], "x": [1]})
    with pytest.raises(derive.DeriveError, match="no derivation"):
        derive.unexpected_mask(frame, {"type": "expect_column_values_to_match_regex", "kwargs": {"column": "x"}})
    with pytest.raises(derive.DeriveError, match="mostly"):
        derive.unexpected_mask(frame, {"type": "expect_column_values_to_not_be_null",
                                       "kwargs": {"column": "x", "mostly": 0.5}})


def test_report_lists_at_most_top_n_failures_per_control(world):
    con, s = world
    res = ev.evaluate(con, s, bench.AS_OF)
    html = render_report(con, s, bench.AS_OF, res.gx_results, top_n=3)
    fails = res.summary["CC8.1-10"]["fail"]
    assert fails > 3
    section = html[html.index('id="fail-CC8.1-10"'):]
    section = section[:section.index("</table>")]
    assert f"({fails})</h3>" in section  # the heading keeps the full count
    assert f"Showing the first 3 of {fails} failing changes" in section
    assert len(re.findall(r"<tr data-control=", section)) == 3
    # the headline counts are complete
    row = re.search(r"<tr><td><a [^>]*>CC8\.1-10</a>.*?</tr>", html, re.S).group(0)
    assert re.findall(r'<td class="num">(\d+)</td>', row)[:2] == [str(N - fails), str(fails)]


def _reference_string_agg(value, sep, order, where=None):
    return f"string_agg({value}, {sep} ORDER BY {', '.join(order)})" + (f" FILTER (WHERE {where})" if where else "")


def test_smoke_fast_paths_give_the_reference_results(monkeypatch):
    """Issue #15 (C): the benchmark's warehouse evaluated with the fast fact paths (RE2 title keys,
    sorted-list text aggregates) and with the references gives the same control_results rows."""
    from ccwatch.controls import deployment, review, testing, ticket
    from ccwatch.warehouse import facts as base_facts
    from ccwatch.warehouse.title_keys import build_title_keys_reference

    def results(con, s):
        build_facts(con, s, bench.AS_OF)
        ev.evaluate(con, s, bench.AS_OF)
        return con.execute("SELECT * FROM control_results ORDER BY change_id, control_id").fetchall()

    con = connect(":memory:")
    con.execute(bench.GEN.format(n=300, repos=bench.REPOS))
    con.execute("UPDATE pull_requests SET title = 'SHA-256 [PAY-' || number || '] é OPS-' || number "
                "WHERE number % 4 = 0")
    s = bench.settings()
    fast = results(con, s)
    with monkeypatch.context() as m:
        m.setattr(base_facts, "build_title_keys", build_title_keys_reference)
        for mod in (deployment, review, testing, ticket):
            m.setattr(mod, "sorted_string_agg", _reference_string_agg)
        ref = results(con, s)
    assert len(fast) == 300 * 11 + len(s.github.repositories) * len(REPO_CONTROLS) and fast == ref


def _reference_suites(con, s, as_of_iso):
    """The former run_suites: one frame at a time with the change ids as fetched, GX's batch
    loaded by ``get_batch`` and validated by ``Batch.validate``, then the derivation from GX's
    own results."""
    import great_expectations as gx

    ds = validation._context().data_sources.add_pandas("ccwatch")
    statuses, results = {}, []
    for control in CONTROLS:
        exps = control.expectations(s)
        table = validation.TABLES[control.scope]
        frame = validation.facts_frame(con, table, validation.suite_columns(control, exps))
        assert not isinstance(frame["change_id"].dtype, __import__("pandas").CategoricalDtype)
        batch = ds.add_dataframe_asset(f"{table} {control.id}").add_batch_definition_whole_dataframe(
            f"{table} as of {as_of_iso}").get_batch(batch_parameters={"dataframe": frame})
        res = batch.validate(gx.ExpectationSuite(name=control.id, expectations=exps),
                             result_format=validation.RESULT_FORMAT).to_json_dict()
        statuses[control.id] = validation._statuses(frame, control, validation._unexpected_ids(res, control, frame))
        results.append(validation._clean(res, control, as_of_iso))
    return statuses, results


def test_gx_results_and_statuses_equal_the_former_serial_validation(world):
    """Issue #15: the suites validated from frames sharing one categorical change_id column, each
    batch loaded once by GX's validator, give the same GX results (batch fingerprint, counts, samples,
    JSON) and the same statuses as the former one-frame-at-a-time validation."""
    import json

    con, s = world
    as_of_iso = iso(naive_utc(bench.AS_OF))
    ref_statuses, ref_results = _reference_suites(con, s, as_of_iso)
    res = ev.evaluate(con, s, bench.AS_OF)
    assert json.dumps(res.gx_results, sort_keys=True) == json.dumps(ref_results, sort_keys=True)
    assert all(r["meta"]["batch_markers"].get("pandas_data_fingerprint") for r in res.gx_results)
    statuses, results = validation.run_suites(con, s, as_of_iso)
    assert json.dumps(results, sort_keys=True) == json.dumps(ref_results, sort_keys=True)
    assert statuses.keys() == ref_statuses.keys()
    for cid, st in statuses.items():
        assert st.tolist() == ref_statuses[cid].tolist(), cid
    assert res.summary == ev._summary(ref_statuses)
