"""A minimal, real RFC 3161 time-stamping authority on loopback, for tests.

* PKI generated with ``cryptography`` (no openssl CA config): a self-signed root CA,
  optionally an intermediate CA, and a TSA certificate with
  ``extendedKeyUsage = critical, timeStamping`` and ``keyUsage = critical, digitalSignature``
  (what both ``openssl ts -reply`` and RFC 3161 section 2.3 demand of a TSA certificate).
* Time-stamps are produced by the real ``openssl ts -reply`` (subprocess) from an
  ``openssl ts`` config file written next to the keys. The HTTP front end is
  ``http.server`` on 127.0.0.1, port chosen by the OS (port 0).
* Failure modes for fail-closed tests, switchable at run time via ``tsa.mode``:

  ``ok``             a real reply
  ``http500``        HTTP 500 with a text body
  ``garbage``        HTTP 200, Content-Type application/timestamp-reply, random bytes
  ``truncated``      a real reply cut in half
  ``wrong_imprint``  a real, *granted*, correctly signed reply whose messageImprint is not the
                     one asked for (the query's hashedMessage is altered before signing; nonce kept)
  ``wrong_nonce``    a real granted reply for the right imprint but another nonce
  ``rejection``      a real ``openssl ts`` reply with status rejection (badAlg: the
                     section used only accepts SHA-512)
  ``slow``           waits ``slow_seconds`` before answering (client timeout tests)

Usage in pytest::

    @pytest.fixture(scope="session")
    def tsa(tmp_path_factory):
        with LocalTSA(tmp_path_factory.mktemp("tsa")) as server:
            yield server          # server.url, server.pki.root_pem_path, server.mode = "garbage"

Standalone (manual / auditor demo)::

    python tsa_server.py --dir /tmp/tsa          # prints the URL; Ctrl-C stops it
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import secrets
import shutil
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

TSA_POLICY_OID = "1.2.3.4.1"  # the example OID of the openssl-ts docs; test-only, not a registered arc
MAX_QUERY_BYTES = 64 * 1024
MODES = ("ok", "http500", "garbage", "truncated", "wrong_imprint", "wrong_nonce", "rejection", "slow")


# --------------------------------------------------------------------------- test PKI

def _name(cn: str) -> x509.Name:
    return x509.Name(
        [x509.NameAttribute(NameOID.ORGANIZATION_NAME, "ccwatch tests"), x509.NameAttribute(NameOID.COMMON_NAME, cn)]
    )


def _new_key(key_type: str):
    if key_type == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    if key_type == "ec":
        return ec.generate_private_key(ec.SECP256R1())
    raise ValueError(f"key_type must be 'rsa' or 'ec', not {key_type!r}")


def _write_key(path: Path, key) -> None:
    path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    path.chmod(0o600)


@dataclass
class TestPKI:
    directory: Path
    root_cert: x509.Certificate
    tsa_cert: x509.Certificate
    intermediate_cert: x509.Certificate | None = None

    @property
    def root_pem_path(self) -> Path:  # what an auditor passes as -CAfile / --tsa-ca
        return self.directory / "ca.pem"

    @property
    def chain_pem_path(self) -> Path:  # extra certs the TSA puts into every reply (intermediates)
        return self.directory / "chain.pem"

    @property
    def tsa_cert_path(self) -> Path:
        return self.directory / "tsa.pem"

    @property
    def tsa_key_path(self) -> Path:
        return self.directory / "tsa.key.pem"


def generate_pki(
    directory: str | os.PathLike[str],
    *,
    key_type: str = "rsa",
    with_intermediate: bool = False,
    tsa_valid_for: dt.timedelta = dt.timedelta(days=365),
    name_prefix: str = "ccwatch test",
) -> TestPKI:
    """Create root CA [+ intermediate] + TSA certificate in ``directory`` (PEM files)."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    start = now - dt.timedelta(hours=1)  # tolerate small clock differences

    root_key = ec.generate_private_key(ec.SECP256R1())
    root_name = _name(f"{name_prefix} root CA")
    root = (
        x509.CertificateBuilder()
        .subject_name(root_name)
        .issuer_name(root_name)
        .public_key(root_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(now + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(root_key.public_key()), critical=False)
        .sign(root_key, hashes.SHA256())
    )
    issuer_cert, issuer_key = root, root_key
    inter = None
    if with_intermediate:
        inter_key = ec.generate_private_key(ec.SECP256R1())
        inter = (
            x509.CertificateBuilder()
            .subject_name(_name(f"{name_prefix} intermediate CA"))
            .issuer_name(root.subject)
            .public_key(inter_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(now + dt.timedelta(days=1825))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(inter_key.public_key()), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(root_key.public_key()), critical=False
            )
            .sign(root_key, hashes.SHA256())
        )
        issuer_cert, issuer_key = inter, inter_key

    tsa_key = _new_key(key_type)
    tsa = (
        x509.CertificateBuilder()
        .subject_name(_name(f"{name_prefix} TSA"))
        .issuer_name(issuer_cert.subject)
        .public_key(tsa_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(now + tsa_valid_for)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        # RFC 3161 2.3: EKU with only id-kp-timeStamping, critical.
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.TIME_STAMPING]), critical=True)
        .add_extension(
            x509.KeyUsage(True, False, False, False, False, False, False, False, False), critical=True
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(tsa_key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), critical=False
        )
        .sign(issuer_key, hashes.SHA256())
    )

    pem = serialization.Encoding.PEM
    (d / "ca.pem").write_bytes(root.public_bytes(pem))
    (d / "chain.pem").write_bytes(inter.public_bytes(pem) if inter is not None else b"")
    (d / "tsa.pem").write_bytes(tsa.public_bytes(pem))
    _write_key(d / "tsa.key.pem", tsa_key)
    # The CA keys are not needed after issuing; they are not written to disk.
    return TestPKI(d, root, tsa, inter)


