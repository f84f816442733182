"""manifest.json.sig and manifest.json.tsr as an auditor checks them: with openssl, and the fail-closed TSA client.

The TSA is real (tests/helpers/tsa.py: ``openssl ts -reply`` on loopback, a test CA made now).
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from dataclasses import replace

import pytest
from ccwatch.common.errors import StageError
from ccwatch.publish.evidence import signing, timestamp, tsa_client
from ccwatch.publish.evidence.verify import verify
from ccwatch.publish.evidence.write import write_evidence
from ccwatch.settings import EvidenceConfig
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from tests.helpers import outputs_world as D
from tests.helpers.tsa import LocalTSA

OPENSSL = shutil.which("openssl")
pytestmark = pytest.mark.skipif(OPENSSL is None, reason="the openssl CLI is needed (CI installs it)")


@pytest.fixture(scope="module")
def tsa(tmp_path_factory):
    with LocalTSA(tmp_path_factory.mktemp("tsa")) as server:
        yield server


@pytest.fixture(scope="module")
def signed(tmp_path_factory, tsa):
    key = ed25519.Ed25519PrivateKey.generate()
    tmp = tmp_path_factory.mktemp("signed")
    settings = replace(D.settings(), evidence=EvidenceConfig(signing_conn_id="ccwatch_signing", timestamp_url=tsa.url))
    res = write_evidence(D.build(), settings, D.AS_OF, tmp / "home", D.gx_results(), "<html></html>\n", {},
                         signing_key=key)
    pub = tmp / "pub.pem"
    pub.write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM,
                                                  serialization.PublicFormat.SubjectPublicKeyInfo))
    return res, key, pub


def _run(*args, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([OPENSSL, *map(str, args)], capture_output=True, text=True, cwd=cwd, timeout=60)


def test_the_auditor_openssl_commands_of_the_docs(signed, tsa, tmp_path):
    res, key, pub = signed
    folder = res.directory
    assert (folder / "manifest.json.sig").stat().st_size == 64
    # the fingerprint the manifest names is the one openssl computes
    der = subprocess.run([OPENSSL, "pkey", "-pubin", "-in", str(pub), "-outform", "DER"], capture_output=True,
                         check=True).stdout
    assert "sha256:" + hashlib.sha256(der).hexdigest() == signing.public_key_fingerprint(key)
    ok = _run("pkeyutl", "-verify", "-pubin", "-inkey", pub, "-rawin", "-in", "manifest.json",
              "-sigfile", "manifest.json.sig", cwd=folder)
    assert ok.returncode == 0 and "Signature Verified Successfully" in ok.stdout, ok.stdout + ok.stderr
    ts = _run("ts", "-verify", "-in", "manifest.json.tsr", "-data", "manifest.json", "-CAfile",
              tsa.pki.root_pem_path, cwd=folder)
    assert ts.returncode == 0 and "Verification: OK" in ts.stdout, ts.stdout + ts.stderr
    # a changed manifest fails both
    copy = tmp_path / "copy"
    shutil.copytree(folder, copy)
    (copy / "manifest.json").write_bytes((copy / "manifest.json").read_bytes().replace(b'"fail"', b'"pass"'))
    bad = _run("pkeyutl", "-verify", "-pubin", "-inkey", pub, "-rawin", "-in", "manifest.json",
               "-sigfile", "manifest.json.sig", cwd=copy)
    assert bad.returncode != 0
    assert _run("ts", "-verify", "-in", "manifest.json.tsr", "-data", "manifest.json", "-CAfile",
                tsa.pki.root_pem_path, cwd=copy).returncode != 0
    assert (folder / "README.txt").read_text().count("openssl") >= 3


def test_verify_with_key_and_tsa_ca(signed, tsa, tmp_path):
    res, key, pub = signed
    anchors = timestamp.load_trust_anchors(tsa.pki.root_pem_path)
    report = verify(res.archive, signing.load_ed25519_public_key(pub), anchors)
    assert report.exit_code == 0, report.lines()
    other = ed25519.Ed25519PrivateKey.generate().public_key()
    wrong = verify(res.archive, other)
    assert wrong.exit_code == 1 and any("names signing key" in p for p in wrong.problems)
    # a TSA root the auditor did not get from this TSA: the chain fails
    with LocalTSA(tmp_path / "other") as foreign:
        report = verify(res.archive, None, timestamp.load_trust_anchors(foreign.pki.root_pem_path))
    assert report.exit_code == 1 and any(p.startswith("time-stamp:") for p in report.problems)


@pytest.mark.parametrize("mode, message", [
    ("http500", "answered HTTP 500"),
    ("garbage", "not a time-stamp reply"),
    ("truncated", "not a time-stamp reply"),
    ("wrong_imprint", "time-stamped the wrong data"),
    ("wrong_nonce", "nonce"),
    ("rejection", "refused the time-stamp"),
])
def test_a_failing_tsa_fails_closed_naming_the_url(tsa, tmp_path, mode, message):
    settings = replace(D.settings(), evidence=EvidenceConfig(timestamp_url=tsa.url))
    tsa.mode = mode
    try:
        with pytest.raises(StageError) as err:
            write_evidence(D.build(), settings, D.AS_OF, tmp_path, D.gx_results(), "<html></html>\n", {})
    finally:
        tsa.mode = "ok"
    assert message in str(err.value) and tsa.url in str(err.value) and "fail closed" in str(err.value)
    assert not (tmp_path / "evidence" / "2026-11-25").exists()
    assert not list((tmp_path / "evidence").glob("*.tar.gz"))


def test_unreachable_tsa_and_credentials_never_named(tmp_path):
    with pytest.raises(timestamp.TimestampError) as err:
        tsa_client.request_timestamp(b"x", "http://user:s3cret@127.0.0.1:9/tsr?key=s3cret", timeout=2)
    assert "127.0.0.1:9/tsr" in str(err.value) and "s3cret" not in str(err.value)


def test_slow_tsa_times_out(tsa):
    tsa.mode, tsa.slow_seconds = "slow", 3.0
    try:
        with pytest.raises(timestamp.TimestampError, match="timed out"):
            tsa_client.request_timestamp(b"x", tsa.url, timeout=0.5)
    finally:
        tsa.mode = "ok"


def test_corrupted_tokens_never_traceback(signed):
    res, _, _ = signed
    der = (res.directory / "manifest.json.tsr").read_bytes()
    digest = hashlib.sha256((res.directory / "manifest.json").read_bytes()).digest()
    outcomes = {"malformed": 0, "rejected": 0, "accepted": 0}
    for pos in range(0, len(der), max(1, len(der) // 200)):
        bad = bytearray(der)
        bad[pos] ^= 0x5A
        try:
            timestamp.verify_timestamp(bytes(bad), digest, None)
            outcomes["accepted"] += 1
        except timestamp.TimestampMalformed:
            outcomes["malformed"] += 1
        except timestamp.TimestampVerificationError:
            outcomes["rejected"] += 1
    assert outcomes["malformed"] + outcomes["rejected"] > 0
    for cut in (0, 10, len(der) // 2, len(der) - 1):
        with pytest.raises((timestamp.TimestampMalformed, timestamp.TimestampVerificationError)):
            timestamp.verify_timestamp(der[:cut], digest, None)
