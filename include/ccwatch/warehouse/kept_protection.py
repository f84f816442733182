"""(stop 30) A production branch's classic protection the night's fetch kept without asking is
checked against the warehouse before the load commits.

The nightly fetch does not ask an unprotected branch's classic protection again (a 404 has no
ETag, so it would cost a counted request every night) while the ingest state says ``unprotected``
and the branch still says ``"protected": false`` (ingest/github/fetch.py; stop 31: the flag the
repository's GraphQL node gives, or REST's branch where the node has none).  The state is a file
under ``CCWATCH_HOME``; the warehouse holds the truth.  So, inside the load's transaction, for
every repository the load fetched whose records carry no answer for its production branch's
protection, the stored protection must be that 404 and the branch (tonight's answer, or the stored
one a 304 kept) must say ``false``.  Otherwise the load is refused, naming the repository: kept, a
stored protected 200 would go on passing CC8.1-11 for a branch whose protection is gone.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any

from ccwatch.ingest.records import RawRecord
from ccwatch.settings import Settings
from ccwatch.warehouse.stored_branch import stored_branch


class KeptProtectionMismatch(ValueError):
    """The load would keep a stored protection the warehouse does not hold as "not protected"."""


class ProtectionAnswers:
    """The branches (``repo:branch``) whose classic protection the load's records answer (a 200,
    403, 404 or 304), noted while the records stream past."""

    def __init__(self) -> None:
        self.keys: set[str] = set()

    def note(self, records: Iterable[RawRecord]) -> Iterator[RawRecord]:
        for rec in records:
            if rec.source == "github" and rec.kind == "branch_protection":
                self.keys.add(rec.natural_key)
            yield rec


def stored_protection(con: Any, repo: str, branch: str) -> tuple[Any, int | None]:
    """The branch's ``protected`` flag and the HTTP status of its stored classic protection (None
    without one).  The flag: (stop 31) the stored GraphQL node's when it was asked with it (the node is
    asked every night, so it is the last load's), else the stored REST branch's (None without a 200)."""
    key = f"{repo}:{branch}"
    flag = stored_branch(con, repo, branch).protected
    prot = con.execute(
        "SELECT status_code FROM raw_payloads WHERE source = 'github' AND kind = 'branch_protection' "
        "AND natural_key = ?", [key]).fetchone()
    return flag, (prot[0] if prot else None)


def unprotected(con: Any, repo: str, branch: str) -> bool:
    """The stored branch says ``"protected": false`` (GitHub says ``true`` for classic protection and
    for rulesets alike) and its stored classic protection is the 404."""
    flag, status = stored_protection(con, repo, branch)
    return flag is False and status == 404


def check_kept_protection(con: Any, settings: Settings, repos: Iterable[str], answered: set[str]) -> None:
    """Refuse the load when a fetched repository's protection was kept unasked but the warehouse does
    not hold it as unprotected (see the module docstring)."""
    fetched = set(repos)
    wrong = []
    for rc in settings.github.repositories:
        branch = rc.production_branch
        if rc.repo not in fetched or f"{rc.repo}:{branch}" in answered or unprotected(con, rc.repo, branch):
            continue
        flag, status = stored_protection(con, rc.repo, branch)
        held = "none" if status is None else f"HTTP {status}"
        says = "no stored branch" if flag is None else f'the branch says "protected": {json.dumps(flag)}'
        wrong.append(f"{rc.repo} (branch {branch}: stored classic protection {held}, {says})")
    if wrong:
        raise KeptProtectionMismatch(
            f"the fetch kept the stored classic protection of {'; '.join(wrong)} without asking it, because the "
            "ingest state said the branch is unprotected, but the warehouse does not hold it as unprotected (a "
            "404 with a branch that says false): the ingest state does not come from this warehouse's last load "
            "(edited, put back from an earlier night, or restored from elsewhere). Nothing was loaded; the ingest state was reset, rerun the "
            "date for a full fetch")
