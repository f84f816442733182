"""(r2) Which ccwatch load saw each commit on a production branch's first-parent chain.

Every load records, inside its transaction, the chain the warehouse now holds for each configured
production branch (table ``commits``): a commit's first sighting is set once and never changed
(append-only), its latest moves forward.  They give a direct push its push time when the
activity log cannot be read (the earliest run that saw it, CONTROLS.md "What a change is") and
show the commits that an earlier run saw and that are no longer on the branch (CC8.1-14).

Time of a sighting: the load's as-of time, and never earlier than the latest sighting already
stored for the branch: a rerun of an earlier date sees today's branch, so a commit it is the
first to see was not there at the later run that did not see it.
"""

from __future__ import annotations

from datetime import datetime

import duckdb

from ccwatch.common.times import naive_utc
from ccwatch.settings import Settings


def record_sightings(con: duckdb.DuckDBPyConnection, settings: Settings, as_of: datetime) -> int:
    """Record this load's chains; returns the number of commits seen."""
    t = naive_utc(as_of)
    seen = 0
    for rc in settings.github.repositories:
        key = [rc.repo, rc.production_branch]
        (prev,) = con.execute("SELECT max(last_seen_as_of) FROM commit_sightings WHERE repo = ? AND branch = ?",
                              key).fetchone()
        first = max(t, prev) if prev is not None else t
        con.execute(
            "INSERT INTO commit_sightings SELECT repo, branch, sha, ?::TIMESTAMP, ?::TIMESTAMP FROM commits "
            "WHERE repo = ? AND branch = ? ON CONFLICT (repo, branch, sha) DO UPDATE SET "
            "last_seen_as_of = greatest(commit_sightings.last_seen_as_of, excluded.last_seen_as_of)",
            [first, first, *key])
        seen += con.execute("SELECT count(*) FROM commits WHERE repo = ? AND branch = ?", key).fetchone()[0]
    return seen
