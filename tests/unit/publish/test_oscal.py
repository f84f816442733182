"""OSCAL assessment-results export: valid trestle model, one observation per result that is not a
pass (every result in control_results.csv), one finding per failure, deterministic bytes, no
credentials, wired into the evidence folder."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import uuid
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
from ccwatch.publish import oscal, results
from ccwatch.publish.evidence.verify import verify_archive
from ccwatch.publish.evidence.write import write_evidence
from trestle.oscal.assessment_results import AssessmentResults

from tests.helpers import oscal_reference as reference
from tests.helpers import outputs_world as D
from tests.helpers.paths import ROOT

AS_OF_TEXT = "2026-11-25T00:00:00+00:00"
FETCHED_TEXT = "2026-11-25T00:05:00+00:00"  # every raw payload of the outputs world was fetched then


def _doc(model) -> dict:
    return json.loads(reference.oscal_bytes(model))["assessment-results"]


def _props(obj: dict) -> dict:
    return {p["name"]: p["value"] for p in obj.get("props", [])}


@pytest.fixture(scope="module")
def built():
    con = D.build()
    return con, reference.build_assessment_results(con, D.settings(), D.AS_OF)


def test_written_file_reloads_through_trestle(built, tmp_path):
    _, model = built
    path = reference.write_oscal(tmp_path / oscal.FILE_NAME, model)
    again = AssessmentResults.oscal_read(path)
    assert isinstance(again, AssessmentResults) and again == model
    assert reference.read_oscal(path) == model
    raw = json.loads(path.read_text(encoding="utf-8"))
    assert list(raw) == ["assessment-results"]
    assert AssessmentResults.model_validate(raw["assessment-results"]) == model
    assert path.read_bytes().endswith(b"}\n") and not list(tmp_path.glob(".*.tmp"))


def test_passes_every_trestle_validator(built):
    """trestle's own validators (duplicate UUIDs, references, links), as `trestle validate -f` runs them."""
    import trestle.core.validator_factory as factory  # import order matters (trestle's own cycle)
    from trestle.core.all_validator import AllValidator

    _, model = built
    assert factory.validator_factory.get_all()
    v = AllValidator()
    assert v.model_is_valid(model, quiet=True), v.error_msg()
    # subjects and back-matter resources match one to one (trestle's link check knows only uuid4 refs)
    doc = _doc(model)
    subjects = {s["subject-uuid"] for o in doc["results"][0]["observations"] for s in o["subjects"]}
    plan = doc["import-ap"]["href"][1:]
    listed = oscal.results_resource(None)["uuid"]
    assert subjects | {plan, listed} == {r["uuid"] for r in doc["back-matter"]["resources"]} and len(subjects) == 5
    uuids = [v for k, v in _walk(doc) if k == "uuid"]
    assert len(uuids) == len(set(uuids))


def test_metadata_and_result_header(built):
    _, model = built
    doc = _doc(model)
    md = doc["metadata"]
    assert md["last-modified"] == FETCHED_TEXT and md["version"] == "2026-11-25T00:00:00Z"
    assert md["oscal-version"].startswith("1.") and "2026-11-25" in md["title"]
    assert _props(md)["config-sha256"] == D.settings().sha256
    (res,) = doc["results"]
    assert res["start"] == res["end"] == FETCHED_TEXT
    selected = [c["control-id"] for c in res["reviewed-controls"]["control-selections"][0]["include-controls"]]
    assert selected == [f"CC8.1-{i:02d}" for i in range(1, 16)]  # every control of the catalogue (r2: 14, 15)
    assert _props(res)["count-fail"] == "5" and _props(res)["count-not-applicable"] == "10"


