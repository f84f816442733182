"""DAG integrity (Astronomer style): every file in dags/ imports cleanly into a DagBag.

The bag is filled in an environment with no connections, no variables, a CCWATCH_CONFIG
that does not exist, the config loader booby-trapped and sockets refused: parsing a DAG
file (which the scheduler does every few seconds) must not read the config or touch the
network.  Meta-tests prove each trap fires on a DAG that does break the rule.
"""

from __future__ import annotations

import ast
import contextlib
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers.paths import ROOT

try:  # Airflow 3.x home of DagBag (airflow.models.dagbag only re-exports it, with a deprecation)
    from airflow.dag_processing.dagbag import DagBag
except ImportError:  # pragma: no cover - older layout
    from airflow.models.dagbag import DagBag

DAGS = ROOT / "dags"
CORE = ROOT / "include" / "ccwatch"
VENV_BIN = Path("/work/main/.venv/bin")
RUFF = str(VENV_BIN / "ruff") if (VENV_BIN / "ruff").exists() else str(Path(sys.executable).with_name("ruff"))
PYTHON = str(VENV_BIN / "python") if (VENV_BIN / "python").exists() else sys.executable

NIGHTLY_TASKS = {
    "github_repositories",
    "ingest_github_repo",
    "github_batches",
    "ingest_jira",
    "resolve_tickets",
    "load_warehouse",
    "build_facts",
    "evaluate_controls",
    "write_evidence",
    "alert_slack",
}
NIGHTLY_EDGES = {
    ("github_repositories", "ingest_github_repo"),
    ("ingest_github_repo", "github_batches"),
    ("github_batches", "resolve_tickets"),
    ("ingest_jira", "resolve_tickets"),
    ("resolve_tickets", "load_warehouse"),
    ("load_warehouse", "build_facts"),
    ("build_facts", "evaluate_controls"),
    ("evaluate_controls", "write_evidence"),
    ("write_evidence", "alert_slack"),
}

# DAGs run only by hand (schedule=None): they must take their input as validated Params.
MANUAL_DAGS = {"ccwatch_audit_sample"}
AUDIT_PARAMS = {"date_from", "date_to", "size", "seed"}


class Trap(RuntimeError):
    pass


def _no_network(*args, **kwargs):
    raise Trap("network access while importing a DAG file")


def _no_config(*args, **kwargs):
    raise Trap("the ccwatch config was read while importing a DAG file")


@contextlib.contextmanager
def parse_time_environment(tmp: Path):
    """What the scheduler's DAG processor may look like: nothing configured, nothing reachable."""
    import ccwatch.settings

    with pytest.MonkeyPatch.context() as mp:
        for name in list(os.environ):
            if name.startswith(("AIRFLOW_CONN_", "AIRFLOW_VAR_")) or name in (
                "CCWATCH_RETRIES",
                "CCWATCH_RETRY_DELAY_SECONDS",
                "CCWATCH_GITHUB_CONCURRENCY",
            ):
                mp.delenv(name)
        mp.setenv("CCWATCH_CONFIG", str(tmp / "does-not-exist" / "ccwatch.yaml"))
        mp.setenv("CCWATCH_HOME", str(tmp / "ccwatch-home"))
        mp.setattr(ccwatch.settings, "load_settings", _no_config)
        mp.setattr(ccwatch.settings, "config_path", _no_config)
        mp.setattr(socket.socket, "connect", _no_network)
        mp.setattr(socket.socket, "connect_ex", _no_network)
        mp.setattr(socket, "create_connection", _no_network)
        mp.setattr(socket, "getaddrinfo", _no_network)
        yield


def fill_dagbag(folder: Path, tmp: Path) -> DagBag:
    with parse_time_environment(tmp):
        return DagBag(dag_folder=str(folder), safe_mode=False)


@pytest.fixture(scope="module")
def dagbag(tmp_path_factory) -> DagBag:
    return fill_dagbag(DAGS, tmp_path_factory.mktemp("dagbag"))


@pytest.fixture(scope="module")
def nightly(dagbag):
    assert "ccwatch_nightly" in dagbag.dags, f"dags found: {sorted(dagbag.dags)}"
    return dagbag.dags["ccwatch_nightly"]


