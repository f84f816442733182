"""write_evidence's output is byte for byte what it was before the evidence step was made faster (issue #15).

The golden digests in ``golden_write_identity.json`` were produced by main's code at 92c2b0e (before
any change of branch ``scale-evidence-fast``) with ``python tests/unit/publish/evidence/test_write_identity.py``
run against that checkout, and regenerated on branch ``scale-evidence-members`` for two intended
format changes: the OSCAL document's observations are only the results that are not a pass (moved
``oscal-assessment-results.json``, README.txt's line saying so, SHA256SUMS, manifest.json and the
archive; every other file kept its bytes), then gzip level 3 instead of 6 (moved the archives only), then
(stop 29) a repository's settings as a GraphQL node (``repository.graphql.json`` instead of ``repo.json``
in the synthetic window's repository folders, and the missing record named ``gql_repository`` instead of
``repo`` in change.json, and README.txt's line on the repository folders; every other file kept its bytes), then
(stop 31) README.txt's line on the repository folders again (``branch.json`` only when GitHub's GraphQL node
did not say whether the branch is protected; only README.txt and what lists it moved), then (2026-12-08)
the shared lists named without their nightly fetch time (``deployments.json``, ``ticket_fields.json``; the
new ``deployment_lists.json`` of the repository folders, whose ``change.json`` lists it, and the top-level
``jira_field_list.json``; README.txt and what lists the files).  They cover every file of the
dated folder (a digest of the sorted
``sha256  path`` listing, and each top-level file apart) and the archive's own SHA-256.  Any byte
that moves fails this test.  Worlds: the outputs world (hostile titles, details and a token in an
endpoint; with and without an exceptions register) and a small synthetic window of
``benchmarks/bench_evidence.py`` (dates D and D+1) with hostile values added to its payloads and
facts (floats, integers beyond 64 bits, NaN, U+2028, control characters, quotes, non-ASCII names).

What is pinned, because it is not a function of the warehouse: the wall clock (``generated_at``),
the run's host and source revision and the library versions of manifest.json.  If a change of the
evidence format is intended, regenerate the file with the script and say so in docs/OUTPUTS.md.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from tests.helpers import outputs_world as D
from tests.helpers.paths import BENCHMARKS

GOLDEN = Path(__file__).with_name("golden_write_identity.json")
GENERATED_AT = "2026-11-26T01:00:00Z"
VERSIONS = {"ccwatch": "pinned", "python": "3.11"}

# hostile values added to the synthetic window (after generation, before facts and evaluation)
HOSTILE_SQL = r"""
UPDATE raw_payloads SET payload = json_merge_patch(payload, '{"floats": [1e16, 0.1, -0.0, 2.5e-8, 1.0],
    "big": 1180591620717411303424, "neg": -9223372036854775809, "text": "line\u2028sep \"q\" \\ é 🚀 \u0007",
    "empty": {}, "none": []}') WHERE kind = 'gql_pull' AND natural_key LIKE '%#3';
UPDATE raw_payloads SET payload = '{"key": "PAY-5", "fields": {"summary": "NaN", "score": NaN, "inf": Infinity}}'
    WHERE kind = 'issue' AND natural_key = 'PAY-5';
UPDATE change_facts SET title = 'x' || chr(0) || ' <script>alert(1)</script> "q" \ é' || chr(8232) || chr(27) || '[31m',
    author = '"><svg onload=alert(5)>' WHERE number % 7 = 1;
"""


def _pin(monkeypatch) -> None:
    from ccwatch.publish.evidence import archive, provenance

    monkeypatch.setattr(provenance, "source_revision", lambda root: ("0" * 40, False, "git"))
    monkeypatch.setattr(socket, "gethostname", lambda: "golden-host")
    monkeypatch.setattr(archive, "versions", lambda: dict(VERSIONS))


def digest(result) -> dict:
    """{archive, files, listing, top}: the archive's SHA-256, the number of files, the SHA-256 of the
    sorted ``sha256  path`` listing of every file of the dated folder, and each top-level file's SHA-256."""
    root = Path(result.directory)
    lines, top = [], {}
    for dirpath, _dirs, names in os.walk(root):
        for name in names:
            path = Path(dirpath) / name
            rel = path.relative_to(root).as_posix()
            sha = hashlib.sha256(path.read_bytes()).hexdigest()
            lines.append(f"{sha}  {rel}\n")
            if "/" not in rel:
                top[rel] = sha
    lines.sort()
    return {"archive": hashlib.sha256(Path(result.archive).read_bytes()).hexdigest(), "files": len(lines),
            "listing": hashlib.sha256("".join(lines).encode("utf-8")).hexdigest(), "top": dict(sorted(top.items()))}