def test_times_are_when_the_data_was_fetched_not_the_as_of_time():
    """An observation was collected when its payloads were fetched (the demo evaluates 2026-11-25 with
    data fetched on 2026-12-06): start/end span the fetch times, collected is the latest."""
    con = D.build()
    con.execute("UPDATE raw_payloads SET fetched_at = TIMESTAMP '2026-12-06 03:10:00' WHERE kind = 'pull'")
    con.execute("UPDATE raw_payloads SET fetched_at = TIMESTAMP '2026-12-06 02:00:00' WHERE kind = 'repo'")
    doc = _doc(reference.build_assessment_results(con, D.settings(), D.AS_OF))
    (res,) = doc["results"]
    assert res["start"] == FETCHED_TEXT and res["end"] == "2026-12-06T03:10:00+00:00"
    assert {o["collected"] for o in res["observations"]} == {"2026-12-06T03:10:00+00:00"}
    assert doc["metadata"]["last-modified"] == "2026-12-06T03:10:00+00:00"
    assert doc["metadata"]["version"] == "2026-11-25T00:00:00Z" and "2026-11-25" in res["title"]
    streamed = bytearray()
    oscal.stream_assessment_results(con, D.settings(), D.AS_OF, None, streamed.extend)
    assert bytes(streamed) == reference.oscal_bytes(reference.build_assessment_results(con, D.settings(), D.AS_OF))


def test_import_ap_resolves_to_the_policy_resource_with_its_hash():
    """import-ap is a reference into back-matter (OSCAL's idiom for a plan that is not an OSCAL
    document): the resource names POLICY.md and, inside an evidence folder, its SHA-256."""
    con = D.build()
    doc = _doc(reference.build_assessment_results(con, D.settings(), D.AS_OF, policy_sha256="ab" * 32))
    href = doc["import-ap"]["href"]
    assert href.startswith("#")
    (plan,) = [r for r in doc["back-matter"]["resources"] if r["uuid"] == href[1:]]
    (rlink,) = plan["rlinks"]
    assert rlink["href"] == "POLICY.md" and rlink["media-type"] == "text/markdown"
    assert rlink["hashes"] == [{"algorithm": "SHA-256", "value": "ab" * 32}]
    assert "not an OSCAL" in plan["description"] and "not an OSCAL" in doc["import-ap"]["remarks"]
    no_hash = _doc(reference.build_assessment_results(con, D.settings(), D.AS_OF))
    assert "hashes" not in [r for r in no_hash["back-matter"]["resources"] if r["uuid"] == href[1:]][0]["rlinks"][0]


def test_reviewed_controls_say_what_the_control_ids_are():
    from ccwatch.controls.catalogue import CONTROL_NAMES

    (res,) = _doc(reference.build_assessment_results(D.build(), D.settings(), D.AS_OF))["results"]
    reviewed = res["reviewed-controls"]
    assert "AICPA" in reviewed["description"] and "CC8.1" in reviewed["description"]
    assert "not ids of an OSCAL catalog" in reviewed["description"]
    for cid, name in CONTROL_NAMES.items():
        assert f"{cid} {name}" in reviewed["description"]
    assert _props(reviewed)["framework"] == "AICPA TSC 2017 (points of focus revised 2022)"
    assert _props(reviewed)["criterion"] == "CC8.1"


def test_one_observation_per_result_but_pass_with_subject_props(built):
    con, model = built
    rows = [r for r in results.results(con, D.AS_OF) if r["status"] != "pass"]
    (res,) = _doc(model)["results"]
    obs = res["observations"]
    assert len(obs) == len(rows) == 18
    resources = {r["uuid"]: r for r in _doc(model)["back-matter"]["resources"]}
    seen = {}
    for o in obs:
        assert o["collected"] == FETCHED_TEXT and o["methods"] == ["TEST"]
        (subject,) = o["subjects"]
        p = _props(subject)
        key = (subject["title"], p["control-id"])
        seen[key] = (p["status"], p["repo"], o["description"])
        assert resources[subject["subject-uuid"]]["title"] == subject["title"]  # subject resolves
        assert o["uuid"] == oscal.oscal_uuid("observation", "2026-11-25T00:00:00Z", *key)
    assert seen == {(r["change_id"], r["control_id"]): (r["status"], r["repo"], r["detail"]) for r in rows}


