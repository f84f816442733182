"""Checking an evidence archive, evidence folder or sample packet against its manifest.json."""

from __future__ import annotations

import hashlib
import json
import os
import tarfile
from pathlib import Path

from ccwatch.publish.evidence.archive import MANIFEST, list_files, sha256_file


def _compare(manifest: dict, actual: dict[str, tuple[str, int]]) -> list[str]:
    problems = []
    listed = {}
    for f in manifest.get("files") or []:
        listed[f.get("path")] = (f.get("sha256"), f.get("size"))
    for path in sorted(listed):
        if path not in actual:
            problems.append(f"missing: {path} (listed in the manifest, absent)")
            continue
        want_sha, want_size = listed[path]
        got_sha, got_size = actual[path]
        if got_sha != want_sha or got_size != want_size:
            problems.append(f"modified: {path} (sha256 {got_sha}, size {got_size}; manifest says "
                            f"sha256 {want_sha}, size {want_size})")
    for path in sorted(set(actual) - set(listed) - {MANIFEST}):
        problems.append(f"added: {path} (not listed in the manifest)")
    return problems


def verify_archive(path: str | os.PathLike) -> list[str]:
    """Check an evidence archive (or an evidence folder) against its manifest.json.

    Returns the problems found (modified, missing or added files, unreadable archive,
    unexpected member types); an empty list means every file is exactly as recorded."""
    p = Path(path)
    if p.is_dir():
        actual = {rel: (sha256_file(p / rel), (p / rel).stat().st_size) for rel in list_files(p)}
        if MANIFEST not in actual:
            return ["missing: manifest.json"]
        try:
            manifest = json.loads((p / MANIFEST).read_text(encoding="utf-8"))
        except ValueError as exc:
            return [f"unreadable manifest.json: {exc}"]
        return _compare(manifest, actual)
    actual = {}
    problems = []
    manifest_bytes = None
    try:
        with tarfile.open(p, mode="r:gz") as tar:
            for m in tar.getmembers():
                top, _, rel = m.name.partition("/")
                if m.isdir():
                    continue
                if not m.isfile():
                    problems.append(f"added: {m.name} (not a regular file)")
                    continue
                fh = tar.extractfile(m)
                data = fh.read() if fh else b""
                if not rel:
                    problems.append(f"added: {m.name} (outside the evidence folder)")
                    continue
                actual[rel] = (hashlib.sha256(data).hexdigest(), len(data))
                if rel == MANIFEST:
                    manifest_bytes = data
    except (OSError, tarfile.TarError, EOFError) as exc:
        return [f"unreadable archive {p.name}: {exc}"]
    if manifest_bytes is None:
        return problems + ["missing: manifest.json"]
    try:
        manifest = json.loads(manifest_bytes.decode("utf-8"))
    except ValueError as exc:
        return problems + [f"unreadable manifest.json: {exc}"]
    return problems + _compare(manifest, actual)