# --- every DAG ---------------------------------------------------------------------


def test_no_import_errors(dagbag):
    assert dagbag.import_errors == {}, "\n".join(f"{f}:\n{e}" for f, e in dagbag.import_errors.items())


def test_no_warnings_while_parsing(dagbag):
    assert dagbag.captured_warnings == {}, dagbag.captured_warnings


def test_every_dag_file_yields_a_dag(dagbag):
    files = {Path(d.fileloc).name for d in dagbag.dags.values()}
    assert files == {p.name for p in DAGS.glob("*.py") if not p.name.startswith("_")}
    assert dagbag.size() >= 1


def test_every_dag_follows_the_conventions(dagbag):
    problems = []
    for dag_id, dag in dagbag.dags.items():
        if not dag.tags:
            problems.append(f"{dag_id}: no tags")
        if not (dag.doc_md or "").strip():
            problems.append(f"{dag_id}: no doc_md")
        if dag.catchup is not False:
            problems.append(f"{dag_id}: catchup is {dag.catchup!r}")
        if dag.schedule is None and dag_id not in MANUAL_DAGS:
            problems.append(f"{dag_id}: no schedule")
        if dag.schedule is not None and dag_id in MANUAL_DAGS:
            problems.append(f"{dag_id}: manual DAG has schedule {dag.schedule!r}")
        retries = (dag.default_args or {}).get("retries")
        if not isinstance(retries, int) or retries < 2:
            problems.append(f"{dag_id}: default_args retries is {retries!r}")
        problems += [f"{dag_id}.{t.task_id}: retries {t.retries}" for t in dag.tasks if t.retries < 2]
    assert not problems, problems


# --- ccwatch_nightly -----------------------------------------------------------------


def test_nightly_has_exactly_the_stage_tasks(nightly):
    assert set(nightly.task_ids) == NIGHTLY_TASKS
    assert len(nightly.task_ids) == len(NIGHTLY_TASKS)


def test_nightly_dependencies(nightly):
    edges = {(t.task_id, d) for t in nightly.tasks for d in t.downstream_task_ids}
    assert edges == NIGHTLY_EDGES
    resolve = nightly.get_task("resolve_tickets")
    assert resolve.upstream_task_ids == {"github_batches", "ingest_jira"}
    # (issue #15) the statuses of every repository's deployments, asked once every repository is fetched
    assert nightly.get_task("github_batches").upstream_task_ids == {"ingest_github_repo"}
    assert {t.task_id for t in nightly.roots} == {"github_repositories", "ingest_jira"}
    assert [t.task_id for t in nightly.leaves] == ["alert_slack"]
    # alert_slack is downstream of every other stage: nothing runs after it, it runs after all
    upstream_of_alert = {t.task_id for t in nightly.get_task("alert_slack").get_flat_relatives(upstream=True)}
    assert upstream_of_alert == NIGHTLY_TASKS - {"alert_slack"}


def test_nightly_fetches_github_per_repository_with_task_mapping(nightly):
    """One mapped task instance per configured repository (the Celery test relies on the task id),
    labelled with the repository, at most CCWATCH_GITHUB_CONCURRENCY (default 4) at a time."""
    from airflow.sdk.definitions.mappedoperator import MappedOperator

    fetch = nightly.get_task("ingest_github_repo")
    assert isinstance(fetch, MappedOperator), type(fetch)
    assert set(fetch.op_kwargs_expand_input.value) == {"repo"}, "mapped over the repository names"
    assert fetch.map_index_template and "repo" in fetch.map_index_template
    assert fetch.max_active_tis_per_dagrun == 4
    assert fetch.retries >= 2
    assert fetch.upstream_task_ids == {"github_repositories"}
    assert not isinstance(nightly.get_task("github_repositories"), MappedOperator)


