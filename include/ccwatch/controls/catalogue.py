"""The explicit, ordered list of CC8.1 controls (CONTROLS.md), and the modules that contribute facts."""

from __future__ import annotations

from ccwatch.controls import Control, deployment, emergency, path, repository, review, testing, ticket

# Modules whose change_fact_sql / repo_fact_sql build_facts composes (order = column order).
FACT_MODULES = (ticket, review, testing, deployment, emergency, path, repository)

_BY_ID = {c.id: c for m in FACT_MODULES for c in m.CONTROLS}

CONTROL_IDS = (
    "CC8.1-01", "CC8.1-02", "CC8.1-03", "CC8.1-04", "CC8.1-05", "CC8.1-06", "CC8.1-07",
    "CC8.1-08", "CC8.1-09", "CC8.1-10", "CC8.1-11", "CC8.1-12", "CC8.1-13",
)

CONTROLS: list[Control] = [_BY_ID[i] for i in CONTROL_IDS]


def control(control_id: str) -> Control:
    return _BY_ID[control_id]
