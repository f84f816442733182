"""Carrying a change folder over from the previous evidence date when nothing it is made of moved (issue #15).

A change folder's bytes are a function of: the code that writes it, its repository's config, its name,
the change's facts and control results, which deployments carry it (their items and the deployments
lists' URL and status), the settings snapshot in force at its merge, Jira's field list (with a ticket),
and the raw records it reads, found or absent.  When a date is written, every change folder gets a
**key**: a digest of all of these, each raw record by its stored version (URL, fetch time, ETag,
status and payload, read in SQL without decoding).  After the date's archive is published the keys,
the keys of the records each folder read, and the fetch times of the records it copies are stored
(warehouse tables ``evidence_folder_keys`` / ``evidence_folder_inputs``, for that date's manifest).

The next date computes each folder's key again, over the same records as they are stored now.  An
equal key means the folder would be written with the same bytes: its files are hard-linked from the
previous date's folder (copied where a link cannot be made) and their hashes taken from reading them,
which the archive needs anyway.  Only from the previous date the ledger links to (``manifest.json``
"previous"), and only when that date's ``manifest.json`` on disk has the SHA-256 the ledger recorded;
each carried file must have the size and SHA-256 that manifest lists, else the folder is written anew
and a warning names the file.  Repository folders are always written (their settings are asked every
night).  What a key leaves out would carry a stale folder, so tests compare every carried date with the
same date written from scratch, byte for byte (``tests/unit/publish/evidence/test_carry.py``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import platform
from datetime import datetime
from functools import lru_cache
from pathlib import Path

import duckdb
import orjson
import pandas as pd

from ccwatch.common.times import evidence_date
from ccwatch.publish.evidence import jsonfast
from ccwatch.publish.evidence.contents import field_names, settings_at_merge
from ccwatch.publish.evidence.reader import NAMED_ONLY, RawEvidence
from ccwatch.settings import Settings

log = logging.getLogger("ccwatch")

# the modules whose code decides a change folder's bytes (their source is part of every key, so a
# change of the format never carries a folder written the old way)
_CODE = ("publish/evidence/contents.py", "publish/evidence/reader.py", "publish/evidence/jsonfast.py",
         "publish/evidence/folder.py", "publish/evidence/carry.py", "warehouse/settings_history.py",
         "warehouse/raw_lists.py", "common/times.py", "common/endpoints.py", "common/changes.py")
_PACKAGE = Path(__file__).resolve().parents[2]  # include/ccwatch

_NAMED = ", ".join(f"'{k}'" for k in sorted(NAMED_ONLY))
# a folder's raw records, digested in SQL: each record read (found or absent) by its stored version; the
# shared lists a folder names without their fetch time by name only (their part is in the static key)
_READS_DIGEST = f"""
WITH i AS ({{inputs}}),
v AS (  -- each record's version, hashed as it streams past (no payload is held for the join)
    SELECT p.source, p.kind, p.natural_key,
           sha256(concat_ws(chr(31), coalesce(p.url, chr(0)), CAST(p.fetched_at AS VARCHAR), coalesce(p.etag, chr(0)),
                            coalesce(CAST(p.status_code AS VARCHAR), chr(0)),
                            coalesce(CAST(p.payload AS VARCHAR), chr(0)))) AS version
    FROM raw_payloads p SEMI JOIN i ON p.source = i.source AND p.kind = i.kind AND p.natural_key = i.natural_key
    WHERE p.kind NOT IN ({_NAMED}))
SELECT i.folder, sha256(string_agg(i.source || chr(31) || i.kind || chr(31) || i.natural_key || '=' ||
    CASE WHEN i.kind IN ({_NAMED}) THEN 'named' ELSE coalesce(v.version, 'absent') END,
    chr(30) ORDER BY i.source, i.kind, i.natural_key))