def test_pass_results_are_counted_and_pointed_at_not_observed(built):
    """The pass results are no observations: the result counts them and its remarks name
    control_results.csv, a back-matter resource carrying the file's SHA-256 inside an evidence folder."""
    con, model = built
    rows = results.results(con, D.AS_OF)
    passes = sum(r["status"] == "pass" for r in rows)
    (res,) = _doc(model)["results"]
    assert passes == 19 and _props(res)["count-pass"] == "19"
    assert all(_props(o["subjects"][0])["status"] != "pass" for o in res["observations"])
    listed = oscal.results_resource(None)
    assert res["remarks"] == oscal.result_remarks({"pass": 19, "fail": 5, "pending": 3, "not_applicable": 10})
    assert "18 results whose status is not pass" in res["remarks"] and listed["uuid"] in res["remarks"]
    (resource,) = [r for r in _doc(model)["back-matter"]["resources"] if r["uuid"] == listed["uuid"]]
    assert resource["rlinks"] == [{"href": "control_results.csv", "media-type": "text/csv"}]
    digest = "ab" * 32
    with_hash = _doc(reference.build_assessment_results(con, D.settings(), D.AS_OF, results_sha256=digest))
    (resource,) = [r for r in with_hash["back-matter"]["resources"] if r["uuid"] == listed["uuid"]]
    assert resource["rlinks"][0]["hashes"] == [{"algorithm": "SHA-256", "value": digest}]


def test_relevant_evidence_points_at_folder_and_pages(built):
    _, model = built
    (res,) = _doc(model)["results"]
    by_change = {o["subjects"][0]["title"]: o["relevant-evidence"] for o in res["observations"]}
    hrefs = [e["href"] for e in by_change["acme/payments-api#12"]]
    assert hrefs == ["changes/acme__payments-api__pr-12/", "https://github.com/acme/payments-api/pull/12",
                     "https://acme.atlassian.net/browse/PAY-7"]
    # a javascript: ticket URL is never turned into evidence
    assert [e["href"] for e in by_change["acme/payments-api#13"]] == [
        "changes/acme__payments-api__pr-13/", "https://github.com/acme/payments-api/pull/13"]
    assert by_change[f"acme/web-frontend@{D.PUSH}"][0]["href"] == f"changes/acme__web-frontend__push-{D.PUSH}/"
    assert by_change["acme/payments-api"][0]["href"] == "changes/acme__payments-api/"


def test_findings_are_exactly_the_failures(built):
    con, model = built
    fails = {(r["change_id"], r["control_id"]) for r in results.results(con, D.AS_OF) if r["status"] == "fail"}
    (res,) = _doc(model)["results"]
    obs = {o["uuid"]: o for o in res["observations"]}
    got = set()
    for f in res["findings"]:
        t = f["target"]
        assert t["type"] == "objective-id" and t["status"] == {"state": "not-satisfied", "reason": "fail"}
        key = (_props(f)["change-id"], t["target-id"])
        got.add(key)
        (rel,) = f["related-observations"]
        assert _props(obs[rel["observation-uuid"]]["subjects"][0])["status"] == "fail"
        assert f["uuid"] == oscal.oscal_uuid("finding", "2026-11-25T00:00:00Z", *key)
    assert got == fails and len(res["findings"]) == len(fails) == 5


def test_deterministic_bytes_and_uuids():
    a = reference.oscal_bytes(reference.build_assessment_results(D.build(), D.settings(), D.AS_OF))
    b = reference.oscal_bytes(reference.build_assessment_results(D.build(), D.settings(), D.AS_OF))
    assert a == b
    text = a.decode()
    ids = [u for u in json.loads(text)["assessment-results"]["results"][0]["observations"]]
    assert all(uuid.UUID(o["uuid"]).version == 5 for o in ids)
    # every timestamp is a fetch time of the warehouse's payloads: no wall clock anywhere
    stamps = {v for k, v in _walk(json.loads(text)) if k in ("last-modified", "start", "end", "collected", "published")}
    assert stamps == {FETCHED_TEXT}
    # another as-of time gives other observation ids (the subject resources stay the same)
    day2 = datetime(2026, 11, 26, tzinfo=UTC)
    con = D.build()
    con.execute("UPDATE control_results SET as_of = ? WHERE CAST(as_of AS DATE) = '2026-11-25'",
                [datetime(2026, 11, 26)])
    other = _doc(reference.build_assessment_results(con, D.settings(), day2))
    first = json.loads(text)["assessment-results"]
    assert {o["uuid"] for o in other["results"][0]["observations"]}.isdisjoint({o["uuid"] for o in ids})
    assert [r["uuid"] for r in other["back-matter"]["resources"]] == [
        r["uuid"] for r in first["back-matter"]["resources"]]


