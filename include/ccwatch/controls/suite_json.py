"""The GX expectation suites of the controls as JSON documents, for review outside Python.

``python -m ccwatch suites --out DIR`` writes one ``<control id>.json`` per control for the
configuration in force; the suites of the bundled config are committed under
``include/ccwatch/controls/suites/`` and a test keeps them equal to the code, so a reviewer
(or an auditor) reads each rule in Great Expectations' own format.
"""

from __future__ import annotations

import json
from pathlib import Path

from ccwatch.settings import Settings


def suite_definitions(settings: Settings) -> dict[str, dict]:
    import great_expectations as gx

    from ccwatch.controls.families import CONTROLS

    out = {}
    for control in CONTROLS:
        suite = gx.ExpectationSuite(name=control.id, expectations=control.expectations(settings))
        doc = suite.to_json_dict()
        doc.pop("id", None)
        for exp in doc.get("expectations", []):
            exp.pop("id", None)
        doc["meta"] = {"control": control.name, "scope": control.scope,
                       "applies_to_rows_where": f"{control.scope_column} == 'due'"}
        out[control.id] = doc
    return out


def render(doc: dict) -> str:
    return json.dumps(doc, indent=2, sort_keys=True, default=str) + "\n"


def write_suites(settings: Settings, out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for cid, doc in suite_definitions(settings).items():
        path = out / f"{cid}.json"
        path.write_text(render(doc), encoding="utf-8")
        paths.append(path)
    return paths
