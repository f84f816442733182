"""Asking a time-stamping authority for an RFC 3161 token over manifest.json (CONTROLS.md,
"Evidence an auditor can trust (r2)"): the network half of ``evidence.timestamp_url``.

``request_timestamp`` POSTs a TimeStampReq (SHA-256 imprint, a nonce, certificates requested) and
returns the reply's bytes as the TSA sent them, once ``timestamp.verify_timestamp`` accepted them
(granted, imprint, nonce, the token's own signature, a genTime within ``MAX_CLOCK_SKEW`` of this
machine's clock).  A TSA that fails, redirects, answers too much or answers wrongly raises
``TimestampError`` naming the URL without credentials: the run fails (fail closed).  Parsing and
verifying tokens is ``timestamp``'s job; this module only talks to the TSA.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence

from cryptography import x509
from rfc3161_client import HashAlgorithm, PKIStatus, TimestampRequestBuilder

from ccwatch.publish.evidence.timestamp import (
    MAX_RESPONSE_BYTES,
    SHA256_OID,
    TimestampError,
    TimestampMalformed,
    TimestampResult,
    TimestampVerificationError,
    parse_response,
    redact_url,
    short_error,
    status_text,
    verify_timestamp,
)

USER_AGENT = "ccwatch-evidence (+RFC 3161 client)"
DEFAULT_TIMEOUT = 10.0  # seconds for the whole exchange; real TSAs answer in 0.1-1 s
MAX_CLOCK_SKEW = dt.timedelta(minutes=10)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    # urllib turns a POST answered by 301/302/303 into a body-less GET: refuse instead.
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        raise TimestampError(
            f"TSA answered HTTP {code} redirect to {redirect_target(newurl)}; configure that URL "
            "as evidence.timestamp_url (a POST cannot be redirected safely)"
        )


def redirect_target(url: str) -> str:
    return redact_url(url)


def request_timestamp(
    data: bytes,
    url: str,
    *,
    trust_anchors: Sequence[x509.Certificate] | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    max_clock_skew: dt.timedelta = MAX_CLOCK_SKEW,
) -> TimestampResult:
    """Obtain and check an RFC 3161 time-stamp over SHA-256(``data``). Fail closed.

    Status, nonce, imprint (SHA-256, the right digest), the token's own signature and genTime
    (within ``max_clock_skew`` of this host's clock) are always checked; the chain only with
    ``trust_anchors`` (``chain_verified``).
    ``timeout`` bounds the whole exchange (connect + send + every read), not just one read.
    Raises :class:`TimestampError` with a message naming the cause (never credentials).
    """
    digest = hashlib.sha256(data).digest()
    # rfc3161-client hashes the data itself (Rust side); there is no "give it a digest" API.
    req = (
        TimestampRequestBuilder()
        .data(data)
        .hash_algorithm(HashAlgorithm.SHA256)  # the builder's default is SHA-512
        .nonce(nonce=True)
        .cert_request(cert_request=True)  # NB: the method's own default is False
        .build()
    )
    assert req.message_imprint.message == digest and req.nonce is not None and req.cert_req
    safe_url = redact_url(url)
    if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
        raise TimestampError(f"evidence.timestamp_url must be http(s): {safe_url}")

    http_req = urllib.request.Request(
        url,
        data=req.as_bytes(),
        method="POST",
        headers={
            "Content-Type": "application/timestamp-query",
            "Accept": "application/timestamp-reply",
            "User-Agent": USER_AGENT,
        },
    )
    opener = urllib.request.build_opener(_NoRedirect)
    t0 = time.perf_counter()
    deadline = t0 + timeout
    try:
        with opener.open(http_req, timeout=timeout) as r:
            ctype = (r.headers.get("Content-Type") or "").split(";")[0].strip().lower()
            chunks, size = [], 0
            while True:
                if time.perf_counter() > deadline:
                    raise TimestampError(f"TSA {safe_url} timed out after {timeout:g}s (reply too slow)")
                chunk = r.read(16384)
                if not chunk:
                    break
                size += len(chunk)
                if size > MAX_RESPONSE_BYTES:
                    raise TimestampError(f"TSA {safe_url} reply exceeds {MAX_RESPONSE_BYTES} bytes")
                chunks.append(chunk)
            body = b"".join(chunks)
    except TimestampError:
        raise
    except urllib.error.HTTPError as e:
        snippet = e.read(200).decode("utf-8", "replace").strip().replace("\n", " ") if e.fp else ""
        raise TimestampError(f"TSA {safe_url} answered HTTP {e.code} {e.reason}: {snippet!r}") from None
    except urllib.error.URLError as e:
        reason = e.reason
        if isinstance(reason, TimeoutError) or "timed out" in str(reason):
            raise TimestampError(f"TSA {safe_url} timed out after {timeout:g}s") from None
        raise TimestampError(f"TSA {safe_url} unreachable: {reason}") from None
    except (TimeoutError, OSError) as e:
        if isinstance(e, TimeoutError) or "timed out" in str(e):
            raise TimestampError(f"TSA {safe_url} timed out after {timeout:g}s") from None
        raise TimestampError(f"TSA {safe_url} connection failed: {e}") from None
    rtt = time.perf_counter() - t0

    try:
        resp = parse_response(body)
    except TimestampMalformed as e:
        raise TimestampError(
            f"TSA {safe_url} sent {len(body)} bytes of Content-Type {ctype or 'none'!r} that are "
            f"not a time-stamp reply: {e}"
        ) from None
    if resp.status != PKIStatus.GRANTED:
        raise TimestampError(f"TSA {safe_url} refused the time-stamp: {status_text(resp)}")
    try:
        ti = resp.tst_info
        imprint = ti.message_imprint
    except ValueError as e:
        raise TimestampError(f"TSA {safe_url} granted but sent no readable token: {short_error(e)}") from None
    if ti.nonce != req.nonce:
        raise TimestampError(
            f"TSA {safe_url} reply nonce {ti.nonce} does not match the request's {req.nonce} "
            "(replayed or misrouted reply)"
        )
    if imprint.hash_algorithm != SHA256_OID or imprint.message != digest:
        raise TimestampError(
            f"TSA {safe_url} time-stamped the wrong data: imprint {imprint.message.hex()} "
            f"({imprint.hash_algorithm.dotted_string}), expected SHA-256 {digest.hex()}"
        )
    try:
        info = verify_timestamp(body, digest, trust_anchors, nonce=req.nonce if trust_anchors else None)
    except (TimestampVerificationError, TimestampMalformed) as e:
        raise TimestampError(f"TSA {safe_url}: {e}") from None
    now = dt.datetime.now(dt.UTC)
    if abs(info.gen_time - now) > max_clock_skew:
        raise TimestampError(
            f"TSA {safe_url} genTime {info.gen_time.isoformat()} is more than {max_clock_skew} "
            f"away from this host's clock ({now.isoformat()})"
        )
    return TimestampResult(response_der=body, info=info, round_trip_seconds=rtt, chain_verified=info.chain_verified)


