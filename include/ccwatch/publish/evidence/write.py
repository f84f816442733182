"""The evidence folder ``<home>/evidence/<date>/`` and its reproducible archive.

Layout (docs/OUTPUTS.md): control_results.csv, population.csv, changes/<change>/*.json
(raw API payloads from ``raw_payloads``, each with its source URL and fetch time),
gx_validation.json, oscal-assessment-results.json, report.html, POLICY.md, README.txt,
config/ccwatch.yaml, SHA256SUMS, manifest.json, and beside the manifest (it cannot list what
covers it) manifest.json.sig (Ed25519, with ``evidence.signing_conn_id``) and manifest.json.tsr
(RFC 3161, with ``evidence.timestamp_url``).  The manifest holds when and by which run it was
generated, the fetch times of the raw payloads used and the hash-chain link to the previous
evidence date (``ledger``); it is signed, then time-stamped, all before the folder is swapped in,
so a failing TSA publishes nothing.  The archive's SHA-256 and the manifest's are recorded in the
warehouse table ``evidence_archives`` when the archive is published.
The folder is built under a temporary name and swapped in whole, so it never mixes two
runs; the archive is never overwritten (a rerun gets ``.<n>.tar.gz``).  What a run killed
mid-write leaves (temp folder, temp archive, the previous folder moved aside) is cleaned up, or
put back, by the next run of the date. After publishing, expired
archives are deleted per ``evidence.retention_days`` (``ccwatch.publish.evidence.retention``).
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import duckdb

from ccwatch.common.endpoints import redact_url
from ccwatch.common.errors import StageError
from ccwatch.common.files import remove_stale, stale_entries, tmp_pattern
from ccwatch.common.times import evidence_date, iso, naive_utc
from ccwatch.publish.evidence import (
    archive,
    folder,
    ledger,
    provenance,
    retention,
    signing,
    timestamp,
    tsa_client,
)
from ccwatch.settings import PROJECT_ROOT, Settings

log = logging.getLogger("ccwatch")
MANIFEST_VERSION = 2  # 2: generated_at, run, fetched, previous, signature, timestamp, config.path (r2)
# what must never travel in the archived config file (credentials live in Airflow connections)
_CREDENTIAL = re.compile(rb"-----BEGIN [A-Z ]*PRIVATE KEY-----|\b(gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,}"
                         rb"|xox[abposre]-[A-Za-z0-9-]{10,})")


@dataclass(frozen=True)
class EvidenceResult:
    directory: Path
    archive: Path
    numbered: bool
    files: int
    sha256: str = ""
    pruned: tuple[str, ...] = ()  # archives / dated folders deleted by the retention policy
    manifest_sha256: str = ""
    generated_at: str = ""
    signed: bool = False
    timestamped: bool = False
    previous: dict | None = None  # manifest.json "previous"
    carried: int = 0  # change folders carried over from the previous date (carry.py)
    written: int = 0  # change folders written from their records


def _recover(base: Path, day: str) -> None:
    """Undo what a run of ``day`` killed mid-write left (names used by :func:`write_evidence`): the
    previous folder, moved aside but not yet replaced, goes back in place; half-built folders and
    temp archives are removed.  Files under final names are never touched."""
    final = base / day
    moved_aside = [p for p in stale_entries(base, rf"\.{re.escape(day)}\.old-(\d+)") if p.is_dir()]
    if moved_aside and not final.exists():
        os.rename(moved_aside[-1], final)
    remove_stale(base, rf"\.{re.escape(day)}\.(?:tmp|old)-(\d+)")
    remove_stale(base, rf"\.{re.escape(day)}\.part-(\d+)(?:\.manifest)?")
    remove_stale(base, tmp_pattern(base / f"ccwatch-evidence-{day}.tar.gz"))


def config_in_force(settings: Settings) -> bytes | None:
    """The bytes of the config file the settings were loaded from (None for settings made in code):
    the file must still hash to what was loaded, and hold nothing that looks like a credential."""
    if not settings.source_path:
        return None
    path = Path(settings.source_path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise StageError(f"{path}: cannot read the config file to archive it: {exc.strerror or exc}") from None
    if settings.sha256 and hashlib.sha256(data).hexdigest() != settings.sha256:
        raise StageError(f"{path}: the config file changed after this run loaded it (sha256 "
                         f"{settings.sha256[:12]}...): rerun the task so the archive holds the config in force")
    m = _CREDENTIAL.search(data)
    if m:
        line = data.count(b"\n", 0, m.start()) + 1
        raise StageError(f"{path}: line {line} looks like a credential (a private key or token); the config file is "
                         "archived with the evidence, so credentials belong in Airflow connections only")
    return data


def trust_blocks(settings: Settings, signing_key) -> dict:
    """manifest.json's ``signature`` and ``timestamp`` blocks: what accompanies this manifest."""
    url = settings.evidence.timestamp_url
    ts = ({"status": "requested", "file": timestamp.TIMESTAMP_FILE, "tsa_url": timestamp.redact_url(url),
           "imprint": "SHA-256 of the exact bytes of manifest.json",
           "format": "DER RFC 3161 TimeStampResp, as the TSA sent it"} if url else
          {"status": "none", "reason": "evidence.timestamp_url is not set"})
    return {"signature": signing.signature_block(signing_key, settings.evidence.signing_conn_id), "timestamp": ts}


