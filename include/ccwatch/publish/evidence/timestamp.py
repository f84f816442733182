"""RFC 3161 time-stamp of manifest.json (CONTROLS.md, "Evidence an auditor can trust (r2)").

With ``evidence.timestamp_url`` set, the run asks that time-stamping authority (TSA) for a token over
SHA-256(manifest.json) and stores the reply, byte for byte as the TSA sent it (a DER
TimeStampResp: what ``openssl ts -verify -in`` reads), as ``manifest.json.tsr``.  A TSA that fails
fails the run (fail closed): ``tsa_client.request_timestamp`` (the network half) raises
:class:`TimestampError` naming the URL (without credentials) and the cause.  This module parses and
verifies tokens; ``verify`` uses it on archives, the client on a fresh reply.

Library: rfc3161-client 1.0.9 (pinned: 1.0.8 and older trust the certificates a token carries,
so a forged token from any self-made TSA verifies).  Its traps, handled here: the request
builder defaults to SHA-512 and ``cert_request()`` to False (both set explicitly); its parser
rejects the unsorted certificate SET that OpenSSL-based TSAs write (sorted in memory, the
stored bytes stay verbatim); ``Verifier.verify`` does not check the imprint's algorithm (checked
here); ``VerifierBuilder.add_root_certificate`` mutates a list shared between builders (a fresh
builder each time).

Verification (:func:`verify_timestamp`):
  1. the reply parses (DER TimeStampResp, size-capped) and is granted;
  2. the token's imprint is SHA-256 and equals SHA-256(manifest.json);
  3. the token's CMS signature verifies with the signer certificate the token carries
     (:func:`check_token_signature`: the messageDigest attribute equals the hash of the TSTInfo,
     and the signature over the signed attributes verifies): this proves the token is intact;
  4. given trust anchors (``verify --tsa-ca``: the TSA's root, obtained from the TSA, never from the
     archive, whose copy a forger would replace along with the token), the signer certificate
     chains to one of them at genTime with a critical timeStamping EKU (rfc3161-client's
     Verifier, OpenSSL PKCS7_verify): this proves WHO stamped it.
Not checked: revocation (no CRL/OCSP), the ESS signingCertificate attribute (``openssl ts -verify``
checks it), TSTInfo's ``tsa`` name.
"""

from __future__ import annotations

import datetime as dt
import os
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from rfc3161_client import (
    PKIStatus,
    TimeStampResponse,
    VerificationError,
    VerifierBuilder,
    decode_timestamp_response,
)

from ccwatch.publish.evidence.der import children, decode_oid, sort_token_certificates, tlv

TIMESTAMP_FILE = "manifest.json.tsr"
SHA256_OID = x509.ObjectIdentifier("2.16.840.1.101.3.4.2.1")
MAX_RESPONSE_BYTES = 256 * 1024  # real replies are 2-10 KiB (token + a few certificates)


class TimestampError(Exception):
    """The TSA round trip failed: the run must fail (fail closed). Message names the cause."""


class TimestampMalformed(ValueError):
    """A stored .tsr (or a TSA reply) is not a readable TimeStampResp (verify exit code 2)."""


class TimestampVerificationError(Exception):
    """A readable time-stamp does not verify: tampered data, untrusted TSA, ... (verify exit code 1)."""


@dataclass(frozen=True)
class TimestampInfo:
    gen_time: dt.datetime
    serial_number: int
    policy: str
    nonce: int | None
    tsa_name: str | None
    signer_subject: str
    digest_hex: str
    chain_verified: bool = False  # True: the signer chains to a trust anchor the verifier gave


@dataclass(frozen=True)
class TimestampResult:
    response_der: bytes  # verbatim TSA reply: what goes into manifest.json.tsr
    info: TimestampInfo
    round_trip_seconds: float
    chain_verified: bool


# --------------------------------------------------------------------------- helpers

def redact_url(url: str) -> str:
    """Drop userinfo and query from a URL for messages (a TSA URL may embed credentials)."""
    try:
        p = urllib.parse.urlsplit(url)
        host = p.hostname or ""
        if p.port:
            host += f":{p.port}"
    except ValueError:
        return "(unparsable URL)"
    return urllib.parse.urlunsplit((p.scheme, host, p.path, "", ""))