def _walk(obj, key=None):
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _walk(v, k)
    elif isinstance(obj, list):
        for v in obj:
            yield from _walk(v, key)
    else:
        yield key, obj


def test_no_credentials_and_hostile_text_stays_valid():
    con = D.build()
    con.execute("UPDATE change_facts SET pr_url = ?, title = ? WHERE change_id = 'acme/payments-api#12'",
                [f"https://x-access-token:{D.SECRET}@github.com/acme/payments-api/pull/12?token={D.SECRET}",
                 "multi\nline  title\n"])
    model = reference.build_assessment_results(con, D.settings(), D.AS_OF)
    data = reference.oscal_bytes(model)
    assert D.SECRET.encode() not in data and b"SECRET" not in data
    assert b"https://github.com/acme/payments-api/pull/12" in data
    assert json.dumps(D.HOSTILE)[1:-1].encode() in data  # kept verbatim as data (JSON-escaped)
    AssessmentResults.model_validate(json.loads(data)["assessment-results"])


def test_a_day_without_results_is_still_a_valid_document():
    con = D.build(with_results=False)
    model = reference.build_assessment_results(con, D.settings(), D.AS_OF)
    doc = _doc(model)
    assert "observations" not in doc["results"][0] and "findings" not in doc["results"][0]
    assert [r["uuid"] for r in doc["back-matter"]["resources"]] == [doc["import-ap"]["href"][1:],
                                                                   oscal.results_resource(None)["uuid"]]
    AssessmentResults.model_validate(doc)


def test_no_fail_means_no_findings():
    con = D.build()
    con.execute("UPDATE control_results SET status = 'pass' WHERE status = 'fail'")
    (res,) = _doc(reference.build_assessment_results(con, replace(D.settings(), sha256=""), D.AS_OF))["results"]
    assert "findings" not in res and len(res["observations"]) == 13  # the pending and not_applicable results


def test_in_evidence_folder_manifest_and_archive(tmp_path):
    con = D.build()
    ev = write_evidence(con, D.settings(), D.AS_OF, tmp_path, D.gx_results(), "<html></html>\n",
                        {"github": "https://api.github.com"}, generated_at="2026-11-25T02:00:00.000000Z")
    path = ev.directory / oscal.FILE_NAME
    policy_sha = hashlib.sha256((ev.directory / "POLICY.md").read_bytes()).hexdigest()
    results_sha = hashlib.sha256((ev.directory / "control_results.csv").read_bytes()).hexdigest()
    assert path.read_bytes() == reference.oscal_bytes(reference.build_assessment_results(
        con, D.settings(), D.AS_OF, policy_sha256=policy_sha, results_sha256=results_sha))
    manifest = json.loads((ev.directory / "manifest.json").read_text())
    assert oscal.FILE_NAME in {f["path"] for f in manifest["files"]}
    assert manifest["versions"]["compliance-trestle"]
    assert oscal.FILE_NAME in (ev.directory / "SHA256SUMS").read_text()
    assert verify_archive(ev.archive) == []
    # every evidence folder the document names exists in the folder that carries it
    doc = json.loads(path.read_text())["assessment-results"]
    local = {e["href"] for o in doc["results"][0]["observations"] for e in o["relevant-evidence"]
             if not e["href"].startswith("http")}
    assert local and all((ev.directory / h).is_dir() for h in local)
    assert AssessmentResults.oscal_read(Path(path)) is not None
    # the archive stays reproducible with the OSCAL file in it
    again = write_evidence(D.build(), D.settings(), D.AS_OF, tmp_path / "b", D.gx_results(), "<html></html>\n",
                           {"github": "https://api.github.com"}, generated_at="2026-11-25T02:00:00.000000Z")
    assert again.archive.read_bytes() == ev.archive.read_bytes()


def test_ccwatch_does_not_import_trestle_until_needed():
    code = ("import sys, ccwatch.publish.evidence.write, ccwatch.publish.oscal, ccwatch.pipeline; "
            "print(any(m == 'trestle' or m.startswith('trestle.') for m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=ROOT / "include")
    assert out.stdout.strip() == "False"