def write_evidence(con: duckdb.DuckDBPyConnection, settings: Settings, as_of: datetime, home: Path,
                   gx_results: list[dict], report_html: str, endpoints: dict[str, str], *, signing_key=None,
                   run_info: dict | None = None, generated_at: str | None = None) -> EvidenceResult:
    """Write the folder and archive of ``as_of``'s date.  ``signing_key``: the Ed25519 private key
    (required when ``evidence.signing_conn_id`` is set; never stored); ``run_info``: what the
    orchestrator knows of the run (dag_id, run_id, try_number); ``generated_at``: the wall clock
    (tests pin it)."""
    if settings.evidence.signing_conn_id and signing_key is None:
        raise StageError(f"evidence.signing_conn_id is {settings.evidence.signing_conn_id!r} but no signing key was "
                         "handed to write_evidence: refusing to write unsigned evidence")
    if not settings.evidence.signing_conn_id and signing_key is not None:
        raise StageError("a signing key was handed to write_evidence but evidence.signing_conn_id is not set")
    day = evidence_date(as_of).isoformat()
    base = Path(home) / "evidence"
    base.mkdir(parents=True, exist_ok=True)
    _recover(base, day)
    config_bytes = config_in_force(settings)
    previous = ledger.previous_link(con, base, day)
    trust = trust_blocks(settings, signing_key)
    tmp = base / f".{day}.tmp-{os.getpid()}"
    part = base / f".{day}.part-{os.getpid()}"  # the change folders' tar part (folder.py)
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        try:
            tree = folder.write_tree(tmp, con, settings, as_of, gx_results, report_html, day, part,
                                     config_bytes=config_bytes, trust=trust, previous=previous)
            generated = generated_at or provenance.utc_now_z()
            header = {
                "manifest_version": MANIFEST_VERSION,
                "tool": "ccwatch",
                "as_of": iso(naive_utc(as_of)),
                "evidence_date": day,
                "generated_at": generated,
                "run": provenance.run_block(run_info, PROJECT_ROOT),
                "fetched": {"earliest": iso(tree.fetched[0]) or None, "latest": iso(tree.fetched[1]) or None},
                "previous": previous,
                "versions": archive.versions(),
                "config": {"file": Path(settings.source_path).name if settings.source_path else None,
                           "sha256": settings.sha256 or None,
                           "path": folder.CONFIG_FILE if config_bytes is not None else None},
                "endpoints": {k: redact_url(v) for k, v in sorted((endpoints or {}).items())},
                "counts": tree.counts,
                "reconciliation": tree.reconciliation,
                **trust,
            }
            folder.write_manifest(tmp, header, tree)
            tree.top[archive.MANIFEST] = ("", 0)  # an archive entry (its bytes are read from the folder)
            manifest_bytes = (tmp / archive.MANIFEST).read_bytes()
            manifest_sha = hashlib.sha256(manifest_bytes).hexdigest()
            if signing_key is not None:
                signing.sign_manifest(tmp / archive.MANIFEST, signing_key)
                tree.top[signing.SIGNATURE_FILE] = ("", 0)
                tree.files += 1
            if settings.evidence.timestamp_url:
                try:
                    reply = tsa_client.request_timestamp(manifest_bytes, settings.evidence.timestamp_url)
                except timestamp.TimestampError as exc:
                    raise StageError(f"evidence.timestamp_url: {exc}; no evidence was published (fail closed)") from None
                (tmp / timestamp.TIMESTAMP_FILE).write_bytes(reply.response_der)
                tree.top[timestamp.TIMESTAMP_FILE] = ("", 0)
                tree.files += 1
            final = base / day
            old = base / f".{day}.old-{os.getpid()}"
            if final.exists():
                os.rename(final, old)
            os.rename(tmp, final)
            shutil.rmtree(old, ignore_errors=True)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        tmp_archive = base / f".ccwatch-evidence-{day}.tar.gz.{os.getpid()}.tmp"
        try:
            archive.assemble_archive(final, day, as_of, tmp_archive, tree.entries(), tree.part)
            digest = archive.sha256_file(tmp_archive)
            path, numbered = archive.publish(tmp_archive, base, f"ccwatch-evidence-{day}")
        finally:
            tmp_archive.unlink(missing_ok=True)
    finally:
        part.unlink(missing_ok=True)
        part.with_name(part.name + ".manifest").unlink(missing_ok=True)
    ledger.record_archive(con, as_of, path, digest, manifest_sha, generated, signing_key is not None,
                          (previous or {}).get("sha256"))
    try:
        tree.carry.store(manifest_sha)
    except (duckdb.Error, OSError) as exc:  # the evidence is published; the next date only writes every folder
        log.warning("evidence of %s is published, but the change folders' keys could not be stored (%s): the next "
                    "date writes every change folder instead of carrying the unmoved ones over", day, exc)
    pruned = retention.prune_evidence(base, as_of, settings.evidence.retention_days, settings.evidence.keep_latest,
                                      keep=path)
    return EvidenceResult(directory=final, archive=path, numbered=numbered,
                          files=tree.files, sha256=digest, pruned=tuple(p.name for p in pruned),
                          manifest_sha256=manifest_sha, generated_at=generated, signed=signing_key is not None,
                          timestamped=bool(settings.evidence.timestamp_url), previous=previous,
                          carried=len(tree.carry.carried), written=len(tree.carry.written))