def test_nightly_concurrency_comes_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("CCWATCH_GITHUB_CONCURRENCY", "9")
    with parse_time_environment(tmp_path):
        os.environ["CCWATCH_GITHUB_CONCURRENCY"] = "9"
        bag = DagBag(dag_folder=str(DAGS / "ccwatch_nightly.py"), safe_mode=False)
    assert bag.import_errors == {}
    assert bag.dags["ccwatch_nightly"].get_task("ingest_github_repo").max_active_tis_per_dagrun == 9
    monkeypatch.setenv("CCWATCH_GITHUB_CONCURRENCY", "0")
    with parse_time_environment(tmp_path):
        os.environ["CCWATCH_GITHUB_CONCURRENCY"] = "0"
        bad = DagBag(dag_folder=str(DAGS / "ccwatch_nightly.py"), safe_mode=False)
    assert "CCWATCH_GITHUB_CONCURRENCY" in "".join(bad.import_errors.values())


def test_nightly_schedule_and_run_settings(nightly):
    assert nightly.schedule == "0 2 * * *"
    assert nightly.catchup is False
    assert nightly.max_active_runs == 1
    assert {"ccwatch", "soc2"} <= set(nightly.tags)
    assert "ingest_github" in nightly.doc_md and "CCWATCH_CONFIG" in nightly.doc_md
    assert nightly.start_date.year == 2026 and nightly.start_date.utcoffset().total_seconds() == 0


def test_nightly_failure_callback_is_the_slack_alert(nightly):
    from ccwatch_airflow.callbacks import alert_pipeline_failure

    callback = nightly.default_args["on_failure_callback"]
    assert getattr(callback, "__qualname__", None) == alert_pipeline_failure.__qualname__
    assert getattr(callback, "__module__", None) == alert_pipeline_failure.__module__


# --- ccwatch_audit_sample ------------------------------------------------------------


@pytest.fixture(scope="module")
def audit(dagbag):
    assert "ccwatch_audit_sample" in dagbag.dags, f"dags found: {sorted(dagbag.dags)}"
    return dagbag.dags["ccwatch_audit_sample"]


def test_every_dag_is_known(dagbag):
    assert set(dagbag.dags) == {"ccwatch_nightly"} | MANUAL_DAGS


def test_audit_sample_is_manual_with_one_thin_task(audit):
    assert audit.schedule is None and audit.catchup is False
    assert audit.task_ids == ["write_sample_packet"]
    assert audit.get_task("write_sample_packet").retries >= 2
    assert {"ccwatch", "soc2", "audit"} <= set(audit.tags)
    doc = audit.doc_md or ""
    assert all(p in doc for p in AUDIT_PARAMS) and "docs/AUDITOR.md" in doc


def test_audit_sample_params_have_types_and_validation(audit):
    import copy

    from airflow.sdk.exceptions import ParamValidationError

    params = audit.params
    assert set(params.keys()) == AUDIT_PARAMS
    schemas = {k: params.get_param(k).schema for k in AUDIT_PARAMS}
    assert schemas["date_from"] == {**schemas["date_from"], "type": "string", "format": "date"}
    assert schemas["date_to"] == {**schemas["date_to"], "type": "string", "format": "date"}
    assert schemas["size"]["type"] == "integer" and schemas["size"]["minimum"] == 1
    assert schemas["seed"]["type"] == "integer"
    assert params["size"] == 25
    good = {"date_from": "2026-10-01", "date_to": "2026-11-25", "size": 25, "seed": 7}
    ok = copy.deepcopy(params)
    ok.update(good)
    assert ok.validate() == good
    for key, bad in (("date_from", "2026-13-01"), ("date_to", "25/11/2026"), ("size", 0), ("seed", "seven")):
        p = copy.deepcopy(params)
        with pytest.raises(ParamValidationError):
            p.update({**good, key: bad})
            p.validate()
    with pytest.raises(ParamValidationError):  # nothing given: the period and seed are required
        copy.deepcopy(params).validate()


def test_audit_sample_task_calls_the_core_only():
    source = (DAGS / "ccwatch_audit_sample.py").read_text()
    assert "ccwatch.audit.packet import sample_packet" in source
    assert "import duckdb" not in source and "open(" not in source


# --- the traps work (so a green run above means something) --------------------------


def _bag_of(tmp_path: Path, source: str) -> DagBag:
    folder = tmp_path / "dags"
    folder.mkdir()
    (folder / "bad_dag.py").write_text(source)
    return fill_dagbag(folder, tmp_path)


_DAG_TEMPLATE = """
import pendulum
from airflow.sdk import dag, task
{prelude}

@dag(schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC"), catchup=False)
def bad_dag():
    @task
    def t():
        pass
    t()

bad_dag()
"""


