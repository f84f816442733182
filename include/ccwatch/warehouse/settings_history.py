"""(r2) Repository settings as a nightly history (table ``settings_history``, migration 10).

CONTROLS.md, "Settings in force at merge": the settings payloads of each configured repository
(classic branch protection of the production branch, the branch's rules, the rulesets those rules
name, the production and staging environments) are copied every night from ``raw_payloads`` (which
holds only the latest copy) into an append-only history.  ``record_settings_history`` runs inside
the load's transaction, after the batch is in ``raw_payloads``: an object answered 304 is the stored
copy, revalidated now (its ``fetched_at`` is the revalidation time).  A load of date D deletes and
rewrites only D's rows; no other date's row is ever updated or deleted.

``settings_at(con, repo, when)`` is the snapshot in force at a time: the rows of the latest load
whose snapshot time (the latest ``observed_at`` of the repository's rows of that load: every row was
seen by then) is at or before ``when``.  Never the current settings when the history does not
reach back that far: then it says which is the earliest snapshot.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime

import duckdb

from ccwatch.common.times import iso, naive_utc
from ccwatch.settings import Settings

KINDS = ("branch_protection", "branch_rules", "ruleset", "environment")


def _ruleset_ids(payload: object) -> list[int]:
    rules = payload if isinstance(payload, list) else []
    return sorted({int(r["ruleset_id"]) for r in rules
                   if isinstance(r, dict) and isinstance(r.get("ruleset_id"), int) and not isinstance(r["ruleset_id"], bool)})


def record_settings_history(con: duckdb.DuckDBPyConnection, settings: Settings, as_of: datetime) -> int:
    """Replace the as-of date's ``settings_history`` rows with the settings payloads now stored;
    returns the row count.  Runs inside the caller's transaction."""
    t = naive_utc(as_of)
    keys: list[tuple[str, str, str]] = []
    for rc in settings.github.repositories:
        repo, b = rc.repo, rc.production_branch
        keys += [(repo, "branch_protection", f"{repo}:{b}"), (repo, "branch_rules", f"{repo}:{b}")]
        row = con.execute("SELECT payload FROM raw_payloads WHERE source = 'github' AND kind = 'branch_rules' "
                          "AND natural_key = ?", [f"{repo}:{b}"]).fetchone()
        rules = json.loads(row[0]) if row and row[0] is not None else None
        keys += [(repo, "ruleset", f"{repo}/rulesets/{i}") for i in _ruleset_ids(rules)]
        keys += [(repo, "environment", f"{repo}:{e}")
                 for e in dict.fromkeys(rc.production_environments + rc.staging_environments)]
    con.execute("DELETE FROM settings_history WHERE CAST(as_of AS DATE) = CAST(? AS DATE)", [t])
    n = 0
    for repo, kind, key in keys:
        row = con.execute("SELECT url, fetched_at, status_code, payload FROM raw_payloads WHERE source = 'github' "
                          "AND kind = ? AND natural_key = ?", [kind, key]).fetchone()
        if row is None:  # never fetched (e.g. a staging environment the fetch does not read): nothing to keep
            continue
        url, fetched_at, status, payload = row
        canon = json.dumps(json.loads(payload) if payload is not None else None, sort_keys=True,
                           separators=(",", ":"), ensure_ascii=False)
        con.execute("INSERT INTO settings_history VALUES (?, ?, ?, ?, ?, ?, ?, ?::JSON, ?)",
                    [t, repo, kind, key, fetched_at, url, status, payload,
                     hashlib.sha256(canon.encode("utf-8")).hexdigest()])
        n += 1
    return n


class SettingsHistory:
    """Reads of ``settings_history`` for many changes: each repository's snapshot list and each
    snapshot's records are read once."""

    def __init__(self, con: duckdb.DuckDBPyConnection):
        self.con = con
        self._snaps: dict[str, list[tuple[datetime, datetime]]] = {}
        self._records: dict[tuple[str, datetime], list[dict]] = {}

    def snapshots(self, repo: str) -> list[tuple[datetime, datetime]]:
        """(run as_of, snapshot time) of every stored snapshot of ``repo``, by snapshot time."""
        if repo not in self._snaps:
            self._snaps[repo] = [tuple(r) for r in self.con.execute(
                "SELECT as_of, max(observed_at) AS taken FROM settings_history WHERE repo = ? GROUP BY as_of "
                "ORDER BY taken, as_of", [repo]).fetchall()]
        return self._snaps[repo]

    def records(self, repo: str, as_of: datetime) -> list[dict]:
        if (repo, as_of) not in self._records:
            rows = self.con.execute(
                "SELECT kind, natural_key, url, observed_at, status_code, payload, sha256 FROM settings_history "
                "WHERE repo = ? AND as_of = ? ORDER BY kind, natural_key", [repo, as_of]).fetchall()
            self._records[(repo, as_of)] = [
                {"kind": k, "natural_key": nk, "url": url, "observed_at": iso(obs), "status_code": sc,
                 "payload": json.loads(p) if p is not None else None, "sha256": sha}
                for k, nk, url, obs, sc, p, sha in rows]
        return self._records[(repo, as_of)]


def settings_at(con: duckdb.DuckDBPyConnection | SettingsHistory, repo: str, when: datetime | None) -> dict:
    """The settings of ``repo`` in force at ``when`` (settings_at_merge.json's content)."""
    hist = con if isinstance(con, SettingsHistory) else SettingsHistory(con)
    snaps = hist.snapshots(repo)
    base = {"repo": repo, "at": iso(when) if when is not None else None,
            "rule": "the latest nightly settings snapshot taken at or before the change reached the production "
                    "branch (snapshot time: when GitHub last answered for it that night)"}
    if when is None:
        return {**base, "snapshot": None, "note": "the change has no merge or push time: no snapshot can be chosen"}
    if not snaps:
        return {**base, "snapshot": None, "note": "no settings snapshot is stored for this repository"}
    t = naive_utc(when)
    before = [s for s in snaps if s[1] <= t]
    if not before:
        return {**base, "snapshot": None,
                "note": f"no snapshot before the merge, earliest is {iso(snaps[0][1])} (taken by the run of "
                        f"{iso(snaps[0][0])[:10]}); the settings in force at the merge are not known"}
    as_of, taken = before[-1]
    return {**base, "snapshot": {"run_as_of": iso(as_of), "taken_at": iso(taken)},
            "records": hist.records(repo, as_of)}
