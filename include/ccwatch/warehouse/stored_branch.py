"""(stop 31) What the warehouse holds of a production branch: its tip and its ``"protected"`` flag.

Both come from the repository's GraphQL node (``gql_repository``'s ``productionBranch``, asked every
night, so it is the last load's), else from REST's branch (a warehouse from before stop 31, or a flag
GitHub would not give in the node: the fetch then asks REST's branch).  One read for the ingest state
(the next plan's tip) and the kept-protection check (the flag).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from ccwatch.ingest.github.repositories import branch_tip, protected


@dataclass(frozen=True)
class StoredBranch:
    tip: str | None        # None: nothing stored names it
    protected: bool | None  # None: no node with the flag and no REST branch (a 200) stored


def stored_branch(con: Any, repo: str, branch: str) -> StoredBranch:
    row = con.execute("SELECT payload FROM raw_payloads WHERE source = 'github' AND kind = 'gql_repository' "
                      "AND natural_key = ?", [repo]).fetchone()
    node = json.loads(row[0]) if row and row[0] else None
    tip, flag = branch_tip(node, branch), protected(node, branch)
    if tip is None or flag is None:
        rest = con.execute("SELECT json_extract_string(payload, '$.commit.sha'), json_extract(payload, '$.protected') "
                           "FROM raw_payloads WHERE source = 'github' AND kind = 'branch' AND natural_key = ? "
                           "AND status_code = 200", [f"{repo}:{branch}"]).fetchone()
        if rest is not None:
            tip = tip if tip is not None else rest[0]
            flag = flag if flag is not None else (json.loads(rest[1]) if rest[1] is not None else None)
    return StoredBranch(tip, flag)
