"""Checking one evidence archive, evidence folder or sample packet.

Everything here reads hostile input: every member and file is hashed as a stream (1 MiB at a time),
the small files beside the manifest are read with a size cap, manifest.json itself is capped
(:data:`MAX_MANIFEST_BYTES`), tar headers that tarfile would read whole (PAX, GNU long names) are
capped, and an archive is read twice as a stream (first the manifest and the files beside it, then
every member against it) so memory never grows with a member's size or the member count.  Bad
input gives a :class:`Report` with ``errors`` (exit 2), never a traceback.

What is checked (docs/OUTPUTS.md, "Verifying"):
- every file listed in manifest.json is present, a regular file, with that sha256 and size;
  nothing else is present but manifest.json and its companions manifest.json.sig / .tsr;
  symbolic links, hard links, devices, fifos, sockets, absolute or ``..`` paths are failures;
- the signature: a manifest that says "signed" must be accompanied by manifest.json.sig; with the
  auditor's public key (``--public-key``) the key's fingerprint must be the one the manifest names
  and the signature must verify; expecting a signature (a key given) of an unsigned manifest fails;
- the time-stamp: a manifest that says "requested" must be accompanied by manifest.json.tsr, whose
  imprint must be SHA-256(manifest.json) and whose own CMS signature must verify; with the TSA's root
  (``--tsa-ca``) its chain too;
The chain of evidence dates (each manifest's "previous") is checked by ``chain.verify_chain``.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
import tarfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from ccwatch.publish.evidence import signing, timestamp
from ccwatch.publish.evidence.archive import MANIFEST

SIG = signing.SIGNATURE_FILE
TSR = timestamp.TIMESTAMP_FILE
BESIDE = (MANIFEST, SIG, TSR)  # the files not listed in the manifest
MAX_MANIFEST_BYTES = 256 * 1024 * 1024  # ~2M file entries (~130 bytes each); 100k changes need ~100 MB
MAX_HEADER_BYTES = 1024 * 1024  # PAX / GNU long-name header blocks tarfile would read whole
MAX_LISTED = 1000  # problems listed one by one; more are counted
CHUNK = 1 << 20
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


class Malformed(ValueError):
    """The input cannot be checked (not an archive, no or malformed manifest): exit 2."""


@dataclass
class Report:
    target: str
    problems: list[str] = field(default_factory=list)  # mismatches: exit 1
    errors: list[str] = field(default_factory=list)  # unreadable or malformed input: exit 2
    notes: list[str] = field(default_factory=list)  # what was and was not checked
    manifest: dict | None = None
    manifest_sha256: str | None = None
    more: int = 0  # problems beyond MAX_LISTED

    def problem(self, text: str) -> None:
        if len(self.problems) < MAX_LISTED:
            self.problems.append(text)
        else:
            self.more += 1

    @property
    def exit_code(self) -> int:
        return 2 if self.errors else 1 if self.problems or self.more else 0

    def lines(self) -> list[str]:
        return self.errors + self.problems + ([f"... and {self.more} more problems"] if self.more else [])


# --- the manifest --------------------------------------------------------------------------


def _safe_rel(path: object) -> str | None:
    """The path if it is a plain relative POSIX path inside the folder, else None."""
    if not isinstance(path, str) or not path or "\\" in path or "\x00" in path or path.startswith("/"):
        return None
    parts = path.split("/")
    if any(p in ("", ".", "..") for p in parts):
        return None
    return path


def parse_manifest(data: bytes) -> tuple[dict, dict[str, tuple[str, int]]]:
    """(manifest, path -> (sha256, size)); raises :class:`Malformed` naming what is wrong."""
    try:
        doc = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise Malformed(f"manifest.json is not JSON ({type(exc).__name__}: {str(exc)[:200]})") from None
    if not isinstance(doc, dict):
        raise Malformed(f"manifest.json is JSON but not an object (a {type(doc).__name__})")
    files = doc.get("files")
    if not isinstance(files, list):
        raise Malformed('manifest.json has no "files" list')
    listed: dict[str, tuple[str, int]] = {}
    for i, f in enumerate(files):
        if not isinstance(f, dict):
            raise Malformed(f"manifest.json files[{i}] is not an object")
        path, sha, size = f.get("path"), f.get("sha256"), f.get("size")
        if not isinstance(path, str):
            raise Malformed(f"manifest.json files[{i}] has no path")
        if _safe_rel(path) is None:
            raise Malformed(f"manifest.json files[{i}] path {path[:200]!r} escapes the folder (absolute, '..', "
                            "empty or backslash parts)")
        if path in BESIDE:
            raise Malformed(f"manifest.json files[{i}] lists {path}, which cannot be listed in the manifest")
        if not isinstance(sha, str) or not _HEX64.match(sha):
            raise Malformed(f"manifest.json files[{i}] ({path[:200]}) has no sha256 of 64 lowercase hex digits")
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise Malformed(f"manifest.json files[{i}] ({path[:200]}) has no size (a whole number >= 0)")
        if path in listed:
            raise Malformed(f"manifest.json lists {path[:200]} twice")
        listed[path] = (sha, size)
    for key in ("signature", "timestamp", "previous"):
        if key in doc and doc[key] is not None and not isinstance(doc[key], dict):
            raise Malformed(f'manifest.json "{key}" is not an object')
    sig = doc.get("signature") or {}
    if sig and sig.get("status") not in ("signed", "unsigned"):
        raise Malformed('manifest.json "signature" has no status "signed" or "unsigned"')
    if sig.get("status") == "signed" and not isinstance(sig.get("public_key_fingerprint"), str):
        raise Malformed('manifest.json "signature" says signed but names no public_key_fingerprint')
    ts = doc.get("timestamp") or {}
    if ts and ts.get("status") not in ("requested", "none"):
        raise Malformed('manifest.json "timestamp" has no status "requested" or "none"')
    prev = doc.get("previous") or {}
    if prev and (not isinstance(prev.get("date"), str) or not (prev.get("sha256") is None
                                                                 or isinstance(prev.get("sha256"), str))):
        raise Malformed('manifest.json "previous" has no date or sha256')
    return doc, listed


# --- signature and time-stamp ----------------------------------------------------------------


def check_companions(report: Report, manifest_bytes: bytes, beside: dict[str, bytes | None],
                     public_key=None, tsa_anchors=None) -> None:
    """Signature and time-stamp of the manifest (see the module doc); ``beside``: the bytes of
    manifest.json.sig / .tsr when present (None: present but too large)."""
    doc = report.manifest or {}
    sig_block, ts_block = doc.get("signature") or {}, doc.get("timestamp") or {}
    signed = sig_block.get("status") == "signed"
    sig = beside.get(SIG, b"")
    if signed and SIG not in beside:
        report.problem(f"missing: {SIG} (manifest.json says it is signed by {sig_block.get('public_key_fingerprint')})")
    elif not signed and SIG in beside:
        report.problem(f"added: {SIG} (manifest.json says it is {sig_block.get('status') or 'not signed'})")
    elif SIG in beside and sig is None:
        report.problem(f"modified: {SIG} (larger than any signature)")
    if public_key is not None:
        if not signed:
            report.problem("not signed: a public key was given, so a signature is expected, but manifest.json says "
                           f"{sig_block.get('status') or 'nothing about a signature'} (a signed manifest replaced?)")
        elif sig:
            try:
                fp = signing.verify_signature_bytes(manifest_bytes, sig, public_key,
                                                    sig_block.get("public_key_fingerprint"))
                report.notes.append(f"signature: OK, Ed25519 by {fp}")
            except signing.SignatureVerificationError as exc:
                report.problem(f"signature: {exc}")
    elif signed and sig:
        report.notes.append(f"signature: present, NOT verified (give --public-key; the manifest names "
                            f"{sig_block.get('public_key_fingerprint')})")
    elif not signed and sig_block:
        report.notes.append("signature: none, manifest.json says it is unsigned")
    stamped = ts_block.get("status") == "requested"
    tsr = beside.get(TSR, b"")
    if stamped and TSR not in beside:
        report.problem(f"missing: {TSR} (manifest.json says a time-stamp was requested from {ts_block.get('tsa_url')})")
        return
    if not stamped and TSR in beside:
        report.problem(f"added: {TSR} (manifest.json says no time-stamp was requested)")
        return
    if TSR not in beside:
        return
    if tsr is None:
        report.errors.append(f"unreadable {TSR}: larger than {timestamp.MAX_RESPONSE_BYTES} bytes")
        return
    try:
        info = timestamp.verify_timestamp(tsr, hashlib.sha256(manifest_bytes).digest(), tsa_anchors or None)
    except timestamp.TimestampMalformed as exc:
        report.errors.append(f"unreadable {TSR}: {exc}")
        return
    except timestamp.TimestampVerificationError as exc:
        report.problem(f"time-stamp: {exc}")
        return
    when = info.gen_time.strftime("%Y-%m-%dT%H:%M:%SZ")
    if info.chain_verified:
        report.notes.append(f"time-stamp: OK, {when} by {info.signer_subject}, chain verified against --tsa-ca")
    else:
        report.notes.append(f"time-stamp: imprint and token signature OK, {when} by {info.signer_subject}; chain "
                            "NOT verified (give --tsa-ca with the TSA's root, obtained from the TSA)")


# --- folders ---------------------------------------------------------------------------------


def _hash_fd(fd: int) -> tuple[str, int]:
    h, n = hashlib.sha256(), 0
    while chunk := os.read(fd, CHUNK):
        h.update(chunk)
        n += len(chunk)
    return h.hexdigest(), n


def _read_capped(path: Path, cap: int) -> bytes | None:
    """The bytes of a regular file (not followed if a symlink), or None when larger than ``cap``."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise Malformed(f"{path.name} is not a regular file")
        with os.fdopen(os.dup(fd), "rb") as fh:
            data = fh.read(cap + 1)
    finally:
        os.close(fd)
    return None if len(data) > cap else data


