"""Ed25519 signature of manifest.json (CONTROLS.md, "Evidence an auditor can trust (r2)").

``manifest.json.sig`` is the raw 64-byte Ed25519 signature (RFC 8032 PureEdDSA) of the exact bytes
of manifest.json: what ``openssl pkeyutl -sign -rawin`` writes and ``-sigfile`` reads, so an auditor
needs no decoding step::

    openssl pkeyutl -verify -pubin -inkey pub.pem -rawin -in manifest.json -sigfile manifest.json.sig

The manifest names the key by its fingerprint: ``sha256:`` + hex SHA-256 of the DER
SubjectPublicKeyInfo (``openssl pkey -pubin -in pub.pem -outform DER | sha256sum``; not
``ssh-keygen -lf``, which hashes another encoding).

The private key comes from an Airflow connection's password (``evidence.signing_conn_id``; the
glue is ``ccwatch_airflow.signing``) and is only ever held in memory: no message here contains key
material, and parser exceptions are not chained (``from None``) so a traceback cannot show it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import re
from pathlib import Path

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import dh, dsa, ec, ed448, ed25519, rsa, x448, x25519

SIGNATURE_FILE = "manifest.json.sig"
SIGNATURE_LEN = 64
MAX_MANIFEST_BYTES = 64 * 1024 * 1024  # Ed25519 (PureEdDSA) needs the whole message in memory
FINGERPRINT_METHOD = "SHA-256 of the DER SubjectPublicKeyInfo (openssl pkey -pubin -in pub.pem -outform DER | sha256sum)"


class SigningKeyError(ValueError):
    """The configured private key is unusable. The message never contains key material."""


class SignatureVerificationError(Exception):
    """The signature does not verify (tampered manifest, wrong key, malformed .sig)."""


# --------------------------------------------------------------------------- key loading

_PEM_RE = re.compile(
    r"-----BEGIN ([A-Z0-9 ]+)-----(.*?)-----END \1-----", re.DOTALL
)


def _describe_key(key: object) -> str:
    if isinstance(key, rsa.RSAPrivateKey):
        return f"an RSA key ({key.key_size} bits)"
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return f"an EC key ({key.curve.name})"
    if isinstance(key, dsa.DSAPrivateKey):
        return "a DSA key"
    if isinstance(key, ed448.Ed448PrivateKey):
        return "an Ed448 key"
    if isinstance(key, (x25519.X25519PrivateKey, x448.X448PrivateKey)):
        return "an X25519/X448 key-agreement key"
    if isinstance(key, dh.DHPrivateKey):
        return "a DH key"
    return f"a {type(key).__name__}"


_GENERATE_HINT = (
    "generate one with `openssl genpkey -algorithm ed25519 -out key.pem` and store the whole "
    "PEM (-----BEGIN PRIVATE KEY----- ... -----END PRIVATE KEY-----) as the connection's password"
)


def normalize_pem_text(text: str | bytes) -> str:
    """Repair the ways a PEM gets mangled on its way through env vars / Airflow connections.

    Handles: bytes; a UTF-8 BOM; surrounding whitespace; surrounding quotes or a JSON string
    literal; literal ``\\n`` / ``\\r\\n`` sequences (double-escaped JSON, ``AIRFLOW_CONN_*``
    values, .env files); CRLF line ends; the whole PEM on one line with spaces instead of
    newlines; base64 body wrapped at any width; a bare base64 body without the BEGIN/END lines
    (treated as PKCS#8 DER, i.e. ``PRIVATE KEY``). Returns a canonical PEM (64-column body).
    """
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError:
            raise SigningKeyError(
                "the signing key is not text (binary DER?); expected a PEM private key: "
                + _GENERATE_HINT
            ) from None
    t = text.lstrip("\ufeff").strip()
    # A value that is itself a JSON string literal: "-----BEGIN ...\n..."
    if len(t) >= 2 and t[0] == t[-1] == '"':
        try:
            decoded = json.loads(t)
            if isinstance(decoded, str):
                t = decoded.strip()
        except ValueError:
            t = t[1:-1].strip()
    elif len(t) >= 2 and t[0] == t[-1] == "'":
        t = t[1:-1].strip()
    # Literal backslash escapes -> real newlines.
    t = t.replace("\\r\\n", "\n").replace("\\n", "\n").replace("\\r", "\n")
    t = t.replace("\r\n", "\n").replace("\r", "\n")
    if not t:
        raise SigningKeyError("the signing key is empty: " + _GENERATE_HINT)

    m = _PEM_RE.search(t)
    if m is None:
        if "-----BEGIN" in t:
            raise SigningKeyError(
                "the signing key has a -----BEGIN line but no matching -----END line "
                "(truncated value?): " + _GENERATE_HINT
            )
        # Bare base64 body (framing lost): assume PKCS#8 DER.
        body = re.sub(r"\s+", "", t)
        label = "PRIVATE KEY"
        headers: list[str] = []
    else:
        label, inner = m.group(1), m.group(2)
        lines = [ln.strip() for ln in inner.strip().split("\n")] if "\n" in inner.strip() else inner.split()
        # RFC 1421 headers (legacy encrypted PEM: "Proc-Type: 4,ENCRYPTED", "DEK-Info: ...").
        headers = [ln for ln in lines if ":" in ln]
        body = "".join(ln for ln in lines if ln and ":" not in ln)
        body = re.sub(r"\s+", "", body)
    try:
        base64.b64decode(body, validate=True)
    except (binascii.Error, ValueError):
        raise SigningKeyError(
            f"the signing key's base64 body (PEM label {label!r}) is not valid base64 "
            "(truncated or mangled?): " + _GENERATE_HINT
        ) from None
    wrapped = "\n".join(body[i : i + 64] for i in range(0, len(body), 64))
    head = "".join(h + "\n" for h in headers) + ("\n" if headers else "")
    return f"-----BEGIN {label}-----\n{head}{wrapped}\n-----END {label}-----\n"


def load_ed25519_private_key(
    text: str | bytes, passphrase: bytes | None = None
) -> ed25519.Ed25519PrivateKey:
    """Load an Ed25519 private key from (possibly mangled) PEM text, e.g. an Airflow password.

    Accepts PKCS#8 (``-----BEGIN PRIVATE KEY-----``), the same with a passphrase when
    ``passphrase`` is given (``ENCRYPTED PRIVATE KEY``), and an unencrypted OpenSSH
    ``ssh-keygen -t ed25519`` key. Everything else raises :class:`SigningKeyError` with a
    message that says what the key is and what to do, never the key itself.
    """
    raw_text = text.decode("utf-8", "replace") if isinstance(text, bytes) else text
    if passphrase is None and ("ENCRYPTED PRIVATE KEY" in raw_text or "Proc-Type: 4,ENCRYPTED" in raw_text):
        raise SigningKeyError(
            "the signing key is passphrase-protected and no passphrase was configured; "
            "store an unencrypted PKCS#8 key in the connection password (the connection "
            "store is the secret store), e.g. `openssl pkey -in enc.pem -out key.pem`"
        )
    pem = normalize_pem_text(text)
    label = pem.split("\n", 1)[0][len("-----BEGIN ") : -len("-----")]
    data = pem.encode("ascii")

    if label in ("PUBLIC KEY", "RSA PUBLIC KEY") or label.endswith("CERTIFICATE"):
        raise SigningKeyError(
            f"the signing key is a {label.lower()}, not a private key: the connection's password "
            "must hold the PRIVATE key; the public key is for verifiers. " + _GENERATE_HINT
        )
    try:
        if label == "OPENSSH PRIVATE KEY":
            key = serialization.load_ssh_private_key(data, password=passphrase)
        else:
            key = serialization.load_pem_private_key(data, password=passphrase)
    except TypeError:
        # cryptography: "Password was not given but private key is encrypted" or the reverse.
        raise SigningKeyError(
            "the signing key's encryption does not match the configured passphrase "
            "(encrypted key without passphrase, or passphrase for an unencrypted key)"
        ) from None
    except UnsupportedAlgorithm:
        raise SigningKeyError(
            f"the signing key (PEM label {label!r}) uses an algorithm this build cannot load; "
            + _GENERATE_HINT
        ) from None
    except ValueError:
        # Wrong passphrase, corrupt DER, unsupported PEM label, ...
        msg = (
            "the signing key could not be decrypted with the configured passphrase"
            if passphrase is not None
            else f"the signing key (PEM label {label!r}) is not a readable private key"
        )
        raise SigningKeyError(msg + "; " + _GENERATE_HINT) from None
    if not isinstance(key, ed25519.Ed25519PrivateKey):
        raise SigningKeyError(
            f"the signing key is {_describe_key(key)}; ccwatch signs evidence with Ed25519 only: "
            + _GENERATE_HINT
        )
    return key


def load_ed25519_public_key(path: str | os.PathLike[str]) -> ed25519.Ed25519PublicKey:
    """Load a verifier's public key: PEM SubjectPublicKeyInfo (``-----BEGIN PUBLIC KEY-----``).

    Also accepts DER SPKI, and an X.509 certificate carrying an Ed25519 key.
    """
    raw = Path(path).read_bytes()
    if len(raw) > 64 * 1024:
        raise SigningKeyError(f"{path}: too large for a public key file")
    key: object
    try:
        if b"-----BEGIN CERTIFICATE-----" in raw:
            from cryptography import x509

            key = x509.load_pem_x509_certificate(raw).public_key()
        elif raw.lstrip().startswith(b"-----BEGIN"):
            if b"PRIVATE KEY" in raw:
                raise SigningKeyError(
                    f"{path}: this is a PRIVATE key; give the verifier the public key "
                    "(`openssl pkey -in key.pem -pubout -out pub.pem`)"
                )
            key = serialization.load_pem_public_key(raw)
        else:
            key = serialization.load_der_public_key(raw)
    except SigningKeyError:
        raise
    except (ValueError, UnsupportedAlgorithm):
        raise SigningKeyError(f"{path}: not a PEM/DER public key") from None
    if not isinstance(key, ed25519.Ed25519PublicKey):
        raise SigningKeyError(f"{path}: not an Ed25519 public key ({type(key).__name__})")
    return key


# --------------------------------------------------------------------------- fingerprints

def public_key_fingerprint(key: ed25519.Ed25519PublicKey | ed25519.Ed25519PrivateKey) -> str:
    """``sha256:<hex>`` of the DER SubjectPublicKeyInfo (= `openssl pkey -pubin -outform DER | sha256sum`)."""
    if isinstance(key, ed25519.Ed25519PrivateKey):
        key = key.public_key()
    spki = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return "sha256:" + hashlib.sha256(spki).hexdigest()


def public_key_pem(key: ed25519.Ed25519PublicKey | ed25519.Ed25519PrivateKey) -> str:
    if isinstance(key, ed25519.Ed25519PrivateKey):
        key = key.public_key()
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode("ascii")


def signature_block(key: ed25519.Ed25519PrivateKey | None, conn_id: str | None = None) -> dict:
    """manifest.json's ``signature``: the key that signs it (by fingerprint) or an explicit "unsigned".
    Written into the manifest BEFORE it is signed (the signature covers every field)."""
    if key is None:
        return {"status": "unsigned",
                "reason": "evidence.signing_conn_id is not set: this manifest is not signed, so only records "
                          "kept outside the archive (the evidence_archives table, the nightly Slack line, the "
                          "hash chain) can show it was not rewritten"}
    return {
        "status": "signed",
        "algorithm": "Ed25519",
        "file": SIGNATURE_FILE,
        "encoding": "raw 64 bytes: RFC 8032 PureEdDSA over the exact bytes of manifest.json",
        "public_key_fingerprint": public_key_fingerprint(key),
        "fingerprint_method": FINGERPRINT_METHOD,
        "conn_id": conn_id,
    }


def sign_manifest(manifest_path: Path, key: ed25519.Ed25519PrivateKey) -> bytes:
    """Sign the exact bytes on disk, check the signature, write ``manifest.json.sig`` beside it (the
    evidence folder is still under its temporary name: it is swapped in whole). Returns the signature."""
    data = Path(manifest_path).read_bytes()
    sig = key.sign(data)
    key.public_key().verify(sig, data)  # what we write is what we signed
    (Path(manifest_path).parent / SIGNATURE_FILE).write_bytes(sig)
    return sig


def verify_signature_bytes(manifest: bytes, sig: bytes, public_key: ed25519.Ed25519PublicKey,
                           expected_fingerprint: str | None) -> str:
    """Check ``sig`` (the bytes of manifest.json.sig) over ``manifest`` with the auditor's key.
    Returns the key's fingerprint; raises :class:`SignatureVerificationError` naming the cause."""
    fp = public_key_fingerprint(public_key)
    if expected_fingerprint is not None and str(expected_fingerprint).lower() != fp:
        raise SignatureVerificationError(
            f"manifest.json names signing key {expected_fingerprint}, but the given public key is {fp}")
    if len(sig) != SIGNATURE_LEN:
        b64 = sig.strip().isascii() and len(sig.strip()) == 88
        raise SignatureVerificationError(
            f"{SIGNATURE_FILE} has {len(sig)} bytes, an Ed25519 signature has {SIGNATURE_LEN}"
            + (" (base64 text? ccwatch writes the raw bytes)" if b64 else ""))
    try:
        public_key.verify(sig, manifest)
    except InvalidSignature:
        raise SignatureVerificationError(
            f"the Ed25519 signature in {SIGNATURE_FILE} does NOT match manifest.json (the manifest was changed "
            f"after it was signed, or another key than {fp} signed it)") from None
    return fp
