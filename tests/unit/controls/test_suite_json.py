"""The committed GX suite definitions are exactly what the code builds for the bundled config."""


from ccwatch.controls.catalogue import CONTROL_IDS
from ccwatch.controls.suite_json import render, suite_definitions
from ccwatch.settings import load_settings

from tests.helpers.paths import ROOT

SUITES = ROOT / "include/ccwatch/controls/suites"


def test_committed_suites_match_the_code():
    built = suite_definitions(load_settings())
    assert sorted(built) == sorted(CONTROL_IDS)
    for cid, doc in built.items():
        path = SUITES / f"{cid}.json"
        assert path.is_file(), f"{path} missing: run python -m ccwatch suites"
        assert path.read_text(encoding="utf-8") == render(doc), f"{path} is stale: run python -m ccwatch suites"


def test_suites_state_rules_over_named_facts():
    built = suite_definitions(load_settings())
    cc03 = built["CC8.1-03"]["expectations"]
    assert any(e["kwargs"].get("column") == "independent_approvals" and e["kwargs"].get("min_value") == 1
               for e in cc03)
    for doc in built.values():
        for exp in doc["expectations"]:
            assert exp["kwargs"]["row_condition"]["column"]["name"].endswith("_scope")
