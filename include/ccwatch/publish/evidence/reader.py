"""Batched reads of the raw API records the evidence folder copies (``ccwatch.publish.evidence.write``)."""

from __future__ import annotations

from datetime import datetime

import duckdb

from ccwatch.common.changes import is_direct_push
from ccwatch.common.endpoints import redact_url
from ccwatch.common.times import iso, naive_utc, parse_ts_or_none
from ccwatch.publish.evidence import jsonfast
from ccwatch.warehouse.raw_lists import payload_texts

BATCH = 2000  # changes whose raw records are read in one query
# the shared lists a change folder names without their fetch time (contents.py): no part of its bytes
NAMED_ONLY = frozenset({"deployments", "fields"})
_ABSENT = object()  # not read yet (None: read, and not stored)


class RawEvidence:
    """Reads raw_payloads records (with provenance) and which deployments carry each change.

    Records are read in batches (:meth:`prefetch`: one query for many keys) and the per-repository
    lists many changes share (``deployments``, ``commits``) are parsed once per run."""

    SHARED_KINDS = frozenset({"deployments", "commits", "fields"})
    _COLS = "source, kind, natural_key, url, fetched_at, etag, status_code, payload"

    def __init__(self, con: duckdb.DuckDBPyConnection, as_of: datetime):
        self.con = con
        self.as_of = naive_utc(as_of)
        self._cache: dict[tuple[str, str, str], dict | None] = {}
        self._shared: dict[tuple[str, str, str], dict | None] = {}
        self._status_repos: set[str] = set()
        self._statuses: dict[tuple[str, str, str], dict] = {}
        self._env_items: dict[tuple[str, str], dict[int, dict]] = {}
        self._carried: dict[str, dict[str, list[int]]] = {}
        self.fetched: list[datetime | None] = [None, None]  # earliest, latest fetched_at of the records used
        self.field_names: dict[str, str] | None = None  # Jira field id -> name (ticket_fields.json), parsed once
        self.field_ids_by_name: dict[str, list[str]] | None = None  # and name -> ids, made once
        self.settings_history = None  # warehouse.settings_history.SettingsHistory, made on first use
        self._times: dict[str, datetime | None] = {}
        # (issue #15, carry.py) while a change folder is written: every key it looked up (found or not)
        # and the fetch times of the records it copies; None when not recording
        self.reads: list[tuple[str, str, str]] | None = None
        self.copied: list[datetime | None] = [None, None]

    def record(self) -> None:
        """Start noting what the next folder reads (:attr:`reads`, :attr:`copied`)."""
        self.reads, self.copied = [], [None, None]

    def note_fetched(self, lo: datetime | None, hi: datetime | None) -> None:
        """Count a range of fetch times in manifest.json "fetched" (a folder carried over, not read)."""
        for t in (lo, hi):
            self.fetched = _widen(self.fetched, t)

    def _used(self, rec: dict | None) -> dict | None:
        """Note the fetch time of a record the folder copies (manifest.json "fetched")."""
        if rec is not None:
            text = rec.get("fetched_at")
            # each distinct fetch time is parsed and counted once per run (many records share one, and
            # seeing a time again cannot move the earliest or the latest)
            if isinstance(text, str):
                t = self._times.get(text, _ABSENT)
                if t is _ABSENT:
                    t = self._times[text] = parse_ts_or_none(text)
                    self.note_fetched(t, None)
                if self.reads is not None and rec.get("kind") not in NAMED_ONLY:
                    self.copied = _widen(self.copied, t)
        return rec

    @staticmethod
    def _record(row) -> dict:
        payload = jsonfast.loads(row[7]) if isinstance(row[7], str) else row[7]
        return {"source": row[0], "kind": row[1], "natural_key": row[2], "url": redact_url(row[3] or ""),
                "fetched_at": iso(row[4]), "etag": row[5], "status_code": row[6], "payload": payload}

    def _rows(self, want: list[tuple[str, str, str]]) -> dict[tuple[str, str, str], tuple]:
        """The stored rows of these (source, kind, natural_key) keys, in one query, by key."""
        if not want:
            return {}
        rows = self.con.execute(
            f"SELECT {self._COLS} FROM raw_payloads WHERE (source, kind, natural_key) IN "
            "(SELECT (unnest(?::VARCHAR[]), unnest(?::VARCHAR[]), unnest(?::VARCHAR[])))",
            [[k[0] for k in want], [k[1] for k in want], [k[2] for k in want]]).fetchall()
        return self._with_lists(rows)

    def _with_lists(self, rows: list[tuple]) -> dict[tuple[str, str, str], tuple]:
        """The rows by key, an accumulating list held as items given its list's text (raw_lists)."""
        texts = payload_texts(self.con, [((row[0], row[1], row[2]), row[7]) for row in rows])
        return {(row[0], row[1], row[2]): (*row[:7], texts[(row[0], row[1], row[2])]) for row in rows}

    def prefetch(self, keys) -> None:
        """Read these (source, kind, natural_key) records in one query (absent ones are remembered as
        absent) until :meth:`clear`."""
        want = sorted({k for k in keys if k[2] and k not in self._cache})
        found = self._rows(want)
        for k in want:
            row = found.get(k)
            self._cache[k] = self._record(row) if row is not None else None

    def prefetch_shared(self, keys) -> None:
        """Read these records in one query and keep them until the run ends (absent ones as absent):
        the per-repository records (lists, settings) that :meth:`get` would otherwise ask one by one."""
        want = sorted({k for k in keys if k[2] and k not in self._cache and k not in self._shared})
        found = self._rows(want)
        for k in want:
            row = found.get(k)
            self._shared[k] = self._record(row) if row is not None else None

    def clear(self) -> None:  # the per-run lists (_shared, field names, settings history) stay
        self._cache.clear()
        self._carried.clear()

    def get(self, source: str, kind: str, key: str) -> dict | None:
        return self._used(self.peek(source, kind, key))

    def peek(self, source: str, kind: str, key: str) -> dict | None:
        """The record, without noting its fetch time (a record looked at, not copied)."""
        k = (source, kind, key)
        if self.reads is not None:
            self.reads.append(k)
        rec = self._cache.get(k, _ABSENT)
        if rec is _ABSENT:
            rec = self._shared.get(k, _ABSENT)
        if rec is not _ABSENT:
            return rec
        row = self.con.execute(
            f"SELECT {self._COLS} FROM raw_payloads WHERE source = ? AND kind = ? AND natural_key = ?",
            [source, kind, key],
        ).fetchall()
        rec = self._record(self._with_lists(row)[k]) if row else None
        if kind in self.SHARED_KINDS:
            self._shared[k] = rec
        return rec

    def repo_deployment_statuses(self, repo: str) -> None:
        """Read every deployment-status record (REST and GraphQL) of ``repo`` in one query into
        the per-run cache (a query per deployment per change was most of a large run's time)."""
        if repo in self._status_repos:
            return
        self._status_repos.add(repo)
        prefix = f"{repo}/deployments/"
        rows = self.con.execute(
            f"SELECT {self._COLS} FROM raw_payloads WHERE source = 'github' "
            "AND kind IN ('deployment_statuses', 'gql_deployment_statuses') AND starts_with(natural_key, ?)",
            [prefix]).fetchall()
        found = {(row[0], row[1], row[2]): self._record(row) for row in rows}
        self._statuses.update(found)

    def deployment_statuses(self, kind: str, key: str) -> dict | None:
        """A deployment's statuses record after :meth:`repo_deployment_statuses` (None when absent)."""
        k = ("github", kind, key)
        if self.reads is not None:
            self.reads.append(k)
        return self._used(self._statuses.get(k))

    def prefetch_change_deployments(self, change_ids: list[str]) -> None:
        """Read which deployments carried these changes as of this run (table ``change_deployments``)
        in one query."""
        want = [c for c in change_ids if c not in self._carried]
        if not want:
            return
        for cid in want:
            self._carried[cid] = {}
        for cid, env, dep_id in self.con.execute(
                "SELECT change_id, environment, deployment_id FROM change_deployments WHERE as_of = ? AND change_id IN "
                "(SELECT unnest(?::VARCHAR[])) ORDER BY change_id, environment, ord", [self.as_of, want]).fetchall():
            self._carried[cid].setdefault(env, []).append(int(dep_id))

    def change_deployments(self, change_id: str) -> dict[str, list[int]]:
        """environment -> the ids of the deployments that carry the change, oldest first."""
        if change_id not in self._carried:
            self.prefetch_change_deployments([change_id])
        return self._carried[change_id]

    def deployments_by_id(self, repo: str, env: str, rec: dict) -> dict[int, dict]:
        """The items of an environment's ``deployments`` record by id (parsed once per run)."""
        items = self._env_items.get((repo, env))
        if items is None:
            payload = rec.get("payload") if isinstance(rec, dict) else None
            items = self._env_items[(repo, env)] = {
                int(d["id"]): d for d in payload or [] if isinstance(d, dict) and d.get("id") is not None}
        return items



