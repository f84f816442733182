"""DER reading for the time-stamp checks (publish/evidence/der.py): malformed input raises ValueError."""

from __future__ import annotations

import pytest
from ccwatch.publish.evidence.der import children, decode_oid, sort_token_certificates, tlv


def test_short_and_long_lengths():
    assert tlv(b"\x04\x03abc", 0) == (0x04, 2, 5)
    long = b"\x04\x81\x80" + b"x" * 128
    assert tlv(long, 0) == (0x04, 3, 131)


@pytest.mark.parametrize("buf", [b"\x04", b"\x04\x05abc", b"\x04\x80", b"\x04\x85" + b"\0" * 5, b"\x04\x82\x01"])
def test_truncated_or_unsupported_lengths_raise(buf):
    with pytest.raises(ValueError):
        tlv(buf, 0)


def test_children_of_a_sequence_and_a_child_running_past_its_parent():
    seq = b"\x30\x06\x02\x01\x05\x02\x01\x07"
    _, s, e = tlv(seq, 0)
    assert [(t, cs, ce) for t, _, cs, ce in children(seq, s, e)] == [(0x02, 4, 5), (0x02, 7, 8)]
    with pytest.raises(ValueError):
        children(b"\x30\x03\x02\x05\x01\x02\x03\x04\x05", 2, 5)


def test_decode_oid():
    assert decode_oid(bytes.fromhex("2a864886f70d010904")) == "1.2.840.113549.1.9.4"  # messageDigest
    assert decode_oid(bytes.fromhex("608648016503040201")) == "2.16.840.1.101.3.4.2.1"  # SHA-256
    with pytest.raises(ValueError):
        decode_oid(b"")


def test_a_reply_without_a_token_is_left_alone():
    rejection = b"\x30\x05\x30\x03\x02\x01\x02"  # TimeStampResp { status { rejection } }
    assert sort_token_certificates(rejection) == rejection