FROM i LEFT JOIN v ON v.source = i.source AND v.kind = i.kind AND v.natural_key = i.natural_key
GROUP BY i.folder
"""
_READS_VIEW = "ccwatch_carry_reads"  # tonight's written folders' reads, a registered DataFrame


@lru_cache(maxsize=1)
def code_digest() -> str:
    h = hashlib.sha256()
    for rel in _CODE:
        try:
            h.update(rel.encode() + b"\0" + (_PACKAGE / rel).read_bytes())
        except OSError:  # installed without its sources: a code change could not be seen, so this process's
            h.update(os.urandom(32))  # keys match no other's and nothing is carried over
    h.update(f"orjson {orjson.__version__} duckdb {duckdb.__version__} python {platform.python_version()}".encode())
    return h.hexdigest()


class Carry:
    """The carry-over of one evidence date's change folders (see the module doc)."""

    def __init__(self, con: duckdb.DuckDBPyConnection, settings: Settings, as_of: datetime, base: Path | str,
                 previous: dict | None, raw: RawEvidence):
        self.con, self.settings, self.raw = con, settings, raw
        self.day = evidence_date(as_of)
        self._carried_ids = self._change_deployments()
        self._snapshots: dict[tuple[str, str], str] = {}
        self._fields: str | None = None
        self.static: dict[str, str] = {}  # folder -> the key's part computed in Python
        self.keys: dict[str, tuple[str, datetime | None, datetime | None]] = {}  # folder -> key, fetched range
        self.carried: list[str] = []
        self.written: list[str] = []
        self._reads: dict[str, list[tuple[str, str, str]]] = {}
        self._copied: dict[str, tuple[datetime | None, datetime | None]] = {}
        self.prev_day: str | None = None
        self.prev_dir: str | None = None
        self._prev_files: dict[str, list[tuple[str, str, int]]] = {}
        self._prev_keys: dict[str, tuple[str, datetime | None, datetime | None]] = {}
        self._load_previous(Path(base), previous)

    # ------------------------------------------------------------------ the previous date
    def _load_previous(self, base: Path, previous: dict | None) -> None:
        if not previous or not previous.get("sha256") or previous.get("unreadable"):
            return
        day = str(previous["date"])
        path = base / day / "manifest.json"
        try:
            data = path.read_bytes()
        except OSError:
            return  # pruned or moved: nothing to carry
        if hashlib.sha256(data).hexdigest() != previous["sha256"]:
            log.warning("%s does not have the SHA-256 the ledger recorded for it: no change folder of %s is carried "
                        "over, every one is written anew (python -m ccwatch verify --chain reports it)", path, day)
            return
        rows = self.con.execute("SELECT folder, key, fetched_min, fetched_max FROM evidence_folder_keys "
                                "WHERE evidence_date = ? AND manifest_sha256 = ?", [day, previous["sha256"]]).fetchall()
        if not rows:
            return
        files: dict[str, list[tuple[str, str, int]]] = {}
        for e in json.loads(data).get("files") or []:
            folder, _, name = str(e.get("path", "")).removeprefix("changes/").partition("/")
            if e.get("path", "").startswith("changes/") and name and "/" not in name:
                files.setdefault(folder, []).append((name, str(e.get("sha256")), int(e.get("size", -1))))
        self.prev_day, self.prev_dir = day, str(base / day / "changes")
        self._prev_files = files
        self._prev_keys = {f: (k, lo, hi) for f, k, lo, hi in rows if f in files}

    # ------------------------------------------------------------------ keys
    def _change_deployments(self) -> dict[str, list[tuple[str, int]]]:
        """change_id -> (environment, deployment id) of the deployments that carry it as of this run."""
        out: dict[str, list[tuple[str, int]]] = {}
        for cid, env, dep in self.con.execute(
                "SELECT change_id, environment, deployment_id FROM change_deployments WHERE as_of = ? "
                "ORDER BY change_id, environment, ord", [self.raw.as_of]).fetchall():
            out.setdefault(cid, []).append((env, int(dep)))
        return out

    def _fields_part(self) -> str:
        if self._fields is None:
            names, src = field_names(self.raw)
            self._fields = hashlib.sha256(jsonfast.dumps([src, names])).hexdigest()
        return self._fields

    def _snapshot_part(self, change: dict) -> str:
        out = settings_at_merge(self.raw, change)
        records = out.pop("records", None)
        snap = out.get("snapshot") or {}
        k = (str(change.get("repo")), str(snap.get("run_as_of")))
        if records is not None and k not in self._snapshots:
            self._snapshots[k] = hashlib.sha256(jsonfast.dumps(records)).hexdigest()
        return repr(out) + (self._snapshots[k] if records is not None else "")

    def prepare(self, folder: str, change: dict, results: list[dict]) -> None:
        """The Python part of a change folder's key (before :meth:`plan`)."""
        cid, repo = change["change_id"], change.get("repo")
        try:
            rc = self.settings.repo(repo)
        except KeyError:
            rc = None
        carried = self._carried_ids.get(cid, [])
        parts = [code_digest(), folder, repr(rc), repr(sorted(change.items())), repr(results), repr(carried)]
        if rc is not None:
            for env in rc.production_environments + rc.staging_environments:
                rec = self.raw.peek("github", "deployments", f"{repo}:{env}")
                if rec is None:
                    parts.append(f"{env}: absent")
                    continue
                items = self.raw.deployments_by_id(repo, env, rec)
                parts.append(repr((env, rec.get("url"), rec.get("status_code"),
                                   [items.get(d) for e, d in carried if e == env])))
        if change.get("ticket_key"):
            parts.append(self._fields_part())
        parts.append(self._snapshot_part(change))
        self.static[folder] = hashlib.sha256("\x1e".join(parts).encode("utf-8", "surrogatepass")).hexdigest()

    def plan(self) -> set[str]:
        """The folders whose key, over the previous date's inputs as stored now, equals the stored key."""
        if not self._prev_keys:
            return set()
        digests = dict(self.con.execute(_READS_DIGEST.format(
            inputs="SELECT folder, source, kind, natural_key FROM evidence_folder_inputs WHERE evidence_date = ?"),
            [self.prev_day]).fetchall())
        return {folder for folder, (key, _, _) in self._prev_keys.items() if folder in self.static
                and _key(self.static[folder], digests.get(folder) or _NOTHING_READ) == key}

    # ------------------------------------------------------------------ writing
    def take(self, folder: str, directory: str) -> list[tuple[str, bytes, str]] | None:
        """Link the previous date's files of ``folder`` into ``directory`` (a new, empty folder) and
        return (name, bytes, sha256) of each; None, with nothing left in ``directory``, when a file is
        missing or does not match the previous manifest (then the folder is written anew)."""
        out, made = [], []
        for name, sha, size in self._prev_files[folder]:
            src, dst = f"{self.prev_dir}/{folder}/{name}", directory + name
            try:
                try:
                    os.link(src, dst)
                except OSError:  # no hard links here (another file system, or not allowed): a copy
                    with open(src, "rb") as fh:
                        data = fh.read()
                    with open(dst, "xb") as fh:
                        fh.write(data)
                made.append(dst)
                with open(dst, "rb") as fh:
                    data = fh.read()
            except OSError as exc:
                log.warning("%s: cannot carry it over (%s); the folder %s is written anew", src, exc.strerror or exc,
                            folder)
                data = None
            digest = hashlib.sha256(data).hexdigest() if data is not None else None
            if digest is None or len(data) != size or digest != sha:
                if digest is not None:
                    log.warning("%s does not match the manifest of %s (sha256 %s, listed %s): the folder %s is written "
                                "anew (python -m ccwatch verify reports the previous date)", src, self.prev_day,
                                digest[:12], sha[:12], folder)
                for p in made:
                    os.unlink(p)
                return None
            out.append((name, data, digest))
        key, lo, hi = self._prev_keys[folder]
        self.keys[folder] = (key, lo, hi)
        self.raw.note_fetched(lo, hi)
        self.carried.append(folder)
        return out

    def rendered(self, folder: str, reads: list[tuple[str, str, str]], copied: tuple) -> None:
        """A change folder written from its records: what it read, for its key (:meth:`finish`)."""
        self._reads[folder] = sorted(set(reads))
        self._copied[folder] = (copied[0], copied[1])
        self.written.append(folder)

    def touch_named(self, change: dict) -> None:
        """Count the fetch times of the shared lists a carried folder names, as writing it would have."""
        try:
            rc = self.settings.repo(change.get("repo"))
        except KeyError:
            return
        for env in rc.production_environments + rc.staging_environments:
            self.raw.get("github", "deployments", f"{change.get('repo')}:{env}")
        if change.get("ticket_key"):
            field_names(self.raw)

    def _register_reads(self) -> None:
        """Tonight's written folders' reads as a DataFrame view (a 283k-row list of parameters cost DuckDB
        2 s and 750 MB where the view costs 0.5 s and 290 MB, 20k folders)."""
        cols: tuple[list[str], list[str], list[str], list[str]] = ([], [], [], [])
        for folder, reads in self._reads.items():
            for s, k, n in reads:
                cols[0].append(folder), cols[1].append(s), cols[2].append(k), cols[3].append(n)
        self.con.register(_READS_VIEW, pd.DataFrame({"folder": cols[0], "source": cols[1], "kind": cols[2],
                                                     "natural_key": cols[3]}, dtype=object))

    def finish(self) -> None:
        """The keys of the folders written tonight, over the records they read as stored now."""
        if not self._reads:
            return
        self._register_reads()
        digests = dict(self.con.execute(_READS_DIGEST.format(inputs=f"SELECT * FROM {_READS_VIEW}")).fetchall())
        for folder in self._reads:
            # a folder that read nothing (no raw record at all) still has a digest: that of no input
            digest = digests.get(folder) or _NOTHING_READ
            self.keys[folder] = (_key(self.static[folder], digest), *self._copied[folder])

    def store(self, manifest_sha256: str) -> None:
        """Record the date's keys and inputs for the next date (after its archive is published); only
        the latest two dates' rows are kept."""
        day = self.day
        con = self.con
        con.execute("BEGIN TRANSACTION")
        try:
            con.execute("DELETE FROM evidence_folder_keys WHERE evidence_date = ?", [day])
            con.execute("DELETE FROM evidence_folder_inputs WHERE evidence_date = ?", [day])
            folders = sorted(self.keys)
            con.execute("INSERT INTO evidence_folder_keys SELECT ?::DATE, ?, unnest(?::VARCHAR[]), unnest(?::VARCHAR[]), "
                        "unnest(?::TIMESTAMP[]), unnest(?::TIMESTAMP[])",
                        [day, manifest_sha256, folders, [self.keys[f][0] for f in folders],
                         [self.keys[f][1] for f in folders], [self.keys[f][2] for f in folders]])
            if self.carried:
                con.execute("INSERT INTO evidence_folder_inputs SELECT ?::DATE, folder, source, kind, natural_key "
                            "FROM evidence_folder_inputs WHERE evidence_date = ? AND folder IN "
                            "(SELECT unnest(?::VARCHAR[]))", [day, self.prev_day, self.carried])
            if self._reads:
                con.execute(f"INSERT INTO evidence_folder_inputs SELECT ?::DATE, folder, source, kind, natural_key "
                            f"FROM {_READS_VIEW}", [day])
            con.execute("DELETE FROM evidence_folder_keys WHERE evidence_date NOT IN (SELECT DISTINCT evidence_date "
                        "FROM evidence_folder_keys ORDER BY evidence_date DESC LIMIT 2)")
            con.execute("DELETE FROM evidence_folder_inputs WHERE evidence_date NOT IN (SELECT DISTINCT evidence_date "
                        "FROM evidence_folder_keys)")
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        finally:
            if self._reads:
                con.unregister(_READS_VIEW)


_NOTHING_READ = hashlib.sha256(b"").hexdigest()


def _key(static: str, reads_digest: str) -> str:
    return hashlib.sha256(f"{static}\x1e{reads_digest}".encode()).hexdigest()