def _widen(span: list[datetime | None], t: datetime | None) -> list[datetime | None]:
    """[earliest, latest] with ``t`` counted in (None counts nothing)."""
    if t is None:
        return span
    lo, hi = span
    return [t if lo is None or t < lo else lo, t if hi is None or t > hi else hi]


def head_of(pull: dict | None, gql: dict | None) -> str | None:
    """The PR's head commit: the REST pull's ``head.sha``, else the GraphQL node's ``headRefOid``."""
    head = (((pull or {}).get("payload") or {}).get("head") or {}).get("sha")
    if not head and isinstance((gql or {}).get("payload"), dict):
        head = gql["payload"].get("headRefOid")
    return head


def prefetch_changes(raw: RawEvidence, changes: list[dict]) -> None:
    """Batch-read the per-change records :func:`change_evidence_files` asks for (two queries)."""
    keys = []
    for c in changes:
        cid, repo = c["change_id"], c.get("repo")
        if c.get("change_kind") == "direct_push" or is_direct_push(cid):
            keys += [("github", k, f"{repo}@{c.get('sha')}") for k in ("commit_pulls", "gql_commit_pulls")]
            continue
        keys += [("github", k, cid) for k in ("pull", "gql_pull", "reviews")]
        if c.get("ticket_key"):
            keys += [("jira", k, c["ticket_key"]) for k in ("issue", "issue_missing", "changelog")]
    raw.prefetch(keys)
    heads = []
    for c in changes:
        head = head_of(raw.get("github", "pull", c["change_id"]), raw.get("github", "gql_pull", c["change_id"])) \
            if c.get("change_kind") != "direct_push" and not is_direct_push(c["change_id"]) else None
        if head:
            heads += [("github", k, f"{c.get('repo')}@{head}") for k in ("check_runs", "statuses")]
    raw.prefetch(heads)
    raw.prefetch_change_deployments([c["change_id"] for c in changes])