def _outputs(home: Path, register: bool) -> dict:
    from ccwatch.publish.evidence.write import write_evidence

    con = D.build()
    if register:
        D.set_exceptions(con)
    endpoints = {"github": f"https://x-access-token:{D.SECRET}@api.github.com/?access_token={D.SECRET}",
                 "jira": "https://acme.atlassian.net"}
    res = write_evidence(con, D.settings(), D.AS_OF, home, D.gx_results(), "<html>report</html>\n", endpoints,
                         generated_at=GENERATED_AT)
    return {"D": digest(res)}


def _synthetic(home: Path) -> dict:
    """bench_evidence's window at 40 changes (+8 the next date) over 5 repositories, made hostile."""
    if str(BENCHMARKS) not in sys.path:
        sys.path.insert(0, str(BENCHMARKS))
    import bench_evidence as be
    from ccwatch.controls.evaluate import evaluate
    from ccwatch.controls.facts import build_facts
    from ccwatch.publish.evidence.write import write_evidence
    from ccwatch.warehouse.connection import connect

    s = be.settings(5)
    con = connect(str(home / "w.duckdb"))
    out = {}
    for day, (start, end) in enumerate(((0, 40), (40, 48))):
        as_of = be.AS_OF + timedelta(days=day)
        fetched = (as_of - timedelta(hours=1)).strftime("%Y-%m-%d %H:%M:%S")
        con.execute(be.GEN.format(repos=5, n0=40, span=80 * be.DAY, start=start, end=end, fetched=fetched))
        con.execute(be.LISTS.format(fetched=fetched))
        build_facts(con, s, as_of)
        con.execute(HOSTILE_SQL)
        res = evaluate(con, s, as_of)
        ev = write_evidence(con, s, as_of, home, res.gx_results, "<html>report</html>\n", {},
                            generated_at=GENERATED_AT)
        out["D" if day == 0 else "D+1"] = digest(ev)
    con.close()
    return out


WORLDS = {"outputs": lambda home: _outputs(home, False), "outputs_register": lambda home: _outputs(home, True),
          "synthetic_hostile": _synthetic}


@pytest.mark.parametrize("world", sorted(WORLDS))
def test_write_evidence_bytes_equal_the_golden_digests(world, tmp_path, monkeypatch):
    _pin(monkeypatch)
    got = WORLDS[world](tmp_path)
    want = json.loads(GOLDEN.read_text(encoding="utf-8"))[world]
    for day in want:
        moved = sorted(n for n in set(want[day]["top"]) | set(got[day]["top"])
                       if want[day]["top"].get(n) != got[day]["top"].get(n))
        assert got[day] == want[day], f"{world} {day}: the evidence bytes moved (top-level files that differ: {moved})"


def main() -> None:  # regenerate the golden file (only for an intended format change)
    import tempfile

    class _Patch:
        def setattr(self, obj, name, value):
            setattr(obj, name, value)

    _pin(_Patch())
    out = {}
    for world, fn in sorted(WORLDS.items()):
        with tempfile.TemporaryDirectory() as home:
            out[world] = fn(Path(home))
    GOLDEN.write_text(json.dumps(out, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    print(f"wrote {GOLDEN}")


if __name__ == "__main__":
    main()


@pytest.mark.parametrize("path", ["changes/acme__r__pr-1/pull.json", 'a"b', "a\\b", "tab\there", "nul\x00", "del\x7f",
                                  "é/🚀", "line\u2028sep", "", " ", "~!#[]"])
def test_manifest_entries_quote_paths_as_json_dumps(path):
    from ccwatch.publish.evidence.folder import manifest_entry

    quoted = json.dumps(path, ensure_ascii=False)
    assert manifest_entry(path, "ab", 3) == (f'    {{\n      "path": {quoted},\n      "sha256": "ab",\n'
                                             f'      "size": 3\n    }}')
