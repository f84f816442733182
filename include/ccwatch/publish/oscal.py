"""The run's results as an OSCAL assessment-results document (NIST OSCAL 1.2, compliance-trestle models).

One ``result`` per run. Every control result of the evidence date whose status is not ``pass``
(``fail``, ``pending``, ``not_applicable``) is one ``observation``: its subject is the change (a
back-matter resource, the repository for CC8.1-11/12) with props ``repo``, ``control-id`` and
``status``; its relevant evidence is the change's folder in the evidence archive and its pull
request / commit / repository page and ticket. Every ``fail`` is also one ``finding`` whose target
is the control id, state ``not-satisfied``, related to its observation.  The ``pass`` results
(~86% of the benchmark window's results, and most of the document's bytes when each was one) are
counted in the result's props (``count-pass``) and listed with every other result in
``control_results.csv``, a back-matter resource with its SHA-256 that the result's ``remarks``
names (docs/OUTPUTS.md, "The OSCAL document": why).

The document is a pure function of the warehouse and the as-of time: UUIDs are uuid5 of a fixed
namespace and (kind, as-of, change, control).  Its times say when the data was collected, not the
date it is evaluated for: the result's ``start``/``end`` are the earliest and latest fetch time of
the raw payloads the evaluation read, and each observation's ``collected`` and the metadata's
``last-modified`` the latest (the as-of time only when the warehouse holds no payload).

``import-ap`` points at a back-matter resource standing for POLICY.md (with its SHA-256 inside an
evidence folder): ccwatch has no OSCAL assessment plan, and says so there.  ``reviewed-controls``
says what the control ids are: ccwatch's own (CC8.1-NN), each a control of its implementation of
the AICPA Trust Services Criterion CC8.1, not ids of an OSCAL catalog.  It is built as
plain dicts and serialised by orjson in chunks (what a change's observations share, its subject and
relevant evidence, pre-rendered once as orjson fragments indented as orjson would); ``tests/helpers/oscal_reference.py`` builds the
same document through compliance-trestle's (pydantic) models, and the tests check the bytes are
equal and that trestle validates the output.  trestle is imported lazily, so importing ccwatch
stays cheap.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from datetime import UTC, datetime
from typing import Any

import duckdb

from ccwatch import __version__
from ccwatch.common.changes import change_folder, is_direct_push
from ccwatch.common.endpoints import redact_url
from ccwatch.common.text import clip
from ccwatch.common.times import iso, naive_utc
from ccwatch.controls.catalogue import CONTROL_NAMES, STATUSES, control_name, control_sort_key
from ccwatch.publish import results
from ccwatch.settings import Settings

FILE_NAME = "oscal-assessment-results.json"
#: namespace of ccwatch's own property names
PROP_NS = "urn:ccwatch:oscal"
#: fixed namespace of every UUID in the document: uuid5(NAMESPACE_URL, PROP_NS); never change it
UUID_NAMESPACE = uuid.UUID("6b1d14f4-4ccc-5518-9bb0-727a6db1ddb7")
#: what the control ids belong to (reviewed-controls props)
FRAMEWORK = "AICPA TSC 2017 (points of focus revised 2022)"
CRITERION = "CC8.1"
PLAN_REMARKS = ("No OSCAL assessment plan exists (not an OSCAL document): the plan is the control statement "
                "POLICY.md of this evidence folder, generated from the configuration in force; the back-matter "
                "resource this points at names it and its SHA-256.")


_NS_BYTES = UUID_NAMESPACE.bytes


def oscal_uuid(kind: str, *parts: str) -> str:
    """Deterministic UUID (version 5) of a kind and its identifying parts: ``str(uuid.uuid5(UUID_NAMESPACE,
    name))`` computed directly (uuid.UUID objects cost ~20x more; tests/unit/publish/evidence/test_archive.py compares)."""
    b = bytearray(hashlib.sha1(_NS_BYTES + "\x1f".join((kind, *parts)).encode("utf-8")).digest()[:16])
    b[6] = (b[6] & 0x0F) | 0x50
    b[8] = (b[8] & 0x3F) | 0x80
    x = b.hex()
    return f"{x[:8]}-{x[8:12]}-{x[12:16]}-{x[16:20]}-{x[20:]}"


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


def plan_resource(policy_sha256: str | None) -> dict:
    """The back-matter resource ``import-ap`` points at: POLICY.md (and its SHA-256 when known)."""
    rlink: dict[str, Any] = {"href": "POLICY.md", "media-type": "text/markdown"}
    if policy_sha256:
        rlink["hashes"] = [{"algorithm": "SHA-256", "value": policy_sha256}]
    return {"uuid": oscal_uuid("plan", "POLICY.md"), "title": "Assessment plan: POLICY.md",
            "description": ("The change-management control statement the results are assessed against (not an "
                            "OSCAL document): scope, roles, categories, windows and one sentence per control."),
            "rlinks": [rlink]}


RESULTS_FILE = "control_results.csv"
#: the statuses whose results are observations (every result is a row of RESULTS_FILE)
OBSERVED = frozenset(s for s in STATUSES if s != "pass")


def results_resource(results_sha256: str | None) -> dict:
    """The back-matter resource standing for control_results.csv (and its SHA-256 when known): every
    result of the date, the pass results included (they are not observations)."""
    rlink: dict[str, Any] = {"href": RESULTS_FILE, "media-type": "text/csv"}
    if results_sha256:
        rlink["hashes"] = [{"algorithm": "SHA-256", "value": results_sha256}]
    return {"uuid": oscal_uuid("results-file", RESULTS_FILE), "title": "Every control result: control_results.csv",
            "description": ("Every control result of the evidence date, one row per change and control (as_of, "
                            "change_id, repo, control_id, status, detail), the pass results included."),
            "rlinks": [rlink]}


def result_remarks(counts: dict[str, int]) -> str:
    """The result's ``remarks``: which results are observations and where the others are."""
    observed = sum(n for s, n in counts.items() if s in OBSERVED)
    return (f"Observations are the {observed} results whose status is not pass (fail, pending, not_applicable); "
            f"the {counts.get('pass', 0)} pass results are counted in the props (count-pass) and listed, with every "
            f"other result and its detail, in {RESULTS_FILE} (back-matter resource "
            f"{oscal_uuid('results-file', RESULTS_FILE)}, with its SHA-256 inside an evidence folder).")


