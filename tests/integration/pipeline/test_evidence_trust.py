"""Evidence an auditor can trust (CONTROLS.md r2), on real demo archives of two consecutive dates.

The whole pipeline runs in process against the API double (tests/helpers/harness.py), signed with
an Ed25519 key and time-stamped by a real RFC 3161 TSA on loopback (tests/helpers/tsa.py:
``openssl ts -reply`` behind a small HTTP server, a test CA made now).  Then the forgery of issue
#13: every ``fail`` row of control_results.csv flipped to ``pass``, SHA256SUMS and manifest.json
recomputed, the archive rebuilt byte-reproducibly.  ``sha256sum -c`` and a hash-only verify accept
it; ``verify --public-key`` (the signature) and ``verify --chain`` (the next day's link) do not.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
from ccwatch.common.errors import StageError
from ccwatch.common.times import parse_as_of
from ccwatch.publish.evidence import signing
from ccwatch.publish.evidence.archive import build_archive
from ccwatch.publish.evidence.chain import verify_chain
from ccwatch.publish.evidence.verify import verify
from ccwatch.sandbox import SandboxServer
from ccwatch.settings import load_settings
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from tests.helpers.harness import query, run_pipeline
from tests.helpers.paths import CONFIG, DEMO_SCENARIO, ROOT
from tests.helpers.tsa import LocalTSA

DAYS = ("2026-11-25", "2026-11-26")
SCENARIO = json.loads(DEMO_SCENARIO.read_text(encoding="utf-8"))


def signed_config(tmp: Path, tsa_url: str | None, signing: bool = True) -> Path:
    """The demo config plus the (r2) evidence keys, as an operator would write them."""
    extra = "\nevidence:\n" + ("  signing_conn_id: ccwatch_signing\n" if signing else "")
    extra += f"  timestamp_url: {tsa_url}\n" if tsa_url else ""
    path = tmp / "ccwatch.yaml"
    text = CONFIG.read_text(encoding="utf-8")
    assert "\nevidence:" not in text
    path.write_text(text + (extra if signing or tsa_url else ""), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def tsa(tmp_path_factory):
    with LocalTSA(tmp_path_factory.mktemp("tsa"), with_intermediate=True) as server:
        yield server


@pytest.fixture(scope="module")
def key():
    return ed25519.Ed25519PrivateKey.generate()


@pytest.fixture(scope="module")
def two_days(tmp_path_factory, tsa, key):
    tmp = tmp_path_factory.mktemp("trust")
    settings = load_settings(signed_config(tmp, tsa.url))
    home = tmp / "home"
    runs = []
    with SandboxServer(SCENARIO) as server:
        for day in (*DAYS, DAYS[1]):  # two nights, then a rerun of the second (a numbered archive)
            run = run_pipeline(settings, server, parse_as_of(day), home, signing_key=key,
                               run_info={"dag_id": "ccwatch_nightly", "run_id": f"scheduled__{day}", "try_number": 1})
            assert run.error is None, f"{run.failed_stage}: {run.error}"
            runs.append(run)
        messages = list(server.slack_messages)
    pub = tmp / "ccwatch-signing.pub.pem"
    pub.write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM,
                                                  serialization.PublicFormat.SubjectPublicKeyInfo))
    return {"home": home, "runs": runs, "messages": messages, "pub": pub, "tmp": tmp, "settings": settings}


def _manifest(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def test_two_days_are_signed_time_stamped_and_chained(two_days, tsa, key):
    ev = two_days["home"] / "evidence"
    m1 = _manifest(ev / DAYS[0] / "manifest.json")
    with tarfile.open(ev / f"ccwatch-evidence-{DAYS[1]}.tar.gz") as tar:
        m2 = json.loads(tar.extractfile(f"{DAYS[1]}/manifest.json").read())
    assert m1["previous"] is None
    sha1 = hashlib.sha256((ev / DAYS[0] / "manifest.json").read_bytes()).hexdigest()
    assert m2["previous"] == {"date": DAYS[0], "sha256": sha1, "archive": f"ccwatch-evidence-{DAYS[0]}.tar.gz"}
    for m in (m1, m2):
        assert m["signature"]["status"] == "signed"
        assert m["signature"]["public_key_fingerprint"] == signing.public_key_fingerprint(key)
        assert m["timestamp"]["status"] == "requested" and m["timestamp"]["tsa_url"] == tsa.url
        assert m["run"]["dag_id"] == "ccwatch_nightly" and m["run"]["try_number"] == 1
        assert m["fetched"]["earliest"] <= m["fetched"]["latest"]
        assert m["config"]["path"] == "config/ccwatch.yaml"
    for day in DAYS:
        assert (ev / day / "config" / "ccwatch.yaml").read_bytes() == (two_days["tmp"] / "ccwatch.yaml").read_bytes()
        with tarfile.open(ev / f"ccwatch-evidence-{day}.tar.gz") as tar:
            names = tar.getnames()
        assert f"{day}/manifest.json.sig" in names and f"{day}/manifest.json.tsr" in names
        report = verify(ev / f"ccwatch-evidence-{day}.tar.gz", signing.load_ed25519_public_key(two_days["pub"]),
                        _anchors(tsa))
        assert report.exit_code == 0, report.lines()
        assert any("signature: OK" in n for n in report.notes)
        assert any("chain verified against --tsa-ca" in n for n in report.notes)
    reports, chain = verify_chain(ev, signing.load_ed25519_public_key(two_days["pub"]))
    assert [r.exit_code for r in reports] == [0, 0, 0] and chain.exit_code == 0, chain.lines()
    m3 = _manifest(ev / DAYS[1] / "manifest.json")  # the rerun: its folder holds the latest run
    assert m3["previous"] == m2["previous"] if "previous" in m3 else False
    assert sum("previous -> " in n and "OK" in n for n in chain.notes) == 2


def _anchors(tsa):
    from ccwatch.publish.evidence.timestamp import load_trust_anchors

    return load_trust_anchors(tsa.pki.root_pem_path)


def test_evidence_archives_table_records_both_digests(two_days):
    rows = query(two_days["home"], "SELECT CAST(as_of AS DATE), path, sha256, manifest_sha256, signed, "
                                   "previous_manifest_sha256 FROM evidence_archives ORDER BY as_of, generated_at")
    assert [str(r[0]) for r in rows] == [*DAYS, DAYS[1]]
    assert Path(rows[2][1]).name == f"ccwatch-evidence-{DAYS[1]}.1.tar.gz" and rows[2][5] == rows[1][5]
    for (day, path, sha, msha, signed, _prev), run in zip(rows, two_days["runs"], strict=True):
        assert Path(path).name.startswith(f"ccwatch-evidence-{day}.") and signed is True
        assert sha == hashlib.sha256(Path(path).read_bytes()).hexdigest() == run.evidence["sha256"]
        assert msha == run.evidence["manifest_sha256"]
    assert rows[0][5] is None and rows[1][5] == rows[0][3]


def test_every_night_slack_carries_the_digests(two_days):
    """Day 1 alerts its new failures, day 2 its resolutions, the rerun of day 2 has no news and posts
    one line: every message carries both digests."""
    messages = two_days["messages"]
    assert len(messages) == 3
    for msg, run in zip(messages, two_days["runs"], strict=True):
        text = json.dumps(msg)
        assert run.evidence["sha256"] in text and run.evidence["manifest_sha256"] in text
    assert "new CC8.1 control failure" in messages[0]["text"]
    assert messages[2]["text"] == (f"ccwatch {DAYS[1]}: no new failures; archive ccwatch-evidence-{DAYS[1]}.1.tar.gz "
                                   f"sha256 {two_days['runs'][2].evidence['sha256']}, manifest sha256 "
                                   f"{two_days['runs'][2].evidence['manifest_sha256']}")


def _forge(archive: Path, out_dir: Path, drop_timestamp: bool = False) -> tuple[Path, Path]:
    """Issue #13's forgery: every fail row of control_results.csv -> pass, SHA256SUMS and manifest.json
    recomputed, the archive rebuilt (reproducibly) under the original name in a copy of the folder."""
    day = archive.name[len("ccwatch-evidence-"):len("ccwatch-evidence-") + 10]
    work = out_dir / "unpacked"
    with tarfile.open(archive) as tar:
        tar.extractall(work, filter="data")
    folder = work / day
    csv = folder / "control_results.csv"
    lines = csv.read_text(encoding="utf-8").splitlines(keepends=True)
    flipped = [ln.replace(",fail,", ",pass,", 1) if ",fail," in ln else ln for ln in lines]
    assert sum(",fail," in ln for ln in lines) >= 40, "the demo has its planted failures"
    csv.write_text("".join(flipped), encoding="utf-8")
    files = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
    sums = "".join(f"{hashlib.sha256((folder / f).read_bytes()).hexdigest()}  {f}\n" for f in files
                   if f not in ("SHA256SUMS", "manifest.json", "manifest.json.sig", "manifest.json.tsr"))
    (folder / "SHA256SUMS").write_text(sums, encoding="utf-8")
    m = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    if drop_timestamp:  # a forger who knows the time-stamp would betray him
        (folder / "manifest.json.tsr").unlink()
        m["timestamp"] = {"status": "none"}
    for f in m["files"]:
        data = (folder / f["path"]).read_bytes()
        f["sha256"], f["size"] = hashlib.sha256(data).hexdigest(), len(data)
    (folder / "manifest.json").write_text(json.dumps(m, indent=2, sort_keys=True, ensure_ascii=False) + "\n",
                                          encoding="utf-8")
    forged = out_dir / archive.name
    build_archive(folder, day, parse_as_of(day), forged)
    return forged, folder


def test_the_forgery_of_issue_13_is_caught_by_signature_and_chain(two_days, tmp_path):
    ev = two_days["home"] / "evidence"
    copy = tmp_path / "evidence"
    copy.mkdir()
    for day in DAYS:
        shutil.copy2(ev / f"ccwatch-evidence-{day}.tar.gz", copy)
    # the naive forgery keeps manifest.json.tsr, whose imprint is the genuine manifest's: caught by any verify
    naive, _ = _forge(copy / f"ccwatch-evidence-{DAYS[0]}.tar.gz", tmp_path / "naive")
    assert any(p.startswith("time-stamp: token is over SHA-256") for p in verify(naive).problems)
    # the careful one also drops the time-stamp and says so in the manifest
    forged, folder = _forge(copy / f"ccwatch-evidence-{DAYS[0]}.tar.gz", tmp_path / "forge", drop_timestamp=True)
    shutil.copy2(forged, copy / forged.name)
    # what the issue found: hashes alone accept it
    sums = subprocess.run(["sha256sum", "-c", "--quiet", "SHA256SUMS"], cwd=folder, capture_output=True, text=True)
    assert sums.returncode == 0, sums.stdout
    plain = verify(copy / forged.name)
    assert plain.exit_code == 0 and any("NOT verified" in n for n in plain.notes), plain.lines()
    # the signature
    cli = [sys.executable, "-m", "ccwatch", "verify"]
    env = {"PYTHONPATH": f"{ROOT / 'include'}:{ROOT / 'plugins'}", "PATH": "/usr/bin:/bin"}
    out = subprocess.run(cli + [str(copy / forged.name), "--public-key", str(two_days["pub"])],
                         capture_output=True, text=True, env=env)
    assert out.returncode == 1 and "signature" in out.stdout and "does NOT match" in out.stdout, out.stdout + out.stderr
    # the chain: day 2 names day 1's real manifest
    chain = subprocess.run(cli + ["--chain", str(copy)], capture_output=True, text=True, env=env)
    assert chain.returncode == 1 and f"{DAYS[0]} was rewritten after {DAYS[1]} was written" in chain.stdout, chain.stdout
    # stripping the signature and declaring the manifest unsigned does not help against --public-key
    m = _manifest(folder / "manifest.json")
    m["signature"] = {"status": "unsigned"}
    (folder / "manifest.json").write_text(json.dumps(m, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    (folder / "manifest.json.sig").unlink()
    stripped = verify(folder, signing.load_ed25519_public_key(two_days["pub"]))
    assert stripped.exit_code == 1 and any("not signed: a public key was given" in p for p in stripped.problems)
    # a signed manifest whose .sig was removed is a failure even without the key
    genuine = tmp_path / "genuine"
    with tarfile.open(copy / f"ccwatch-evidence-{DAYS[1]}.tar.gz") as tar:
        tar.extractall(genuine, filter="data")
    (genuine / DAYS[1] / "manifest.json.sig").unlink()
    assert any(p.startswith("missing: manifest.json.sig") for p in verify(genuine / DAYS[1]).problems)


def test_a_failing_tsa_fails_the_run_and_publishes_nothing(tmp_path, tsa, key):
    settings = load_settings(signed_config(tmp_path, tsa.url))
    home = tmp_path / "home"
    with SandboxServer(SCENARIO) as server:
        tsa.mode = "http500"
        try:
            run = run_pipeline(settings, server, parse_as_of(DAYS[0]), home, signing_key=key)
        finally:
            tsa.mode = "ok"
        messages = list(server.slack_messages)
    assert run.failed_stage == "write_evidence" and isinstance(run.error, StageError)
    assert f"TSA {tsa.url} answered HTTP 500" in str(run.error) and "fail closed" in str(run.error)
    assert not list((home / "evidence").glob("*.tar.gz")) and not (home / "evidence" / DAYS[0]).exists()
    assert query(home, "SELECT count(*) FROM evidence_archives") == [(0,)]
    assert messages == []


def test_an_unsigned_run_says_so(tmp_path):
    settings = load_settings(CONFIG)
    assert settings.evidence.signing_conn_id is None
    home = tmp_path / "home"
    with SandboxServer(SCENARIO) as server:
        run = run_pipeline(settings, server, parse_as_of(DAYS[0]), home)
        messages = list(server.slack_messages)
    assert run.error is None
    folder = Path(run.evidence["directory"])
    assert _manifest(folder / "manifest.json")["signature"]["status"] == "unsigned"
    assert "UNSIGNED: this evidence is not signed" in (folder / "README.txt").read_text()
    assert "Evidence manifest <b>unsigned</b>" in (folder / "report.html").read_text()
    assert "(unsigned)" in json.dumps(messages)
    assert not (folder / "manifest.json.sig").exists()


def test_signing_configured_without_a_key_refuses(tmp_path):
    settings = load_settings(signed_config(tmp_path, None))
    with SandboxServer(SCENARIO) as server:
        run = run_pipeline(settings, server, parse_as_of(DAYS[0]), tmp_path / "home")
    assert run.failed_stage == "write_evidence" and "refusing to write unsigned evidence" in str(run.error)
