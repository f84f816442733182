"""The fast evidence writer (issue #7) writes exactly what the straightforward one did.

- jsonfast.dumps == json.dumps(indent=2, ensure_ascii=False, default=str) on awkward values;
- tarstream headers == tarfile's, crc32_combine == zlib over the concatenation;
- the OSCAL document built as dicts == the trestle-model document, byte for byte, and trestle
  validates it;
- write_evidence: SHA256SUMS / manifest.json equal what archive.write_sums / write_manifest give
  for the same folder; the archive is a valid tar.gz whose uncompressed tar equals the one
  tarfile writes for the folder, and equals (compressed bytes too) archive.build_archive of the
  folder; folder names where one is a prefix of another (``f``, ``f-2``: ``-`` sorts before ``/``)
  keep tar order.
"""

from __future__ import annotations

import calendar
import datetime as dt
import decimal
import gzip
import io
import json
import os
import shutil
import tarfile
import uuid
import zlib

import pytest
from ccwatch.publish import oscal
from ccwatch.publish.evidence import archive, folder, jsonfast, tarstream
from ccwatch.publish.evidence.verify import verify_archive
from ccwatch.publish.evidence.write import write_evidence
from trestle.oscal.assessment_results import AssessmentResults

from tests.helpers import oscal_reference as reference
from tests.helpers import outputs_world as D

AWKWARD = [
    {"f": [1.5, 1e16, 1e-7, -0.0, 0.1, 123456789.0, float("nan"), float("inf"), float("-inf")]},
    {"t": dt.datetime(2026, 1, 2, 3, 4, 5), "d": dt.date(2026, 1, 2), "dec": decimal.Decimal("1.10"),
     "u": uuid.UUID(int=7), "b": b"x", "s": {1}, "td": dt.timedelta(seconds=5)},
    {1: "int key", None: 2}, 2 ** 70, -(2 ** 63), 2 ** 64 - 1,
    {"s": "".join(chr(i) for i in range(0x30)) + "\x7f\u2028\u2029\ufeff é 😀 </script> \\ \""},
    [[], {}, [[]], [{}]], True, None, "", {"nested": {"a": [{"b": [1, {"c": None}]}]}},
]


@pytest.mark.parametrize("value", AWKWARD, ids=range(len(AWKWARD)))
def test_fast_json_equals_json_module(value):
    assert jsonfast.dumps(jsonfast.wrap_floats(value)) == jsonfast.reference_dumps(value)


def test_fast_json_lone_surrogate_fails_like_before():
    with pytest.raises(UnicodeEncodeError):
        jsonfast.reference_dumps("\ud800")
    with pytest.raises(UnicodeEncodeError):
        jsonfast.dumps({"x": "\ud800"})


def test_loads_marks_every_float():
    text = '{"a": [1.0, 2.50, 1E400, -1e-400, NaN, -Infinity, 3], "b": {"c": 0.1}}'
    parsed = jsonfast.loads(text)
    assert all(isinstance(v, jsonfast.JFloat) for v in parsed["a"][:6]) and type(parsed["a"][6]) is int
    assert jsonfast.dumps(parsed) == jsonfast.reference_dumps(json.loads(text))


@pytest.mark.parametrize("text", ['{"a": [1.0, 1e16, NaN, 2]}', ' [ "\\u2028", {"k": -0.0, "k": 1} ] \n', '"x"',
                                  '\ufeff{"a": 1}', '{"a": 1} x', '', '{"a": 1', b'{"a": 1.5}', '123456789012345678901234'])
def test_loads_with_the_shared_decoder_equals_json_loads(text):
    """jsonfast.loads keeps one decoder (issue #15): the same values, float types, and the same errors as
    json.loads with the hooks, BOM and trailing garbage included."""
    def ref():
        return json.loads(text, parse_float=jsonfast.JFloat, parse_constant=jsonfast._constant)
    try:
        want = ref()
    except json.JSONDecodeError as exc:
        with pytest.raises(json.JSONDecodeError) as got:
            jsonfast.loads(text)
        assert str(got.value) == str(exc)
        return
    got = jsonfast.loads(text)
    assert repr(got) == repr(want) and jsonfast.dumps(got) == jsonfast.dumps(want)