def reviewed_controls_description() -> str:
    """What the control ids of the document are (reviewed-controls ``description``)."""
    names = "; ".join(f"{c} {n}" for c, n in sorted(CONTROL_NAMES.items(), key=lambda kv: control_sort_key(kv[0])))
    return (f"The control ids are ccwatch's own, not ids of an OSCAL catalog: each is one control of ccwatch's "
            f"implementation of the {FRAMEWORK} criterion {CRITERION} (change management), stated in POLICY.md: "
            f"{names}.")


def _chunk_json(items: list, pad: int) -> bytes:
    """``items`` as the elements of a JSON array indented ``pad`` spaces (orjson OPT_INDENT_2)."""
    import orjson

    text = orjson.dumps(items, option=orjson.OPT_INDENT_2)[2:-2]  # drop "[\n" and "\n]"
    extra = b" " * (pad - 2)
    return extra + text.replace(b"\n", b"\n" + extra) if extra else text


def _indented(value: Any, pad: int) -> bytes:
    """``value`` as orjson OPT_INDENT_2 writes it as the value of a key (or an item) whose line is
    indented ``pad`` spaces: every line after the first ``pad`` spaces further in."""
    import orjson

    text = orjson.dumps(value, option=orjson.OPT_INDENT_2)
    return text.replace(b"\n", b"\n" + b" " * pad) if pad else text


def _fragment(value: Any, pad: int):
    import orjson

    return orjson.Fragment(_indented(value, pad))