def load_trust_anchors(path: str | os.PathLike[str]) -> list[x509.Certificate]:
    """PEM bundle of TSA trust anchors (what an auditor passes to ``openssl ts -verify -CAfile``)."""
    data = Path(path).read_bytes()
    if len(data) > 4 * 1024 * 1024:
        raise TimestampMalformed(f"{path}: CA bundle larger than 4 MiB")
    try:
        certs = x509.load_pem_x509_certificates(data)
    except ValueError:
        raise TimestampMalformed(f"{path}: not a PEM certificate bundle") from None
    return certs


def parse_response(der: bytes) -> TimeStampResponse:
    """Parse a DER TimeStampResp with rfc3161-client (tolerating unsorted certificate sets)."""
    if not der:
        raise TimestampMalformed("empty time-stamp reply")
    if len(der) > MAX_RESPONSE_BYTES:
        raise TimestampMalformed(f"time-stamp reply larger than {MAX_RESPONSE_BYTES} bytes")
    try:
        return decode_timestamp_response(der)
    except ValueError as first:
        if "InvalidSetOrdering" not in str(first):
            raise TimestampMalformed(f"not a DER RFC 3161 TimeStampResp ({short_error(first)})") from None
    try:
        return decode_timestamp_response(sort_token_certificates(der))
    except ValueError as e:
        raise TimestampMalformed(f"not a DER RFC 3161 TimeStampResp ({short_error(e)})") from None


def short_error(e: Exception) -> str:
    s = str(e)
    return s if len(s) <= 200 else s[:200] + "..."


def status_text(resp: TimeStampResponse) -> str:
    try:
        name = PKIStatus(resp.status).name.lower()
    except ValueError:
        name = f"unknown status {resp.status}"
    texts = "; ".join(resp.status_string)
    return f"{name}" + (f" ({texts})" if texts else "")


def _info(resp: TimeStampResponse, leaf_subject: str, chain_verified: bool) -> TimestampInfo:
    ti = resp.tst_info
    try:
        tsa_name = ti.name.value.rfc4514_string() if ti.name is not None else None  # DirectoryName
    except AttributeError:
        tsa_name = str(ti.name.value) if ti.name is not None else None
    gen = ti.gen_time
    if gen.tzinfo is None:
        gen = gen.replace(tzinfo=dt.UTC)  # GeneralizedTime in TSTInfo is UTC ("Z")
    return TimestampInfo(
        gen_time=gen,
        serial_number=ti.serial_number,
        policy=ti.policy.dotted_string,
        nonce=ti.nonce,
        tsa_name=tsa_name,
        signer_subject=leaf_subject,
        digest_hex=ti.message_imprint.message.hex(),
        chain_verified=chain_verified,
    )


# --------------------------------------------------------------------------- the token's own signature

_OID_MESSAGE_DIGEST = bytes.fromhex("06092a864886f70d010904")  # 1.2.840.113549.1.9.4, DER-encoded
_DIGESTS = {"2.16.840.1.101.3.4.2.1": hashes.SHA256, "2.16.840.1.101.3.4.2.2": hashes.SHA384,
            "2.16.840.1.101.3.4.2.3": hashes.SHA512}
_RSA_PKCS1 = {"1.2.840.113549.1.1.1", "1.2.840.113549.1.1.11", "1.2.840.113549.1.1.12", "1.2.840.113549.1.1.13"}
_ECDSA = {"1.2.840.10045.4.3.2", "1.2.840.10045.4.3.3", "1.2.840.10045.4.3.4"}


