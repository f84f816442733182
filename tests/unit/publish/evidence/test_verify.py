"""verify against hostile input: every case exits 1 or 2 with a message, never a traceback, in bounded memory."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import zlib
from pathlib import Path

import pytest
from ccwatch.publish.evidence.verify import parse_manifest, verify
from ccwatch.publish.evidence.write import write_evidence

from tests.helpers import outputs_world as D
from tests.helpers.paths import ROOT

DAY = "2026-11-25"
ENV = {"PYTHONPATH": f"{ROOT / 'include'}:{ROOT / 'plugins'}", "PATH": "/usr/bin:/bin"}


@pytest.fixture(scope="module")
def genuine(tmp_path_factory):
    home = tmp_path_factory.mktemp("home")
    return write_evidence(D.build(), D.settings(), D.AS_OF, home, D.gx_results(), "<html></html>\n", {})


def _members(archive: Path) -> list[tuple[tarfile.TarInfo, bytes | None]]:
    with tarfile.open(archive) as tar:
        return [(m, tar.extractfile(m).read() if m.isfile() else None) for m in tar.getmembers()]


def _tar(path: Path, members: list[tuple[tarfile.TarInfo, bytes | None]]) -> Path:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    path.write_bytes(gzip.compress(out.getvalue()))
    return path


def _info(name: str, kind=tarfile.REGTYPE, size: int = 0, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.size, info.linkname = kind, size, link
    return info


def _with(genuine, tmp_path, extra: tarfile.TarInfo, data: bytes | None = None) -> Path:
    return _tar(tmp_path / "x.tar.gz", [*_members(genuine.archive), (extra, data)])


def _cli(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ccwatch", "verify", *map(str, args)], capture_output=True, text=True,
                          env=ENV, timeout=300)


@pytest.mark.parametrize("member, want", [
    (_info(f"{DAY}/changes/link.json", tarfile.SYMTYPE, link="/etc/passwd"), "a symbolic link"),
    (_info(f"{DAY}/changes/hard.json", tarfile.LNKTYPE, link=f"{DAY}/POLICY.md"), "a hard link"),
    (_info(f"{DAY}/dev", tarfile.CHRTYPE), "a device"),
    (_info(f"{DAY}/fifo", tarfile.FIFOTYPE), "a fifo"),
    (_info("/etc/cron.d/x", size=1), "an absolute path"),
    (_info(f"{DAY}/../../x", size=1), "a path escaping the folder"),
    (_info("other/file", size=1), "outside the evidence folder"),
    (_info(f"{DAY}/POLICY.md", size=1), "a second member of the same name"),
])
def test_hostile_archive_members_fail(genuine, tmp_path, member, want):
    data = b"x" if member.isfile() else None
    report = verify(_with(genuine, tmp_path, member, data))
    assert report.exit_code == 1 and any(want in p for p in report.problems), report.lines()


def test_cli_hostile_member_exit_1_no_traceback(genuine, tmp_path):
    out = _cli(_with(genuine, tmp_path, _info(f"{DAY}/changes/link.json", tarfile.SYMTYPE, link="/etc/passwd")))
    assert out.returncode == 1 and "symbolic link" in out.stdout and "Traceback" not in out.stderr


def test_folder_mode_catches_symlinks_and_fifos(genuine, tmp_path):
    folder = tmp_path / DAY
    shutil.copytree(genuine.directory, folder)
    assert verify(folder).exit_code == 0
    os.symlink("/etc/passwd", folder / "changes" / "passwd.json")
    os.mkfifo(folder / "pipe")
    problems = verify(folder).problems
    assert any("changes/passwd.json (a symbolic link" in p for p in problems)
    assert any("pipe (a fifo" in p for p in problems)
    (folder / "changes" / "passwd.json").unlink()
    (folder / "pipe").unlink()
    (folder / "POLICY.md").unlink()
    os.symlink("README.txt", folder / "POLICY.md")  # a listed file replaced by a link
    assert any("POLICY.md (a symbolic link" in p for p in verify(folder).problems)


def _manifest_variant(genuine, tmp_path, text: bytes) -> Path:
    members = [(m, text if m.name.endswith("/manifest.json") else d) for m, d in _members(genuine.archive)]
    for m, d in members:
        if d is not None:
            m.size = len(d)
    return _tar(tmp_path / "m.tar.gz", members)


def _files(genuine) -> list[dict]:
    return json.loads((genuine.directory / "manifest.json").read_text())["files"]


@pytest.mark.parametrize("name, make, want", [
    ("not json", lambda f: b"{not json", "is not JSON"),
    ("a list", lambda f: b"[]", "not an object"),
    ("no files", lambda f: b'{"as_of": 1}', 'no "files" list'),
    ("no path", lambda f: json.dumps({"files": [{"sha256": "0" * 64, "size": 1}]}).encode(), "has no path"),
    ("no sha256", lambda f: json.dumps({"files": [{"path": "a", "size": 1}]}).encode(), "has no sha256"),
    ("duplicate", lambda f: json.dumps({"files": [f[0], f[0]]}).encode(), "twice"),
    ("escaping", lambda f: json.dumps({"files": [dict(f[0], path="../../etc/passwd")]}).encode(), "escapes"),
    ("absolute", lambda f: json.dumps({"files": [dict(f[0], path="/etc/passwd")]}).encode(), "escapes"),
    ("bad signature block", lambda f: json.dumps({"files": f, "signature": "yes"}).encode(), "not an object"),
    ("binary", lambda f: b"\xff\xfe\x00", "is not JSON"),
    ("deep", lambda f: b"[" * 100000, "not JSON"),
])
def test_malformed_manifest_exits_2_with_a_message(genuine, tmp_path, name, make, want):
    report = verify(_manifest_variant(genuine, tmp_path, make(_files(genuine))))
    assert report.exit_code == 2 and want in report.errors[0], (name, report.lines())
    out = _cli(tmp_path / "m.tar.gz")
    assert out.returncode == 2 and want in out.stderr and "Traceback" not in out.stderr, out.stderr


def test_malformed_manifest_in_a_folder_exits_2(genuine, tmp_path):
    folder = tmp_path / DAY
    shutil.copytree(genuine.directory, folder)
    (folder / "manifest.json").write_text('{"files": {"a": 1}}')
    assert verify(folder).exit_code == 2
    (folder / "manifest.json").unlink()
    os.symlink("README.txt", folder / "manifest.json")
    assert verify(folder).exit_code == 2


def test_unreadable_archives_exit_2(tmp_path):
    cases = {"junk": b"not an archive", "truncated gzip": gzip.compress(b"x" * 5000)[:40], "empty": b""}
    for name, data in cases.items():
        (tmp_path / "a.tar.gz").write_bytes(data)
        out = _cli(tmp_path / "a.tar.gz")
        assert out.returncode == 2 and "Traceback" not in out.stderr, (name, out.stderr)


def test_a_huge_pax_header_is_refused_not_read(tmp_path):
    """tarfile reads a PAX header whole: a 64 MiB one is refused (exit 2) before it is read."""
    header = tarfile.TarInfo("x")
    header.type, header.size = tarfile.XHDTYPE, 64 << 20
    raw = header.tobuf(tarfile.USTAR_FORMAT)
    z = zlib.compressobj(9, zlib.DEFLATED, 31)
    body = z.compress(raw) + b"".join(z.compress(b"\0" * (1 << 20)) for _ in range(64)) + z.flush()
    (tmp_path / "pax.tar.gz").write_bytes(body)
    report = verify(tmp_path / "pax.tar.gz")
    assert report.exit_code == 2 and "PAX header" in report.errors[0]


def _zero_member_archive(path: Path, size: int, listed_sha: str) -> None:
    """A gzip'd tar: <day>/manifest.json listing <day>/big.bin, then big.bin = ``size`` zero bytes,
    streamed (the file is a few MB)."""
    manifest = json.dumps({"files": [{"path": "big.bin", "sha256": listed_sha, "size": size}]}).encode()
    z = zlib.compressobj(6, zlib.DEFLATED, 31)
    with path.open("wb") as out:
        for info, data in ((_info(DAY, tarfile.DIRTYPE), b""), (_info(f"{DAY}/manifest.json", size=len(manifest)),
                                                                  manifest)):
            out.write(z.compress(info.tobuf(tarfile.PAX_FORMAT) + data + b"\0" * (-len(data) % 512)))
        out.write(z.compress(_info(f"{DAY}/big.bin", size=size).tobuf(tarfile.PAX_FORMAT)))
        block = b"\0" * (1 << 20)
        for _ in range(size >> 20):
            out.write(z.compress(block))
        out.write(z.compress(b"\0" * 1024))  # end of archive
        out.write(z.flush())


def _peak_rss_mib(*args) -> tuple[int, str, int]:
    """Exit code, stdout and the peak RSS (MiB) the verify command added over the imported CLI (the
    imports alone weigh ~150 MiB and grow with the product; the member's size must not show)."""
    code = ("import resource, sys\nfrom ccwatch.cli import main\n"
            "base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\nrc = main(sys.argv[1:])\n"
            "print('PEAK', (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) // 1024, file=sys.stderr)\n"
            "sys.exit(rc)")
    out = subprocess.run([sys.executable, "-c", code, "verify", *map(str, args)], capture_output=True, text=True,
                         env=ENV, timeout=600)
    peak = int(out.stderr.rsplit("PEAK", 1)[1].split()[0])
    return out.returncode, out.stdout, peak


def test_a_large_member_is_hashed_in_bounded_memory(tmp_path):
    """768 MiB of zeros in a ~1 MB archive (2 GiB was measured the same way, but takes minutes on a
    shared CI machine): verifying adds far less memory than the member's size."""
    size = 768 << 20
    h = hashlib.sha256()
    block = b"\0" * (1 << 20)
    for _ in range(size >> 20):
        h.update(block)
    archive = tmp_path / "big.tar.gz"
    _zero_member_archive(archive, size, h.hexdigest())
    assert archive.stat().st_size < 5 << 20
    rc, out, peak = _peak_rss_mib(archive)
    assert rc == 0 and "OK" in out, out
    assert peak < 64, f"verifying a {size >> 20} MiB member added {peak} MiB of peak RSS"


def test_a_huge_manifest_is_refused_in_bounded_memory(tmp_path):
    """manifest.json itself is read with a cap (256 MiB): a 512 MiB one exits 2 without being read whole."""
    size = 512 << 20
    z = zlib.compressobj(6, zlib.DEFLATED, 31)
    archive = tmp_path / "m.tar.gz"
    with archive.open("wb") as out:
        out.write(z.compress(_info(DAY, tarfile.DIRTYPE).tobuf(tarfile.PAX_FORMAT)))
        out.write(z.compress(_info(f"{DAY}/manifest.json", size=size).tobuf(tarfile.PAX_FORMAT)))
        block = b" " * (1 << 20)
        for _ in range(size >> 20):
            out.write(z.compress(block))
        out.write(z.compress(b"\0" * 1024) + z.flush())
    rc, _, peak = _peak_rss_mib(archive)
    assert rc == 2 and peak < 700, peak


def test_parse_manifest_accepts_the_genuine_one(genuine):
    doc, listed = parse_manifest((genuine.directory / "manifest.json").read_bytes())
    assert len(listed) == len(doc["files"]) == genuine.files - 1