def load_pki(directory: str | os.PathLike[str]) -> TestPKI:
    d = Path(directory)
    chain = (d / "chain.pem").read_bytes() if (d / "chain.pem").exists() else b""
    return TestPKI(
        d,
        x509.load_pem_x509_certificate((d / "ca.pem").read_bytes()),
        x509.load_pem_x509_certificate((d / "tsa.pem").read_bytes()),
        x509.load_pem_x509_certificate(chain) if chain.strip() else None,
    )


# --------------------------------------------------------------------------- openssl ts config

def write_ts_config(pki: TestPKI, state_dir: Path, *, include_root_in_reply: bool = False) -> Path:
    """``openssl ts -reply`` configuration. Two sections: the normal one, and one that only
    accepts SHA-512 imprints (used for the ``rejection`` mode: a real badAlg rejection).

    Replies carry the TSA certificate (when the query asks for it), the intermediate if any,
    and with ``include_root_in_reply`` also the root (some real TSAs do that; it also lets a
    test play an attacker who ships its own self-signed root inside the token)."""
    serial = state_dir / "tsaserial"
    if not serial.exists():
        serial.write_text("01\n")
    extra = pki.chain_pem_path.read_bytes() if pki.chain_pem_path.exists() else b""
    if include_root_in_reply:
        extra += pki.root_pem_path.read_bytes()
    reply_certs = state_dir / "reply_certs.pem"
    reply_certs.write_bytes(extra)

    def section(name: str, digests: str) -> str:
        lines = [
            f"[ {name} ]",
            f"serial = {serial}",
            "crypto_device = builtin",
            f"signer_cert = {pki.tsa_cert_path}",
            f"signer_key = {pki.tsa_key_path}",
            "signer_digest = sha256",
            f"default_policy = {TSA_POLICY_OID}",
            f"digests = {digests}",
            "accuracy = secs:1, millisecs:0, microsecs:0",
            "clock_precision_digits = 3",
            "ordering = no",
            "tsa_name = yes",
            "ess_cert_id_chain = no",
            "ess_cert_id_alg = sha256",  # signingCertificateV2 (RFC 5816), not the SHA-1 default
        ]
        if extra:
            lines.insert(5, f"certs = {reply_certs}")  # extra certificates put into every reply
        return "\n".join(lines) + "\n"

    cfg = state_dir / "ts.cnf"
    cfg.write_text(
        "# generated by tsa_server.py\n[ tsa ]\ndefault_tsa = tsa_default\n\n"
        + section("tsa_default", "sha256, sha384, sha512")
        + "\n"
        + section("tsa_sha512_only", "sha512")
    )
    return cfg


