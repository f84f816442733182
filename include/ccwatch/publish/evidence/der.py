"""Reading DER (ASN.1 distinguished encoding) byte by byte, for the RFC 3161 time-stamp checks of
``timestamp``: the few structures rfc3161-client does not expose (the token's signed attributes,
the order of its certificate SET).  Pure functions over bytes; every malformed input raises
``ValueError`` (the caller turns it into its own error).
"""

from __future__ import annotations


def tlv(buf: bytes, pos: int) -> tuple[int, int, int]:
    """(tag, content_start, content_end) of the DER TLV at pos. Raises ValueError on nonsense."""
    if pos + 2 > len(buf):
        raise ValueError("truncated")
    tag, ln = buf[pos], buf[pos + 1]
    if ln < 0x80:
        start, length = pos + 2, ln
    else:
        n = ln & 0x7F
        if n == 0 or n > 4:
            raise ValueError("unsupported length")
        start, length = pos + 2 + n, int.from_bytes(buf[pos + 2 : pos + 2 + n], "big")
    if start + length > len(buf):
        raise ValueError("truncated")
    return tag, start, start + length


def sort_token_certificates(resp: bytes) -> bytes:
    """Return ``resp`` with SignedData.certificates in DER SET OF order.

    Why: ``openssl ts -reply`` (and other OpenSSL-based TSAs) write the certificates in
    insertion order (signer first, then the chain). DER requires a SET OF sorted by encoding,
    and rfc3161-client's parser (rust-asn1) rejects an unsorted set with
    ``ParseError { kind: InvalidSetOrdering, ... SignedData::certificates }``. The field is
    outside the CMS signature, so reordering it changes nothing that is signed; the total
    length is unchanged so no outer length is touched. Used only on the in-memory copy that is
    handed to rfc3161-client; the stored .tsr stays byte-for-byte what the TSA sent.
    """
    # TimeStampResp SEQUENCE { status SEQUENCE, timeStampToken ContentInfo OPTIONAL }
    _, s, e = tlv(resp, 0)
    _, _, p = tlv(resp, s)  # skip status
    if p >= e:
        return resp  # no token (rejection)
    _, ci_s, _ = tlv(resp, p)  # ContentInfo SEQUENCE
    _, _, p = tlv(resp, ci_s)  # contentType OID
    _, x_s, _ = tlv(resp, p)  # [0] EXPLICIT
    _, sd_s, sd_e = tlv(resp, x_s)  # SignedData SEQUENCE
    p = sd_s
    for _ in range(3):  # version, digestAlgorithms, encapContentInfo
        _, _, p = tlv(resp, p)
    if p >= sd_e or resp[p] != 0xA0:  # certificates [0] IMPLICIT absent
        return resp
    _, c_s, c_e = tlv(resp, p)
    items, q = [], c_s
    while q < c_e:
        _, _, end = tlv(resp, q)
        items.append(resp[q:end])
        q = end
    ordered = sorted(items)
    if ordered == items:
        return resp
    return resp[:c_s] + b"".join(ordered) + resp[c_e:]


def children(buf: bytes, start: int, end: int) -> list[tuple[int, int, int, int]]:
    """(tag, tlv_start, content_start, content_end) of each TLV in buf[start:end]."""
    out, pos = [], start
    while pos < end:
        tag, cs, ce = tlv(buf, pos)
        if ce > end:
            raise ValueError("truncated")
        out.append((tag, pos, cs, ce))
        pos = ce
    return out


def decode_oid(body: bytes) -> str:
    if not body:
        raise ValueError("empty OID")
    first, parts, n = body[0], [], 0
    parts += [min(first // 40, 2), first - 40 * min(first // 40, 2)]
    for b in body[1:]:
        n = (n << 7) | (b & 0x7F)
        if not b & 0x80:
            parts.append(n)
            n = 0
    return ".".join(str(x) for x in parts)