def check_token_signature(response_der: bytes, resp: TimeStampResponse) -> str:
    """Verify the token's CMS signature with the signer certificate the token itself carries: the
    signed attributes' messageDigest equals the digest of the encapsulated TSTInfo, and the
    SignerInfo's signature over the signed attributes verifies.  Returns the signer's subject.

    This proves the token was not altered after the TSA signed it; it does NOT prove which TSA
    signed it (anyone can make a certificate): that takes a trust anchor (:func:`verify_timestamp`
    with ``trust_anchors``).  Raises :class:`TimestampVerificationError` or :class:`TimestampMalformed`."""
    try:
        der = sort_token_certificates(response_der)
        _, s, e = tlv(der, 0)
        items = children(der, s, e)
        if len(items) < 2:
            raise TimestampVerificationError("the reply holds no time-stamp token")
        _, _, ci_s, ci_e = items[1]  # ContentInfo
        ci = children(der, ci_s, ci_e)
        _, _, x_s, x_e = ci[1]  # [0] EXPLICIT
        _, _, sd_s, sd_e = children(der, x_s, x_e)[0]  # SignedData
        sd = children(der, sd_s, sd_e)
        _, _, enc_s, enc_e = sd[2]  # encapContentInfo
        enc = children(der, enc_s, enc_e)
        _, _, ex_s, ex_e = enc[1]  # [0] EXPLICIT eContent
        _, _, oct_s, oct_e = children(der, ex_s, ex_e)[0]  # OCTET STRING: the DER TSTInfo
        tst_info = der[oct_s:oct_e]
        signer_infos = [x for x in sd[3:] if x[0] == 0x31][-1]
        sis = children(der, signer_infos[2], signer_infos[3])
        if len(sis) != 1:
            raise TimestampVerificationError(f"the token has {len(sis)} SignerInfos, expected exactly one")
        si = children(der, sis[0][2], sis[0][3])
        # version, sid, digestAlgorithm, [0] signedAttrs, signatureAlgorithm, signature
        digest_oid = decode_oid(der[slice(*children(der, si[2][2], si[2][3])[0][2:4])])
        attrs = next((x for x in si[3:] if x[0] == 0xA0), None)
        if attrs is None:
            raise TimestampVerificationError("the token's SignerInfo has no signed attributes (RFC 3161 requires them)")
        after = si[si.index(attrs) + 1:]
        sig_oid = decode_oid(der[slice(*children(der, after[0][2], after[0][3])[0][2:4])])
        signature = der[after[1][2]:after[1][3]]
        message_digest = None
        for _, _, a_s, a_e in children(der, attrs[2], attrs[3]):
            attr = children(der, a_s, a_e)
            if der[attr[0][1]:attr[0][3]] == _OID_MESSAGE_DIGEST:
                message_digest = der[slice(*children(der, attr[1][2], attr[1][3])[0][2:4])]
        signed = b"\x31" + der[attrs[1] + 1:attrs[3]]  # the attributes as a DER SET: what was signed
    except (ValueError, IndexError):
        raise TimestampMalformed("the time-stamp token's CMS structure is unreadable") from None
    algorithm = _DIGESTS.get(digest_oid)
    if algorithm is None:
        raise TimestampVerificationError(f"the token's digest algorithm {digest_oid} is not SHA-256/384/512")
    h = hashes.Hash(algorithm())
    h.update(tst_info)
    if message_digest != h.finalize():
        raise TimestampVerificationError("the token's messageDigest does not match its TSTInfo: the token was altered")
    try:
        infos = list(resp.signed_data.signer_infos)
        signer = None
        for cert_der in resp.signed_data.certificates:
            cert = x509.load_der_x509_certificate(cert_der)
            if infos and cert.issuer == infos[0].issuer and cert.serial_number == infos[0].serial_number:
                signer = cert
        key = signer.public_key() if signer is not None else None
        subject = signer.subject.rfc4514_string() if signer is not None else ""
    except Exception:  # noqa: BLE001 - the library raises KeyError, ValueError, ... on hostile certificates
        raise TimestampMalformed("a certificate in the time-stamp token is unreadable") from None
    if signer is None:
        raise TimestampVerificationError("the token does not carry its signer's certificate (certReq was set)")
    try:
        if isinstance(key, rsa.RSAPublicKey) and sig_oid in _RSA_PKCS1:
            key.verify(signature, signed, padding.PKCS1v15(), algorithm())
        elif isinstance(key, ec.EllipticCurvePublicKey) and (sig_oid in _ECDSA or sig_oid == "1.2.840.10045.2.1"):
            key.verify(signature, signed, ec.ECDSA(algorithm()))
        else:
            raise TimestampVerificationError(
                f"the token's signature algorithm {sig_oid} with a {type(key).__name__} is not supported here")
    except (InvalidSignature, UnsupportedAlgorithm, ValueError):
        raise TimestampVerificationError("the token's signature does not verify with its signer certificate: "
                                         "the token was altered") from None
    return subject