def test_deflater_add_equals_header_data_padding():
    """Deflater.add hands header, data and padding over at once (issue #15): the same tar bytes."""
    out_a, out_b = io.BytesIO(), io.BytesIO()
    a, b = tarstream.Deflater(out_a), tarstream.Deflater(out_b)
    for i, size in enumerate((0, 1, 511, 512, 513, 5000, tarstream.CHUNK + 3)):
        data = os.urandom(size)
        a.add(f"d/f{i}", data, 1795000000)
        b.write(tarstream.header(f"d/f{i}", size, 1795000000, False))
        b.write(data)
        b.write(tarstream.padding(size))
        assert a.offset == b.offset
    a.close(final=True)
    b.close(final=True)
    assert (a.crc, a.length) == (b.crc, b.length) and out_a.getvalue() == out_b.getvalue()


@pytest.mark.parametrize("name", ["2026-11-25", "2026-11-25/changes/acme__r__pr-1/change.json", "x" * 99,
                                  "x" * 100, "x" * 101, "é/a", "2026-11-25/changes/" + "a" * 90 + "/pull.json"])
def test_tar_headers_equal_tarfile(name):
    for is_dir, size in ((True, 0), (False, 0), (False, 1), (False, 513), (False, 10 ** 9)):
        assert tarstream.header(name, size, 1795000000, is_dir) == tarstream._slow_header(name, size, 1795000000,
                                                                                          is_dir)


def test_crc32_combine():
    for a, b in ((b"", b"x"), (b"abc", b""), (os.urandom(1000), os.urandom(70000))):
        assert tarstream.crc32_combine(zlib.crc32(a), zlib.crc32(b), len(b)) == zlib.crc32(a + b)


# --- OSCAL -------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def warehouse():
    return D.build()


@pytest.mark.parametrize("chunk", [1, 2, 5000])
def test_oscal_fast_path_equals_trestle_model(warehouse, chunk):
    s = D.settings()
    model = reference.build_assessment_results(warehouse, s, D.AS_OF)
    buf = io.BytesIO()
    oscal.stream_assessment_results(warehouse, s, D.AS_OF, None, buf.write, chunk=chunk)
    assert buf.getvalue() == reference.oscal_bytes(model)
    assert b'"findings"' in buf.getvalue() and b'"back-matter"' in buf.getvalue()


def test_oscal_fast_output_validates_with_trestle(warehouse, tmp_path):
    path = tmp_path / oscal.FILE_NAME
    sha, size = oscal.write_assessment_results(path, warehouse, D.settings(), D.AS_OF, {"acme/payments-api": "x"})
    again = AssessmentResults.oscal_read(path)
    assert isinstance(again, AssessmentResults) and size == path.stat().st_size
    assert reference.oscal_bytes(again) == path.read_bytes()
    hrefs = {r.href for o in again.results[0].observations for r in o.relevant_evidence}
    assert "changes/x/" in hrefs


# --- the folder and the archive ---------------------------------------------------------------