def _kind(mode: int) -> str:
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    if stat.S_ISFIFO(mode):
        return "a fifo"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def _verify_folder(root: Path, report: Report, public_key, tsa_anchors) -> None:
    try:
        st = os.lstat(root / MANIFEST)
    except FileNotFoundError:
        raise Malformed("missing: manifest.json") from None
    if not stat.S_ISREG(st.st_mode):
        raise Malformed(f"manifest.json is {_kind(st.st_mode)}")
    data = _read_capped(root / MANIFEST, MAX_MANIFEST_BYTES)
    if data is None:
        raise Malformed(f"manifest.json is larger than {MAX_MANIFEST_BYTES} bytes")
    report.manifest_sha256 = hashlib.sha256(data).hexdigest()
    report.manifest, listed = parse_manifest(data)
    beside: dict[str, bytes | None] = {}
    seen: set[str] = set()
    stack = [""]
    while stack:
        rel_dir = stack.pop()
        with os.scandir(root / rel_dir if rel_dir else root) as it:
            entries = sorted(it, key=lambda e: e.name)
        for e in entries:
            rel = f"{rel_dir}/{e.name}" if rel_dir else e.name
            st = e.stat(follow_symlinks=False)
            if stat.S_ISDIR(st.st_mode):
                stack.append(rel)
                continue
            if not stat.S_ISREG(st.st_mode):
                report.problem(f"added: {rel} ({_kind(st.st_mode)}: evidence holds regular files only)")
                continue
            if rel == MANIFEST:
                continue
            if rel in (SIG, TSR):
                beside[rel] = _read_capped(root / rel, 4096 if rel == SIG else timestamp.MAX_RESPONSE_BYTES)
                continue
            want = listed.get(rel)
            if want is None:
                report.problem(f"added: {rel} (not listed in the manifest)")
                continue
            seen.add(rel)
            fd = os.open(root / rel, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
            try:
                got = _hash_fd(fd)
            finally:
                os.close(fd)
            if got != want:
                report.problem(f"modified: {rel} (sha256 {got[0]}, size {got[1]}; manifest says sha256 {want[0]}, "
                               f"size {want[1]})")
    for rel in sorted(set(listed) - seen):
        report.problem(f"missing: {rel} (listed in the manifest, absent)")
    check_companions(report, data, beside, public_key, tsa_anchors)


# --- archives --------------------------------------------------------------------------------


class _CappedTarInfo(tarfile.TarInfo):
    """tarfile reads PAX and GNU long-name header blocks whole: refuse large ones (bounded memory)."""

    def _proc_pax(self, tf):
        if self.size > MAX_HEADER_BYTES:
            raise tarfile.HeaderError(f"a PAX header of {self.size} bytes (more than {MAX_HEADER_BYTES})")
        return super()._proc_pax(tf)

    def _proc_gnulong(self, tf):
        if self.size > MAX_HEADER_BYTES:
            raise tarfile.HeaderError(f"a GNU long-name header of {self.size} bytes (more than {MAX_HEADER_BYTES})")
        return super()._proc_gnulong(tf)


def _member_problem(m: tarfile.TarInfo) -> str | None:
    name = m.name
    if name.startswith("/") or re.match(r"^[A-Za-z]:", name):
        return f"added: {name} (an absolute path)"
    if ".." in PurePosixPath(name).parts or "\\" in name or "\x00" in name:
        return f"added: {name} (a path escaping the folder)"
    if m.issym() or m.islnk():
        return f"added: {name} (a {'symbolic' if m.issym() else 'hard'} link to {m.linkname[:200]!r}: evidence holds " \
               "regular files only)"
    if m.ischr() or m.isblk():
        return f"added: {name} (a device)"
    if m.isfifo():
        return f"added: {name} (a fifo)"
    if m.issparse():
        return f"added: {name} (a sparse member)"
    if not (m.isfile() or m.isdir()):
        return f"added: {name} (not a regular file, type {m.type!r})"
    return None


def _open_stream(p: Path):
    return tarfile.open(p, mode="r|gz", tarinfo=_CappedTarInfo)


def _read_member(tar, m: tarfile.TarInfo, cap: int) -> bytes | None:
    fh = tar.extractfile(m)
    data = fh.read(cap + 1) if fh else b""
    return None if len(data) > cap else data


def _verify_archive(p: Path, report: Report, public_key, tsa_anchors) -> None:
    prefix = None
    found: dict[str, bytes | None] = {}
    try:
        with _open_stream(p) as tar:  # pass 1: the manifest and what accompanies it
            for m in tar:
                top = m.name.split("/", 1)[0]
                if prefix is None and top and _member_problem(m) is None:
                    prefix = top  # the first member is the evidence folder <date>/
                rel = m.name[len(prefix) + 1:] if prefix and m.name.startswith(prefix + "/") else None
                if rel in BESIDE and m.isfile() and rel not in found:
                    found[rel] = _read_member(tar, m, {MANIFEST: MAX_MANIFEST_BYTES, SIG: 4096}.get(
                        rel, timestamp.MAX_RESPONSE_BYTES))
                    if rel == MANIFEST and found[rel] is None:
                        raise Malformed(f"manifest.json is larger than {MAX_MANIFEST_BYTES} bytes")
    except (OSError, tarfile.TarError, EOFError, ValueError) as exc:
        raise Malformed(f"unreadable archive {p.name}: {type(exc).__name__}: {str(exc)[:300]}") from None
    if MANIFEST not in found:
        raise Malformed("missing: manifest.json")
    data = found.pop(MANIFEST)
    if data is None:
        raise Malformed(f"manifest.json is larger than {MAX_MANIFEST_BYTES} bytes")
    report.manifest_sha256 = hashlib.sha256(data).hexdigest()
    report.manifest, listed = parse_manifest(data)
    seen: set[str] = set()
    names: set[str] = set()
    try:
        with _open_stream(p) as tar:  # pass 2: every member against the manifest
            for m in tar:
                if m.name.rstrip("/") in names:
                    report.problem(f"added: {m.name} (a second member of the same name)")
                    continue
                if len(names) < len(listed) + 10_000:  # bounded: beyond that the archive is failing anyway
                    names.add(m.name.rstrip("/"))
                bad = _member_problem(m)
                if bad:
                    report.problem(bad)
                    continue
                if m.isdir():
                    continue
                if not m.name.startswith(prefix + "/"):
                    report.problem(f"added: {m.name} (outside the evidence folder {prefix}/)")
                    continue
                rel = m.name[len(prefix) + 1:]
                if rel in BESIDE:
                    continue
                want = listed.get(rel)
                if want is None:
                    report.problem(f"added: {rel} (not listed in the manifest)")
                    continue
                seen.add(rel)
                h, n = hashlib.sha256(), 0
                fh = tar.extractfile(m)
                while chunk := fh.read(CHUNK):
                    h.update(chunk)
                    n += len(chunk)
                if (h.hexdigest(), n) != want:
                    report.problem(f"modified: {rel} (sha256 {h.hexdigest()}, size {n}; manifest says sha256 "
                                   f"{want[0]}, size {want[1]})")
    except (OSError, tarfile.TarError, EOFError, ValueError) as exc:
        report.errors.append(f"unreadable archive {p.name}: {type(exc).__name__}: {str(exc)[:300]}")
        return
    for rel in sorted(set(listed) - seen):
        report.problem(f"missing: {rel} (listed in the manifest, absent)")
    check_companions(report, data, found, public_key, tsa_anchors)


def verify(path: str | os.PathLike, public_key=None, tsa_anchors=None) -> Report:
    """Check an evidence archive, evidence folder or sample packet (see the module doc)."""
    p = Path(path)
    report = Report(str(p))
    try:
        st = os.lstat(p)
        if stat.S_ISDIR(st.st_mode):
            _verify_folder(p, report, public_key, tsa_anchors)
        elif stat.S_ISREG(st.st_mode):
            _verify_archive(p, report, public_key, tsa_anchors)
        else:
            raise Malformed(f"{p.name} is {_kind(st.st_mode)}, not an archive or a folder")
    except Malformed as exc:
        report.errors.append(str(exc))
    except OSError as exc:
        report.errors.append(f"unreadable {p.name}: {exc.strerror or exc}")
    return report


def verify_archive(path: str | os.PathLike) -> list[str]:
    """The problems of :func:`verify` as lines (modified, missing or added files, unreadable input);
    an empty list means every file is exactly as recorded."""
    return verify(path).lines()