def stream_assessment_results(con: duckdb.DuckDBPyConnection, settings: Settings, as_of: datetime,
                              folders: dict[str, str] | None, write, *, rows: list[dict] | None = None,
                              chunk: int = 5000, policy_sha256: str | None = None,
                              results_sha256: str | None = None) -> None:
    """Write the assessment-results document of the evidence date through ``write(bytes)``, built as
    plain dicts and serialized by orjson ``chunk`` observations at a time: no pydantic object per
    result.  ``rows``: ``results.results`` if already read; ``policy_sha256`` / ``results_sha256``: the digests
    of POLICY.md and control_results.csv."""
    import orjson
    from trestle.core.base_model import robust_datetime_serialization
    from trestle.oscal import OSCAL_VERSION

    earliest, latest = results.fetch_span(con)
    first = robust_datetime_serialization(_aware(earliest or as_of))
    when = robust_datetime_serialization(_aware(latest or as_of))
    stamp = iso(naive_utc(as_of))
    day = stamp[:10]
    rows = results.results(con, as_of) if rows is None else rows
    cids = sorted({r["change_id"] for r in rows})
    changes = results.changes_by_id(con, cids)
    repos = {r["change_id"]: r for r in results.repos(con)}
    commit_links = results.commit_urls(con, [(c.get("repo"), c.get("sha")) for c in changes.values()])

    made: dict[tuple[str, type, Any], dict] = {}

    def prop(name: str, value: Any) -> dict:
        """A prop; the same (name, value) gives the same dict, built once (most are repo, control-id and
        status of an observation: a few hundred distinct ones over a window's results)."""
        key = (name, type(value), value if isinstance(value, (str, int, type(None))) else repr(value))
        out = made.get(key)
        if out is None:
            out = {"name": name, "ns": PROP_NS, "value": _line(value, "none")}
            if len(made) < 100_000:
                made[key] = out
        return out

    def link(url: Any) -> str | None:
        u = results.safe_url(url)
        return redact_url(u) if u else None

    def subject(cid: str) -> tuple[dict, list[dict]]:
        facts = changes.get(cid)
        repo_row = repos.get(cid) if facts is None else None
        folder = f"changes/{_folder_of(cid, folders)}/"
        holds = ("the raw API payloads (pull request or commit, reviews, checks, deployments, ticket)"
                 if facts is not None else "the repository's raw settings (branch protection, rules, environments)")
        rel = [{"href": folder, "description": f"Evidence folder of {cid} in this archive: {holds} and change.json"}]
        rlinks = [{"href": folder}]
        if facts is not None:
            page = link(results.change_link(facts, commit_links))
            what = "Pull request" if facts.get("pr_url") else "Commit"
            if page:
                rel.append({"href": page, "description": f"{what} {cid} on GitHub"})
                rlinks.append({"href": page})
            ticket = link(facts.get("ticket_url"))
            if ticket:
                rel.append({"href": ticket, "description": f"Jira ticket {facts.get('ticket_key')}"})
            kind = facts.get("change_kind") or ("direct_push" if is_direct_push(cid) else "pull_request")
            props = [prop("repo", facts.get("repo")), prop("change-kind", kind)]
            description = _line(clip(str(facts.get("title") or "")), cid)
        else:
            page = link((repo_row or {}).get("html_url"))
            if page:
                rel.append({"href": page, "description": f"Repository {cid} on GitHub"})
                rlinks.append({"href": page})
            props = [prop("repo", (repo_row or {}).get("repo") or cid), prop("change-kind", "repository")]
            description = f"Repository {cid}"
        return ({"uuid": oscal_uuid("subject", cid), "title": _line(cid, "change"), "description": description,
                 "props": props, "rlinks": rlinks}, rel)

    counts: dict[str, int] = {}
    for r in rows:
        counts[r["status"]] = counts.get(r["status"], 0) + 1
    tally = ", ".join(f"{counts.get(s, 0)} {s}" for s in STATUSES)
    controls = sorted(set(CONTROL_NAMES) | {r["control_id"] for r in rows}, key=control_sort_key)
    marks = {k: f"\x00{k}\x00" for k in ("observations", "findings", "resources")}
    fails = any(r["status"] == "fail" for r in rows)
    result = {
        "uuid": oscal_uuid("result", stamp),
        "title": f"ccwatch CC8.1 change management, evidence date {day}",
        "description": (f"Every change merged or pushed into a production branch within {settings.lookback_days} "
                        f"days before {stamp}, asserted against the CC8.1 controls of POLICY.md: {len(rows)} control "
                        f"results ({tally}) over {len(cids)} changes and repositories."),
        "start": first, "end": when,
        "props": [prop("evidence-date", day)] + [prop(f"count-{s.replace('_', '-')}", counts.get(s, 0))
                                                 for s in STATUSES],
        "reviewed-controls": {"description": reviewed_controls_description(),
                              "props": [prop("framework", FRAMEWORK), prop("criterion", CRITERION)],
                              "control-selections": [{"include-controls": [{"control-id": c} for c in controls]}]},
    }
    if any(r["status"] in OBSERVED for r in rows):
        result["observations"] = [marks["observations"]]
    if fails:
        result["findings"] = [marks["findings"]]
    result["remarks"] = result_remarks(counts)
    meta_props = [prop("tool", f"ccwatch {__version__}")]
    if settings.sha256:
        meta_props.append(prop("config-sha256", settings.sha256))
    doc = {"uuid": oscal_uuid("assessment-results", stamp),
           "metadata": {"title": f"ccwatch SOC 2 CC8.1 assessment results as of {stamp}", "last-modified": when,
                        "version": stamp, "oscal-version": OSCAL_VERSION, "props": meta_props},
           "import-ap": {"href": f"#{plan_resource(None)['uuid']}", "remarks": PLAN_REMARKS},
           "results": [result],
           "back-matter": {"resources": [marks["resources"]]}}
    skeleton = orjson.dumps({"assessment-results": doc}, option=orjson.OPT_INDENT_2) + b"\n"

    subjects: dict[str, tuple[dict, list[dict]]] = {}

    def subject_of(cid: str) -> tuple[dict, list[dict]]:
        if cid not in subjects:
            if len(subjects) > 4 * chunk:
                subjects.clear()
            subjects[cid] = subject(cid)
        return subjects[cid]

    # An observation's nested values as orjson would indent them inside a chunk (the observation at
    # depth 1, its keys at 4 spaces): pre-rendered fragments, the parts a change's observations share
    # rendered once (its subject and relevant evidence), the props once per (repo, control, status).
    methods, types = _fragment(["TEST"], 4), _fragment(["control-objective"], 4)
    rendered: dict[str, tuple[bytes, bytes, Any]] = {}
    prop_text: dict[tuple[str, str, str], bytes] = {}
    mark = "\x00props\x00"

    def rendered_of(cid: str) -> tuple[bytes, bytes, Any]:
        out = rendered.get(cid)
        if out is None:
            if len(rendered) > 4 * chunk:
                rendered.clear()
            res, rel = subject_of(cid)
            text = _indented([{"subject-uuid": res["uuid"], "type": "resource", "title": res["title"],
                               "props": mark}], 4)
            i = text.rindex(orjson.dumps(mark))  # props is the last key: a title holding the mark is before it
            pad = i - text.rfind(b"\n", 0, i) - 1 - len(b'"props": ')
            out = rendered[cid] = (text[:i], text[i + len(orjson.dumps(mark)):], orjson.Fragment(_indented(rel, 4)),
                                   pad)
        return out

    def props_of(repo: str, control: str, status: str, pad: int) -> bytes:
        key = (repo, control, status, pad)
        text = prop_text.get(key)
        if text is None:
            if len(prop_text) > 100_000:
                prop_text.clear()
            text = prop_text[key] = _indented([prop("repo", repo), prop("control-id", control),
                                               prop("status", status)], pad)
        return text

    def observations():
        for r in rows:
            cid, control, status = r["change_id"], r["control_id"], r["status"]
            if status not in OBSERVED:
                continue
            head, tail, rel, pad = rendered_of(cid)
            repo = r.get("repo") or (changes.get(cid) or {}).get("repo") or cid
            yield {"uuid": oscal_uuid("observation", stamp, cid, control),
                   "title": _line(f"{control} {control_name(control)}: {cid} {status}", control),
                   "description": _line(r.get("detail"), f"{control} {status}"),
                   "methods": methods, "types": types,
                   "subjects": orjson.Fragment(head + props_of(repo, control, status, pad) + tail),
                   "relevant-evidence": rel, "collected": when}

    def findings():
        for r in rows:
            if r["status"] != "fail":
                continue
            cid, control = r["change_id"], r["control_id"]
            name = control_name(control)
            repo = r.get("repo") or (changes.get(cid) or {}).get("repo") or cid
            yield {"uuid": oscal_uuid("finding", stamp, cid, control),
                   "title": _line(f"{control} {name} not satisfied: {cid}", control),
                   "description": _line(r.get("detail"), f"{control} fail"),
                   "props": [prop("repo", repo), prop("change-id", cid)],
                   "target": {"type": "objective-id", "target-id": control, "title": _line(name, control),
                              "status": {"state": "not-satisfied", "reason": "fail"}},
                   "related-observations": [{"observation-uuid": oscal_uuid("observation", stamp, cid, control)}]}

    def resources():
        yield plan_resource(policy_sha256)
        yield results_resource(results_sha256)
        for cid in cids:
            yield subject_of(cid)[0]

    gens = {"observations": observations, "findings": findings, "resources": resources}
    rest = skeleton
    while True:
        hits = [(rest.find(orjson.dumps(m)), k) for k, m in marks.items()]
        hits = sorted((i, k) for i, k in hits if i >= 0)
        if not hits:
            write(rest)
            return
        i, key = hits[0]
        start = rest.rfind(b"\n", 0, i) + 1
        pad = i - start
        write(rest[:start])
        first = True
        batch: list = []
        for item in gens[key]():
            batch.append(item)
            if len(batch) >= chunk:
                write((b"" if first else b",\n") + _chunk_json(batch, pad))
                first, batch = False, []
        if batch:
            write((b"" if first else b",\n") + _chunk_json(batch, pad))
        rest = rest[i + len(orjson.dumps(marks[key])):]


def write_assessment_results(path: str | os.PathLike, con: duckdb.DuckDBPyConnection, settings: Settings,
                             as_of: datetime, folders: dict[str, str] | None = None, *,
                             rows: list[dict] | None = None, policy_sha256: str | None = None,
                             results_sha256: str | None = None) -> tuple[str, int]:
    """:func:`stream_assessment_results` into ``path``; returns (sha256 hex, size) of the bytes written."""
    h = hashlib.sha256()
    size = 0
    with open(path, "wb") as fh:
        def write(data: bytes) -> None:
            nonlocal size
            h.update(data)
            size += len(data)
            fh.write(data)
        stream_assessment_results(con, settings, as_of, folders, write, rows=rows, policy_sha256=policy_sha256,
                                  results_sha256=results_sha256)
    return h.hexdigest(), size