# --------------------------------------------------------------------------- tiny DER helpers

def _der_tlv(buf: bytes, pos: int) -> tuple[int, int, int, int]:
    """(tag, header_len, content_start, content_end) of the TLV at ``pos`` (definite lengths)."""
    tag = buf[pos]
    ln = buf[pos + 1]
    if ln < 0x80:
        hl, length = 2, ln
    else:
        n = ln & 0x7F
        hl, length = 2 + n, int.from_bytes(buf[pos + 2 : pos + 2 + n], "big")
    return tag, hl, pos + hl, pos + hl + length


def _query_offsets(query: bytes) -> tuple[tuple[int, int], tuple[int, int] | None]:
    """Locate (hashedMessage content) and (nonce content) in a DER TimeStampReq."""
    tag, _, start, end = _der_tlv(query, 0)
    if tag != 0x30:
        raise ValueError("not a SEQUENCE")
    pos = start
    _, _, _, pos = _der_tlv(query, pos)  # version INTEGER
    t, _, mi_start, mi_end = _der_tlv(query, pos)  # messageImprint SEQUENCE
    if t != 0x30:
        raise ValueError("messageImprint not a SEQUENCE")
    _, _, _, p2 = _der_tlv(query, mi_start)  # AlgorithmIdentifier
    t, _, hm_start, hm_end = _der_tlv(query, p2)  # hashedMessage OCTET STRING
    if t != 0x04:
        raise ValueError("hashedMessage not an OCTET STRING")
    pos = mi_end
    nonce = None
    while pos < end:
        t, _, c_start, c_end = _der_tlv(query, pos)
        if t == 0x02:  # nonce INTEGER (reqPolicy is an OID 0x06, certReq BOOLEAN 0x01)
            nonce = (c_start, c_end)
        pos = c_end
    return (hm_start, hm_end), nonce


def _flip(buf: bytes, span: tuple[int, int]) -> bytes:
    s, e = span
    b = bytearray(buf)
    b[e - 1] ^= 0x01  # last byte: keeps DER-minimal INTEGER encodings valid
    return bytes(b)


# --------------------------------------------------------------------------- server

@dataclass
class RequestRecord:
    mode: str
    content_type: str
    query: bytes
    status: int
    seconds: float