def _reference_tar(directory, prefix: str, as_of) -> bytes:
    """The uncompressed tar the previous archive.build_archive wrote (tarfile, PAX, sorted members)."""
    mtime = calendar.timegm(as_of.astimezone(dt.UTC).timetuple())
    dirs = sorted({p.relative_to(directory).as_posix() for p in directory.rglob("*") if p.is_dir()})
    entries = sorted([(d, True) for d in dirs] + [(f, False) for f in archive.list_files(directory)])
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for rel, is_dir in [("", True)] + entries:
            info = tarfile.TarInfo(f"{prefix}/{rel}" if rel else prefix)
            info.mtime, info.uid, info.gid, info.uname, info.gname = mtime, 0, 0, "", ""
            if is_dir:
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
            else:
                data = (directory / rel).read_bytes()
                info.type, info.mode, info.size = tarfile.REGTYPE, 0o644, len(data)
                tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def _check(home, tmp_path):
    ev = write_evidence(D.build(), D.settings(), D.AS_OF, home, [{"success": True, "x": 1.5}], "<html></html>",
                        {"github": "https://user:pw@api.github.com/?t=1"})
    folder, day = ev.directory, ev.directory.name
    assert verify_archive(ev.archive) == [] and verify_archive(folder) == []
    assert ev.files == len(archive.list_files(folder))
    copy = tmp_path / "copy"
    shutil.copytree(folder, copy)
    archive.write_sums(copy)
    assert (copy / archive.SUMS).read_bytes() == (folder / archive.SUMS).read_bytes()
    header = {k: v for k, v in json.loads((folder / archive.MANIFEST).read_text()).items() if k != "files"}
    archive.write_manifest(copy, header)
    assert (copy / archive.MANIFEST).read_bytes() == (folder / archive.MANIFEST).read_bytes()
    data = ev.archive.read_bytes()
    assert gzip.decompress(data) == _reference_tar(folder, day, D.AS_OF)
    rebuilt = tmp_path / "rebuilt.tar.gz"
    archive.build_archive(folder, day, D.AS_OF, rebuilt)
    assert rebuilt.read_bytes() == data, "the archive is a function of the folder's bytes and T"
    with tarfile.open(ev.archive, "r:gz") as tar:
        assert tar.getnames()[0] == day
    assert not [p for p in (home / "evidence").iterdir() if p.name.startswith(".")], "no temp or part files left"
    return ev


def test_evidence_folder_manifest_and_archive_equal_the_reference(tmp_path):
    ev = _check(tmp_path / "home", tmp_path)
    assert ev.files > 20
    assert json.loads((ev.directory / "gx_validation.json").read_text())[0]["x"] == 1.5


def test_prefix_folder_names_keep_tar_order(tmp_path, monkeypatch):
    """Every change folder named "f" (then "f-2", "f-3", ...): "changes/f" sorts before "changes/f-2" but its
    files ("changes/f/...") after all of "changes/f-2/..." ("-" < "/")."""
    monkeypatch.setattr(folder, "change_folder", lambda cid: "f")  # the folder names of write_tree
    ev = _check(tmp_path / "home", tmp_path)
    names = [n for n in tarfile.open(ev.archive, "r:gz").getnames() if "/changes/" in n]
    assert names.index(f"{ev.directory.name}/changes/f") < names.index(f"{ev.directory.name}/changes/f-2")
    assert names.index(f"{ev.directory.name}/changes/f/change.json") > names.index(
        f"{ev.directory.name}/changes/f-2/change.json")


def test_rerun_gets_a_numbered_identical_archive(tmp_path):
    """Same data and the same wall clock (pinned: manifest.json's generated_at differs per run by design)."""
    home = tmp_path / "home"
    args = (D.settings(), D.AS_OF, home, [], "<html></html>", {})
    first = write_evidence(D.build(), *args, generated_at="2026-11-25T02:00:00.000000Z")
    second = write_evidence(D.build(), *args, generated_at="2026-11-25T02:00:00.000000Z")
    assert second.numbered and second.archive != first.archive
    assert second.archive.read_bytes() == first.archive.read_bytes()


@pytest.mark.parametrize("parts", [("subject", "acme/r#1"), ("observation", "2026-11-25T00:00:00Z", "é😀/x@y", "CC8.1-01"),
                                   ("result",), ("finding", "", "\x1f")])
def test_fast_uuid5_equals_uuid_module(parts):
    assert oscal.oscal_uuid(*parts) == str(uuid.uuid5(oscal.UUID_NAMESPACE, "\x1f".join(parts)))
