"""The CC8.1 control catalogue (CONTROLS.md): ids, names, what a row is, and the status words, once.

Everything that names a control (the report, Slack, OSCAL, POLICY.md, the auditor's packet)
reads it here; each family module declares the rule of its controls with
:func:`ccwatch.controls.base.control`, which takes the name and scope from this table, and
``controls.families`` checks that every id below has exactly one rule.  Light on purpose: no
Great Expectations import, so the publishing stages can name controls cheaply.
"""

from __future__ import annotations

import re
from typing import NamedTuple

STATUSES = ("pass", "fail", "pending", "not_applicable")


class Entry(NamedTuple):
    id: str
    name: str
    scope: str  # 'change': a row per change; 'repo': a row per repository (change_id = owner/repo)


CATALOGUE: tuple[Entry, ...] = (
    Entry("CC8.1-01", "Ticket traceability", "change"),
    Entry("CC8.1-02", "Change request documented", "change"),
    Entry("CC8.1-03", "Independent peer review", "change"),
    Entry("CC8.1-04", "Segregation of duties", "change"),
    Entry("CC8.1-05", "Tested before merge", "change"),
    Entry("CC8.1-06", "Final approval before deployment", "change"),
    Entry("CC8.1-07", "Controlled deployment", "change"),
    Entry("CC8.1-08", "Post-implementation review", "change"),
    Entry("CC8.1-09", "Emergency change procedure", "change"),
    Entry("CC8.1-10", "Authorised change path", "change"),
    Entry("CC8.1-11", "Production branch protected", "repo"),
    Entry("CC8.1-12", "Deployment access restricted", "repo"),
    Entry("CC8.1-13", "Validated before production", "change"),
    Entry("CC8.1-14", "Production history not rewritten", "repo"),
    Entry("CC8.1-15", "Production deployments ship reviewed branch code", "repo"),
)

CONTROL_IDS: tuple[str, ...] = tuple(e.id for e in CATALOGUE)
CONTROL_NAMES: dict[str, str] = {e.id: e.name for e in CATALOGUE}
REPO_CONTROLS: tuple[str, ...] = tuple(e.id for e in CATALOGUE if e.scope == "repo")
CHANGE_CONTROLS: tuple[str, ...] = tuple(e.id for e in CATALOGUE if e.scope == "change")
_BY_ID = {e.id: e for e in CATALOGUE}


def control_entry(control_id: str) -> Entry:
    return _BY_ID[control_id]


def control_name(control_id: str) -> str:
    return CONTROL_NAMES.get(control_id, control_id)


def control_sort_key(control_id: str) -> tuple:
    """Numeric order of control ids (CC8.1-2 before CC8.1-10); unknown ids last."""
    m = re.search(r"(\d+)$", control_id or "")
    return (0, int(m.group(1))) if m else (1, control_id or "")