class LocalTSA:
    """Loopback RFC 3161 TSA backed by ``openssl ts -reply``. Context manager; ``stop()`` is idempotent."""

    def __init__(
        self,
        workdir: str | os.PathLike[str],
        *,
        pki: TestPKI | None = None,
        key_type: str = "rsa",
        with_intermediate: bool = False,
        include_root_in_reply: bool = False,
        host: str = "127.0.0.1",
        openssl: str | None = None,
        mode: str = "ok",
        slow_seconds: float = 3.0,
    ) -> None:
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.pki = pki or generate_pki(self.workdir / "pki", key_type=key_type, with_intermediate=with_intermediate)
        self.openssl = openssl or shutil.which("openssl")
        if not self.openssl:
            raise RuntimeError("the openssl CLI is required for the local TSA")
        self.config_path = write_ts_config(self.pki, self.workdir, include_root_in_reply=include_root_in_reply)
        self.host = host
        self.mode = mode
        self.slow_seconds = slow_seconds
        self.requests: list[RequestRecord] = []
        self._lock = threading.Lock()  # openssl ts -reply rewrites the serial file: one at a time
        self._stopping = threading.Event()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle
    @property
    def url(self) -> str:
        assert self._httpd is not None, "not started"
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}/tsr"

    def start(self) -> LocalTSA:
        tsa = self
        self._stopping.clear()

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, fmt, *args):  # keep pytest output clean
                pass

            def _send(self, status: int, body: bytes, ctype: str) -> None:
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", ctype)
                    self.send_header("Content-Length", str(len(body)))
                    self.send_header("Connection", "close")
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout tests)

            def do_GET(self):
                self._send(405, b"POST an application/timestamp-query\n", "text/plain")

            def do_POST(self):
                t0 = time.perf_counter()
                ctype = self.headers.get("Content-Type", "")
                try:
                    length = int(self.headers.get("Content-Length", "-1"))
                except ValueError:
                    length = -1
                if length < 0 or length > MAX_QUERY_BYTES:
                    return self._send(411 if length < 0 else 413, b"bad length\n", "text/plain")
                query = self.rfile.read(length)
                mode = tsa.mode
                status, body, out_ctype = tsa._answer(mode, ctype, query)
                tsa.requests.append(RequestRecord(mode, ctype, query, status, time.perf_counter() - t0))
                if status == -1:  # dropped (server stopping during a slow answer)
                    return
                self._send(status, body, out_ctype)

        self._httpd = ThreadingHTTPServer((self.host, 0), Handler)
        self._httpd.daemon_threads = True
        self._httpd.block_on_close = False
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="local-tsa", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> LocalTSA:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- answering
    def _answer(self, mode: str, ctype: str, query: bytes) -> tuple[int, bytes, str]:
        reply_ct = "application/timestamp-reply"
        if mode not in MODES:
            return 500, f"unknown mode {mode}\n".encode(), "text/plain"
        if mode == "http500":
            return 500, b"internal error (simulated)\n", "text/plain"
        if mode == "garbage":
            return 200, secrets.token_bytes(300), reply_ct
        if mode == "slow":
            if self._stopping.wait(self.slow_seconds):
                return -1, b"", ""
        if ctype.split(";")[0].strip().lower() != "application/timestamp-query":
            return 415, b"Content-Type must be application/timestamp-query\n", "text/plain"
        section = "tsa_default"
        try:
            if mode == "wrong_imprint":
                hm, _ = _query_offsets(query)
                query = _flip(query, hm)
            elif mode == "wrong_nonce":
                _, nonce = _query_offsets(query)
                if nonce is not None:
                    query = _flip(query, nonce)
            elif mode == "rejection":
                section = "tsa_sha512_only"
        except (ValueError, IndexError):
            return 400, b"malformed query\n", "text/plain"
        try:
            reply = self.reply(query, section=section)
        except subprocess.CalledProcessError as e:
            return 500, b"openssl ts -reply failed: " + (e.stderr or b"")[-500:], "text/plain"
        if mode == "truncated":
            reply = reply[: len(reply) // 2]
        return 200, reply, reply_ct

    def reply(self, query: bytes, *, section: str = "tsa_default") -> bytes:
        """Run ``openssl ts -reply`` on a DER query; returns the DER TimeStampResp."""
        with self._lock, tempfile.TemporaryDirectory(dir=self.workdir) as tmp:
            q, r = Path(tmp) / "q.tsq", Path(tmp) / "r.tsr"
            q.write_bytes(query)
            subprocess.run(
                [self.openssl, "ts", "-reply", "-config", str(self.config_path), "-section", section,
                 "-queryfile", str(q), "-out", str(r)],
                check=True, capture_output=True, timeout=20,
            )
            return r.read_bytes()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dir", required=True, help="state directory (PKI, ts.cnf, serial)")
    ap.add_argument("--mode", default="ok", choices=MODES)
    ap.add_argument("--key-type", default="rsa", choices=("rsa", "ec"))
    ap.add_argument("--intermediate", action="store_true")
    a = ap.parse_args()
    d = Path(a.dir)
    pki = load_pki(d / "pki") if (d / "pki" / "ca.pem").exists() else None
    with LocalTSA(d, pki=pki, key_type=a.key_type, with_intermediate=a.intermediate, mode=a.mode) as tsa:
        print(f"TSA listening on {tsa.url}  (trust anchor: {tsa.pki.root_pem_path})", flush=True)
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
