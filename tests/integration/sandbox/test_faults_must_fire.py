"""tests/conftest.py fails a passing test whose API-double fault changed no answer.

Run in a child pytest (``pytester``) with a copy of the suite's conftest, so the check under test
is the one every test of this suite runs under.
"""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

CONFTEST = (Path(__file__).resolve().parents[2] / "conftest.py").read_text(encoding="utf-8")

INNER = '''
import pytest
import requests
from ccwatch.sandbox import SandboxServer

SCENARIO = {"auth": {"github_token": "ghp_inner"}, "github": {"repos": {"acme/api": {"id": 1, "default_branch": "main"}}}}
FAULT = {"service": "github", "path": r"/repos/acme/api$", "mode": "status", "status": 502}
ELSEWHERE = {"service": "github", "path": r"/pulls$", "mode": "status", "status": 502}


def ask(srv):
    return requests.get(srv.url + "/repos/acme/api", headers={"Authorization": "token ghp_inner"}, timeout=5).status_code


def test_fired():
    with SandboxServer(SCENARIO) as srv:
        srv.add_fault(FAULT)
        assert ask(srv) == 502


def test_never_fired():
    with SandboxServer(dict(SCENARIO, faults=[ELSEWHERE])) as srv:
        assert ask(srv) == 200


@pytest.mark.faults_may_not_fire(reason="the fault is a guard the code may not reach")
def test_never_fired_but_marked():
    with SandboxServer(SCENARIO) as srv:
        srv.add_fault(ELSEWHERE)
        assert ask(srv) == 200


def test_fails_for_its_own_reason():
    with SandboxServer(SCENARIO) as srv:
        srv.add_fault(ELSEWHERE)
        assert ask(srv) == 404
'''


def test_a_passing_test_whose_fault_never_fired_errors_naming_the_fault(pytester: pytest.Pytester):
    pytester.makeconftest(CONFTEST)
    pytester.makeini("[pytest]\nmarkers =\n    integration: the layer\n    faults_may_not_fire(reason): the opt-out\n")
    pytester.mkdir("integration")
    pytester.makepyfile(**{"integration/test_inner": INNER})  # the conftest wants a layer folder
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-rA")
    result.assert_outcomes(passed=3, failed=1, errors=1)  # the error is the teardown of test_never_fired
    result.stdout.fnmatch_lines(["*ERROR at teardown of test_never_fired *",
                                 "1 fault(s) of the API double changed no answer*'path': '/pulls$'*"])
    out = result.stdout.str()
    assert "ERROR at teardown of test_never_fired_but_marked" not in out
    assert "ERROR at teardown of test_fails_for_its_own_reason" not in out  # its own failure, nothing added


INNER_HOOKS = '''
import pytest
import requests
from ccwatch.sandbox import SandboxServer
from ccwatch.sandbox.http import SandboxResponse

SCENARIO = {"auth": {"github_token": "ghp_inner"}, "github": {"repos": {"acme/api": {"id": 1, "default_branch": "main"}}}}


def ask(srv, path="/repos/acme/api"):
    return requests.get(srv.url + path, headers={"Authorization": "token ghp_inner"}, timeout=5).status_code


def bad_gateway_on(path):
    def hook(service, req, resp):
        return SandboxResponse(status=502, data={"message": "bad gateway"}) if req.path.endswith(path) else None
    return hook


def test_hook_fired():
    with SandboxServer(SCENARIO) as srv:
        srv.fault_hook = bad_gateway_on("/repos/acme/api")
        assert ask(srv) == 502


def test_hook_never_fired():
    with SandboxServer(SCENARIO) as srv:
        srv.fault_hook = bad_gateway_on("/pulls")
        assert ask(srv) == 200


def test_hook_fired_on_a_later_double():  # one hook, two doubles: it changed an answer on one of them
    hook = bad_gateway_on("/repos/acme/api")
    for path, want in (("/zen", 404), ("/repos/acme/api", 502)):
        with SandboxServer(SCENARIO) as srv:
            srv.fault_hook = hook
            assert ask(srv, path) in (want, 200)


def test_hook_returning_the_answer_it_got():
    with SandboxServer(SCENARIO) as srv:
        srv.fault_hook = lambda service, req, resp: resp
        assert ask(srv) == 200


@pytest.mark.faults_may_not_fire(reason="an observer: it records the requests and changes nothing")
def test_observer_hook_marked():
    seen = []
    with SandboxServer(SCENARIO) as srv:
        srv.fault_hook = lambda service, req, resp: seen.append(req.path)
        assert ask(srv) == 200 and seen == ["/repos/acme/api"]
'''


def test_a_passing_test_whose_fault_hook_changed_no_answer_errors_naming_it(pytester: pytest.Pytester):
    pytester.makeconftest(CONFTEST)
    pytester.makeini("[pytest]\nmarkers =\n    integration: the layer\n    faults_may_not_fire(reason): the opt-out\n")
    pytester.mkdir("integration")
    pytester.makepyfile(**{"integration/test_inner_hooks": INNER_HOOKS})
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-rA")
    result.assert_outcomes(passed=5, errors=2)
    result.stdout.fnmatch_lines(["*ERROR at teardown of test_hook_never_fired *",
                                 "*1 fault hook(s) of the API double changed no answer*bad_gateway_on.<locals>.hook*"])
    out = result.stdout.str()
    assert "ERROR at teardown of test_hook_returning_the_answer_it_got" in out
    for fine in ("test_hook_fired ", "test_hook_fired_on_a_later_double", "test_observer_hook_marked"):
        assert f"ERROR at teardown of {fine}" not in out