# --------------------------------------------------------------------------- verification

def verify_timestamp(response_der: bytes, digest: bytes, trust_anchors: Sequence[x509.Certificate] | None,
                     **kw) -> TimestampInfo:
    """Verify a stored/received TimeStampResp over ``digest`` (SHA-256 of the manifest bytes): steps
    1-3 of the module doc always, step 4 (the chain) when ``trust_anchors`` are given; keywords:
    ``nonce``, ``policy_oid``, ``tsa_certificate``.

    Raises :class:`TimestampMalformed` (unreadable) or :class:`TimestampVerificationError`; any other
    error of the parsers on hostile bytes is reported as malformed, never as a traceback."""
    try:
        return _verify_timestamp(response_der, digest, trust_anchors, **kw)
    except (TimestampMalformed, TimestampVerificationError):
        raise
    except Exception as e:  # noqa: BLE001 - rust-asn1 / cryptography raise KeyError, ValueError, ... on junk
        raise TimestampMalformed(f"time-stamp token unreadable ({type(e).__name__}: {short_error(e)})") from None


def _verify_timestamp(
    response_der: bytes,
    digest: bytes,
    trust_anchors: Sequence[x509.Certificate] | None,
    *,
    nonce: int | None = None,
    policy_oid: str | None = None,
    tsa_certificate: x509.Certificate | None = None,
) -> TimestampInfo:
    """Verify a stored/received TimeStampResp over ``digest`` (SHA-256 of the manifest bytes): steps
    1-3 of the module doc always, step 4 (the chain) when ``trust_anchors`` are given.

    Raises :class:`TimestampMalformed` (unreadable) or :class:`TimestampVerificationError`.
    """
    if len(digest) != 32:
        raise ValueError("digest must be a 32-byte SHA-256 value")
    resp = parse_response(response_der)
    if resp.status != PKIStatus.GRANTED:
        raise TimestampVerificationError(f"TSA did not grant the time-stamp: {status_text(resp)}")
    try:
        imprint = resp.tst_info.message_imprint
    except ValueError as e:
        raise TimestampMalformed(f"granted reply without a readable token ({short_error(e)})") from None
    # rfc3161-client's Verifier.verify() compares only the imprint bytes, not the algorithm: check it.
    if imprint.hash_algorithm != SHA256_OID:
        raise TimestampVerificationError(
            f"token imprint algorithm is {imprint.hash_algorithm.dotted_string}, expected SHA-256"
        )
    if imprint.message != digest:
        raise TimestampVerificationError(
            f"token is over SHA-256 {imprint.message.hex()}, but the manifest's SHA-256 is "
            f"{digest.hex()}: the manifest was changed after it was time-stamped (or the TSA "
            "stamped something else)"
        )
    subject = check_token_signature(response_der, resp)
    if not trust_anchors:
        return _info(resp, subject, chain_verified=False)
    # A fresh builder every time: VerifierBuilder.add_root_certificate() appends to a list that
    # is shared (shallow copy) with the builder it was called on.
    builder = VerifierBuilder()
    for anchor in trust_anchors:
        builder = builder.add_root_certificate(anchor)
    if nonce is not None:
        builder = builder.nonce(nonce)
    if policy_oid is not None:
        builder = builder.policy_id(x509.ObjectIdentifier(policy_oid))
    if tsa_certificate is not None:
        builder = builder.tsa_certificate(tsa_certificate)
    try:
        builder.build().verify(resp, digest)
    except VerificationError as e:
        raise TimestampVerificationError(f"time-stamp token does not verify: {e}") from None
    except ValueError as e:  # malformed certificates inside the token
        raise TimestampMalformed(f"time-stamp token unreadable: {short_error(e)}") from None
    return _info(resp, subject, chain_verified=True)
