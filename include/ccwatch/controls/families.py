"""The control families: one module per family holds its facts SQL, expectations and detail text.

``FAMILIES`` is the order in which ``controls.facts`` composes their fact columns; ``CONTROLS``
every control's rule in catalogue order.  Importing this module imports Great Expectations.
"""

from __future__ import annotations

from ccwatch.controls import deployment, emergency, history, path, repository, review, testing, ticket
from ccwatch.controls.base import Control
from ccwatch.controls.catalogue import CONTROL_IDS

# Modules whose change_fact_sql / repo_fact_sql build_facts composes (order = column order).
FAMILIES = (ticket, review, testing, deployment, emergency, path, repository, history)

_BY_ID: dict[str, Control] = {}
for _family in FAMILIES:
    for _c in _family.CONTROLS:
        if _c.id in _BY_ID:
            raise RuntimeError(f"control {_c.id} is declared twice ({_BY_ID[_c.id].module}, {_c.module})")
        _BY_ID[_c.id] = _c
if set(_BY_ID) != set(CONTROL_IDS):
    raise RuntimeError(f"the families declare {sorted(_BY_ID)}, the catalogue lists {list(CONTROL_IDS)}")

CONTROLS: list[Control] = [_BY_ID[i] for i in CONTROL_IDS]


def rule(control_id: str) -> Control:
    return _BY_ID[control_id]
