"""The reference OSCAL builder: the assessment results as compliance-trestle (pydantic) models.

The product streams the document as plain dicts (``ccwatch.publish.oscal``); this builds the same
document through trestle's models, field by field, so the tests can check that the streamed bytes
equal ``oscal_bytes(build_assessment_results(...))`` and that trestle validates them.  The tiny
helpers below repeat those of publish/oscal.py on purpose (no private name is imported).
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
from ccwatch import __version__
from ccwatch.common.changes import change_folder
from ccwatch.common.endpoints import redact_url
from ccwatch.common.text import clip
from ccwatch.common.times import iso, naive_utc
from ccwatch.controls.catalogue import CONTROL_NAMES, STATUSES, control_name, control_sort_key
from ccwatch.publish import results
from ccwatch.publish.oscal import (
    CRITERION,
    FRAMEWORK,
    PLAN_REMARKS,
    PROP_NS,
    oscal_uuid,
    plan_resource,
    result_remarks,
    results_resource,
    reviewed_controls_description,
)
from ccwatch.settings import Settings


def _aware(as_of: datetime) -> datetime:
    return naive_utc(as_of).replace(tzinfo=UTC)


def _line(text: Any, default: str) -> str:
    """One line without surrounding blanks (OSCAL titles and prop values), or the default."""
    s = " ".join(str("" if text is None else text).split())
    return s or default


def _folder_of(change_id: str, folders: dict[str, str] | None) -> str:
    if folders and change_id in folders:
        return folders[change_id]
    return change_folder(change_id)


def build_assessment_results(con: duckdb.DuckDBPyConnection, settings: Settings, as_of: datetime,
                             folders: dict[str, str] | None = None, policy_sha256: str | None = None,
                             results_sha256: str | None = None):
    """The assessment results of the evidence date of ``as_of`` as a trestle ``AssessmentResults``.

    ``folders`` maps change_id -> folder name under ``changes/`` (as written by the evidence
    folder); by default the folder name is derived with ``common.changes.change_folder``."""
    from trestle.oscal import OSCAL_VERSION, common
    from trestle.oscal.assessment_results import AssessmentResults, ImportAp, Result

    earliest, latest = results.fetch_span(con)
    first, when = _aware(earliest or as_of), _aware(latest or as_of)
    stamp = iso(naive_utc(as_of))
    day = stamp[:10]
    rows = results.results(con, as_of)
    changes = {c["change_id"]: c for c in results.changes(con)}
    repos = {r["change_id"]: r for r in results.repos(con)}
    commit_links = results.commit_urls(con)

    def prop(name: str, value: Any) -> common.Property:
        return common.Property(name=name, value=_line(value, "none"), ns=PROP_NS)

    def link(url: Any) -> str | None:
        u = results.safe_url(url)
        return redact_url(u) if u else None

    # subjects: one back-matter resource per change (stable across runs: no as-of in its uuid)
    resources: dict[str, common.Resource] = {}
    evidence: dict[str, list[common.RelevantEvidence]] = {}
    for cid in sorted({r["change_id"] for r in rows}):
        facts = changes.get(cid)
        repo_row = repos.get(cid) if facts is None else None
        folder = f"changes/{_folder_of(cid, folders)}/"
        holds = ("the raw API payloads (pull request or commit, reviews, checks, deployments, ticket)"
                 if facts is not None else "the repository's raw settings (branch protection, rules, environments)")
        rel = [common.RelevantEvidence(href=folder, description=f"Evidence folder of {cid} in this archive: "
                                                                f"{holds} and change.json")]
        rlinks = [common.Rlink(href=folder)]
        if facts is not None:
            page = link(results.change_link(facts, commit_links))
            what = "Pull request" if facts.get("pr_url") else "Commit"
            if page:
                rel.append(common.RelevantEvidence(href=page, description=f"{what} {cid} on GitHub"))
                rlinks.append(common.Rlink(href=page))
            ticket = link(facts.get("ticket_url"))
            if ticket:
                rel.append(common.RelevantEvidence(href=ticket, description=f"Jira ticket {facts.get('ticket_key')}"))
            kind = facts.get("change_kind") or ("direct_push" if "@" in cid else "pull_request")
            props = [prop("repo", facts.get("repo")), prop("change-kind", kind)]
            description = _line(clip(str(facts.get("title") or "")), cid)
        else:
            page = link((repo_row or {}).get("html_url"))
            if page:
                rel.append(common.RelevantEvidence(href=page, description=f"Repository {cid} on GitHub"))
                rlinks.append(common.Rlink(href=page))
            props = [prop("repo", (repo_row or {}).get("repo") or cid), prop("change-kind", "repository")]
            description = f"Repository {cid}"
        resources[cid] = common.Resource(uuid=oscal_uuid("subject", cid), title=_line(cid, "change"),
                                         description=description, props=props, rlinks=rlinks)
        evidence[cid] = rel

    observations = []
    findings = []
    for r in rows:
        cid, control, status = r["change_id"], r["control_id"], r["status"]
        repo = r.get("repo") or (changes.get(cid) or {}).get("repo") or cid
        name = control_name(control)
        obs_uuid = oscal_uuid("observation", stamp, cid, control)
        detail = _line(r.get("detail"), f"{control} {status}")
        if status == "pass":  # every result is a row of control_results.csv; pass results are not observations
            continue
        observations.append(common.Observation(
            uuid=obs_uuid,
            title=_line(f"{control} {name}: {cid} {status}", control),
            description=detail,
            methods=["TEST"],
            types=["control-objective"],
            subjects=[common.SubjectReference(
                subject_uuid=resources[cid].uuid, type="resource", title=resources[cid].title,
                props=[prop("repo", repo), prop("control-id", control), prop("status", status)])],
            relevant_evidence=evidence[cid],
            collected=when,
        ))
        if status == "fail":
            findings.append(common.Finding(
                uuid=oscal_uuid("finding", stamp, cid, control),
                title=_line(f"{control} {name} not satisfied: {cid}", control),
                description=detail,
                props=[prop("repo", repo), prop("change-id", cid)],
                target=common.FindingTarget(
                    type="objective-id", target_id=control, title=_line(name, control),
                    status=common.ObjectiveStatus(state="not-satisfied", reason="fail")),
                related_observations=[common.RelatedObservation(observation_uuid=obs_uuid)],
            ))

    counts: dict[str, int] = {}
    for r in rows:
        counts[r["status"]] = counts.get(r["status"], 0) + 1
    tally = ", ".join(f"{counts.get(s, 0)} {s}" for s in STATUSES)
    controls = sorted(set(CONTROL_NAMES) | {r["control_id"] for r in rows}, key=control_sort_key)
    result = Result(
        uuid=oscal_uuid("result", stamp),
        title=f"ccwatch CC8.1 change management, evidence date {day}",
        description=(f"Every change merged or pushed into a production branch within {settings.lookback_days} days "
                     f"before {stamp}, asserted against the CC8.1 controls of POLICY.md: {len(rows)} control "
                     f"results ({tally}) over {len(resources)} changes and repositories."),
        start=first,
        end=when,
        props=[prop("evidence-date", day)] + [prop(f"count-{s.replace('_', '-')}", counts.get(s, 0))
                                              for s in STATUSES],
        reviewed_controls=common.ReviewedControls(
            description=reviewed_controls_description(),
            props=[prop("framework", FRAMEWORK), prop("criterion", CRITERION)],
            control_selections=[common.ControlSelections(
                include_controls=[common.SelectControlById(control_id=c) for c in controls])]),
        observations=observations or None,
        findings=findings or None,
        remarks=result_remarks(counts),
    )
    def file_resource(spec: dict) -> common.Resource:
        rlink = spec["rlinks"][0]
        return common.Resource(uuid=spec["uuid"], title=spec["title"], description=spec["description"], rlinks=[
            common.Rlink(href=rlink["href"], media_type=rlink["media-type"],
                         hashes=[common.Hash(algorithm=h["algorithm"], value=h["value"]) for h in rlink.get("hashes", [])]
                         or None)])

    plan = file_resource(plan_resource(policy_sha256))
    listed = file_resource(results_resource(results_sha256))
    meta_props = [prop("tool", f"ccwatch {__version__}")]
    if settings.sha256:
        meta_props.append(prop("config-sha256", settings.sha256))
    return AssessmentResults(
        uuid=oscal_uuid("assessment-results", stamp),
        metadata=common.Metadata(
            title=f"ccwatch SOC 2 CC8.1 assessment results as of {stamp}",
            last_modified=when,
            version=stamp,
            oscal_version=OSCAL_VERSION,
            props=meta_props,
        ),
        import_ap=ImportAp(href=f"#{plan.uuid}", remarks=PLAN_REMARKS),
        results=[result],
        back_matter=common.BackMatter(resources=[plan, listed, *resources.values()]),
    )


def oscal_bytes(model) -> bytes:
    """The document as written: OSCAL JSON wrapped in ``{"assessment-results": ...}``, 2-space indent, newline."""
    return model.oscal_serialize_json_bytes(pretty=True) + b"\n"


def write_oscal(path: str | os.PathLike, model) -> Path:
    """Write the model as OSCAL JSON (atomically: temp file, then rename). Returns the path."""
    p = Path(path)
    tmp = p.with_name(f".{p.name}.{os.getpid()}.tmp")
    try:
        tmp.write_bytes(oscal_bytes(model))
        os.replace(tmp, p)
    finally:
        tmp.unlink(missing_ok=True)
    return p


def read_oscal(path: str | os.PathLike):
    """Load an assessment-results file back through the trestle model (validates it)."""
    from trestle.oscal.assessment_results import AssessmentResults

    return AssessmentResults.oscal_read(Path(path))