def test_trap_a_dag_that_reads_the_config_at_import(tmp_path):
    bag = _bag_of(
        tmp_path, _DAG_TEMPLATE.format(prelude="from ccwatch.settings import load_settings\nload_settings()")
    )
    assert bag.import_errors and "config was read" in "".join(bag.import_errors.values())


def test_trap_a_dag_that_opens_a_socket_at_import(tmp_path):
    prelude = "import urllib.request\nurllib.request.urlopen('http://example.invalid/', timeout=1)"
    bag = _bag_of(tmp_path, _DAG_TEMPLATE.format(prelude=prelude))
    assert bag.import_errors and "network access" in "".join(bag.import_errors.values())


def test_trap_a_dag_that_needs_a_connection_at_import(tmp_path):
    prelude = "from airflow.sdk import BaseHook\nBaseHook.get_connection('github_default')"
    bag = _bag_of(tmp_path, _DAG_TEMPLATE.format(prelude=prelude))
    assert bag.import_errors and "github_default" in "".join(bag.import_errors.values())


def test_a_clean_dag_passes_the_traps(tmp_path):
    bag = _bag_of(tmp_path, _DAG_TEMPLATE.format(prelude=""))
    assert bag.import_errors == {} and bag.dag_ids == ["bad_dag"]


# --- the pure core never imports Airflow ------------------------------------------------

_AIRFLOW_IMPORT = re.compile(r"^\s*(from\s+airflow[\s.]|import\s+airflow\b)", re.MULTILINE)


def _core_files() -> list[Path]:
    files = sorted(CORE.rglob("*.py"))
    assert len(files) > 10, "include/ccwatch not found"
    return files


def test_core_has_no_airflow_import_text():
    offenders = [str(p.relative_to(ROOT)) for p in _core_files() if _AIRFLOW_IMPORT.search(p.read_text())]
    assert offenders == []


def test_core_has_no_airflow_import_statement():
    offenders = []
    for path in _core_files():
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            offenders += [
                f"{path.relative_to(ROOT)}:{node.lineno}" for n in names if n.split(".")[0] == "airflow"
            ]
    assert offenders == []


def test_the_import_pattern_would_catch_one():
    assert _AIRFLOW_IMPORT.search("x = 1\n    from airflow.sdk import dag\n")
    assert _AIRFLOW_IMPORT.search("import airflow\n")
    assert not _AIRFLOW_IMPORT.search("import airflow_helpers\n# from airflowish import x\n")


def test_every_core_module_imports_with_airflow_blocked():
    """Transitive imports too: load every ccwatch module in a fresh interpreter where airflow cannot load."""
    script = r"""
import importlib, pkgutil, sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name == "airflow" or name.startswith("airflow."):
            raise ImportError("airflow is blocked: " + name)
sys.meta_path.insert(0, Block())
import ccwatch
failed = []
for m in pkgutil.walk_packages(ccwatch.__path__, "ccwatch."):
    if m.name.endswith("__main__"):
        continue
    try:
        importlib.import_module(m.name)
    except Exception as exc:
        failed.append(f"{m.name}: {exc!r}")
print("\n".join(failed))
print("AIRFLOW_LOADED" if any(k.split(".")[0] == "airflow" for k in sys.modules) else "CLEAN")
"""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PYTHONPATH"] = str(ROOT / "include")
    proc = subprocess.run(
        [PYTHON, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip().splitlines() == ["CLEAN"], proc.stdout


# --- ruff AIR3 (Airflow 3 migration rules) ------------------------------------------------


def _ruff(*paths: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [RUFF, "check", "--no-cache", "--select", "AIR3", *paths],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_ruff_air3_passes_on_dags_and_plugins():
    proc = _ruff("dags", "plugins")
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_ruff_air3_flags_airflow2_code(tmp_path):
    old = tmp_path / "old_dag.py"
    old.write_text('from airflow import DAG\n\nDAG(dag_id="x", schedule_interval="@daily")\n')
    proc = _ruff(str(old))
    assert proc.returncode == 1 and "AIR301" in proc.stdout, proc.stdout + proc.stderr
