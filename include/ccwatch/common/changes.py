"""What a change id says (CONTROLS.md, "What a change is"), and the ticket a PR title links.

``owner/repo#12`` is a pull request, ``owner/repo@<sha>`` a direct push, ``owner/repo`` a
repository row.  Every stage that needs to tell them apart, name a change's folder or find the
ticket key in a title asks here.
"""

from __future__ import annotations

import re


def is_direct_push(change_id: str) -> bool:
    return "@" in change_id


def change_folder(change_id: str) -> str:
    """A file-system-safe folder name: ``o/r#12`` -> ``o__r__pr-12``, ``o/r@sha`` -> ``o__r__push-sha``."""
    name = change_id.replace("/", "__").replace("#", "__pr-").replace("@", "__push-")
    name = re.sub(r"[^A-Za-z0-9._-]", "_", name).lstrip(".")
    return name or "_"


def ticket_project(key: str) -> str:
    """The project of a Jira key: ``PAY-7`` -> ``PAY`` (everything before the last dash)."""
    return key.rsplit("-", 1)[0]


def title_ticket_key(title: str | None, pattern: re.Pattern, projects: frozenset[str] | set[str]
                     ) -> tuple[str | None, str]:
    """The ticket a PR title links (CONTROLS.md, "Ticket"): the first match of ``pattern`` whose
    project is in scope, and the out-of-scope keys seen before it (``SHA-256 pinning [PAY-7]``
    links PAY-7 and names SHA-256)."""
    others: list[str] = []
    for m in pattern.finditer(title or ""):
        key = m.group(1) if pattern.groups else m.group(0)
        if key and ticket_project(key) in projects:
            return key, ", ".join(others)
        if key:
            others.append(key)
    return None, ", ".join(others)
