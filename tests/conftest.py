"""Test-session isolation, and the suite's layers as markers.

Isolation: Airflow never touches the project's airflow_home or ambient connections.  This runs
before any test module imports Airflow (the venv's .pth would otherwise point AIRFLOW_HOME at
<project>/airflow_home).

Markers: every test is marked by the folder it lives in (``unit``, ``integration``, ``system``;
registered in pyproject.toml), so ``pytest -m "not system"`` is the fast subset.

Faults that never fire: a test that adds a fault to the API double (its scenario's ``faults`` or
``add_fault``, or a ``fault_hook`` it sets) and passes although the fault changed no answer proves
nothing about that fault (the code it meant to fault stopped asking that request, and the test kept
passing).  Such a test fails at teardown naming the fault, unless it is marked
``faults_may_not_fire(reason=...)`` (e.g. a hook that only observes the requests).  A hook set on
several doubles in one test counts once: it fired if it changed an answer on any of them.
"""

import atexit
import os
import shutil
import tempfile
from pathlib import Path

import pytest
from ccwatch.sandbox import SandboxServer
from ccwatch.sandbox.faults import FaultEngine

os.environ["AIRFLOW_HOME"] = tempfile.mkdtemp(prefix="ccwatch-test-airflow-home-")
atexit.register(shutil.rmtree, os.environ["AIRFLOW_HOME"], True)
for _name in [n for n in os.environ if n.startswith(("AIRFLOW_CONN_", "AIRFLOW_VAR_"))]:
    del os.environ[_name]

TESTS = Path(__file__).resolve().parent
LAYERS = ("unit", "integration", "system")


def pytest_collection_modifyitems(config, items):
    for item in items:
        try:
            layer = Path(item.path).resolve().relative_to(TESTS).parts[0]
        except ValueError:  # a test outside tests/ (e.g. a path given on the command line)
            continue
        if layer not in LAYERS:
            raise pytest.UsageError(f"{item.nodeid}: every test lives under tests/unit, tests/integration or "
                                    "tests/system (tests/helpers holds no tests)")
        item.add_marker(getattr(pytest.mark, layer))


_ADDED: list[tuple[FaultEngine, dict]] = []  # the faults added during the running test
_engine_add = FaultEngine.add


def _recording_add(self: FaultEngine, fault: dict) -> dict:
    f = _engine_add(self, fault)
    _ADDED.append((self, f))
    return f


FaultEngine.add = _recording_add

_HOOKED: list[tuple[SandboxServer, object]] = []  # the fault hooks set during the running test
_set_hook = SandboxServer.fault_hook.fset


def _recording_set_hook(self: SandboxServer, hook) -> None:
    _set_hook(self, hook)
    if hook is not None:
        _HOOKED.append((self, hook))


SandboxServer.fault_hook = SandboxServer.fault_hook.setter(_recording_set_hook)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if call.when == "call":
        item.ccwatch_call_passed = report.passed
    return report


@pytest.fixture(autouse=True)
def _every_fault_fires(request):
    """Fail a passing test whose API-double fault changed no answer (see the module docstring)."""
    _ADDED.clear()
    _HOOKED.clear()
    yield
    added, _ADDED[:] = list(_ADDED), []
    hooked, _HOOKED[:] = list(_HOOKED), []
    if not getattr(request.node, "ccwatch_call_passed", False) or request.node.get_closest_marker("faults_may_not_fire"):
        return
    fired = {id(h) for srv, h in hooked if all(u is not h for u in srv.unfired_hooks())}
    silent = list({id(h): getattr(h, "__qualname__", repr(h)) for _, h in hooked if id(h) not in fired}.values())
    if silent:
        pytest.fail(f"{len(silent)} fault hook(s) of the API double changed no answer, so this test cannot fail "
                    f"for them: {silent}. Point the hook at a request the code under test still makes, or mark "
                    "the test faults_may_not_fire(reason=...) (a hook that only observes)", pytrace=False)
    unfired = {id(f) for engine in {id(e): e for e, _ in added}.values() for f in engine.unfired()}
    never = [f for _, f in added if id(f) in unfired]
    if never:
        pytest.fail(f"{len(never)} fault(s) of the API double changed no answer, so this test cannot fail for "
                    f"them: {never}. Point the fault at a request the code under test still makes, or mark "
                    "the test faults_may_not_fire(reason=...)", pytrace=False)
