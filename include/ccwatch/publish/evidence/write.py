"""The evidence folder ``<home>/evidence/<date>/`` and its reproducible archive.

Layout (docs/OUTPUTS.md): control_results.csv, population.csv, changes/<change>/*.json
(raw API payloads from ``raw_payloads``, each with its source URL and fetch time),
gx_validation.json, oscal-assessment-results.json, report.html, POLICY.md, README.txt,
SHA256SUMS, manifest.json.
The folder is built under a temporary name and swapped in whole, so it never mixes two
runs; the archive is never overwritten (a rerun gets ``.<n>.tar.gz``).  What a run killed
mid-write leaves (temp folder, temp archive, the previous folder moved aside) is cleaned up, or
put back, by the next run of the date. After publishing, expired
archives are deleted per ``evidence.retention_days`` (``ccwatch.publish.evidence.retention``).
"""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb

from ccwatch.common.endpoints import redact_url
from ccwatch.ingest.records import remove_stale, stale_entries, tmp_pattern
from ccwatch.publish import results as outputs
from ccwatch.publish.evidence import archive, retention
from ccwatch.publish.evidence import folder as evidence_tree
from ccwatch.publish.evidence.archive import verify_archive  # noqa: F401  (public: ccwatch.evidence.verify_archive)
from ccwatch.publish.evidence.deployments import EnvDeployments
from ccwatch.publish.evidence.reader import RawEvidence, _head_of
from ccwatch.publish.results import iso
from ccwatch.settings import Settings
from ccwatch.warehouse.normalize.graphql import _RANK


@dataclass(frozen=True)
class EvidenceResult:
    directory: Path
    archive: Path
    numbered: bool
    files: int
    sha256: str = ""
    pruned: tuple[str, ...] = ()  # archives / dated folders deleted by the retention policy


def change_folder(change_id: str) -> str:
    """A file-system-safe folder name: ``o/r#12`` -> ``o__r__pr-12``, ``o/r@sha`` -> ``o__r__push-sha``."""
    name = change_id.replace("/", "__").replace("#", "__pr-").replace("@", "__push-")
    name = re.sub(r"[^A-Za-z0-9._-]", "_", name).lstrip(".")
    return name or "_"


def _time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return outputs.naive_utc(datetime.fromisoformat(value.replace("Z", "+00:00")))
    except ValueError:
        return None


def _deployments(raw: RawEvidence, settings: Settings, change: dict, graphql: list | None = None) -> list[dict]:
    """Per production/staging environment, the deployments that contain the change (its sha or a
    later first-parent commit), oldest first, up to the first one whose latest status as of the run
    is success; each with its statuses record."""
    repo, sha = change.get("repo"), change.get("sha")
    try:
        rc = settings.repo(repo)
    except KeyError:
        return []
    pos = raw.positions(repo, rc.production_branch)
    raw.repo_deployment_statuses(repo)
    graphql = [] if graphql is None else graphql
    out = []
    for env in rc.production_environments + rc.staging_environments:
        rec = raw.get("github", "deployments", f"{repo}:{env}")
        if rec is None:
            out.append({"environment": env, "not_found": f"no deployments payload for {repo}:{env}"})
            continue
        envd = raw.env_deployments.get((repo, env))
        if envd is None:
            items = rec["payload"] if isinstance(rec["payload"], list) else []
            envd = raw.env_deployments[(repo, env)] = EnvDeployments(items, pos, lambda d: not _after(d, raw.as_of))
        kept = []
        for d in envd.containing(sha):
            dkey = f"{repo}/deployments/{d.get('id')}"
            statuses = raw.deployment_statuses("deployment_statuses", dkey)
            entry = {"deployment": d, "statuses": statuses}
            gql = raw.deployment_statuses("gql_deployment_statuses", dkey)
            if gql is not None:  # the GraphQL Deployment node (deployment_statuses.graphql.json)
                entry["statuses_graphql"] = {"file": "deployment_statuses.graphql.json", "natural_key": dkey}
                graphql.append(gql)
            kept.append(entry)
            # a REST record of the statuses wins over the GraphQL node (as in the warehouse)
            if dkey not in raw.deployment_states:
                raw.deployment_states[dkey] = (_latest_state(statuses, raw.as_of) if statuses is not None
                                               else _latest_gql_state(gql, raw.as_of))
            if raw.deployment_states[dkey] == "success":
                break
        out.append({"environment": env, "source": {k: rec[k] for k in ("url", "fetched_at", "status_code")},
                    "deployments": kept})
    return out


def _after(d: dict, as_of: datetime) -> bool:
    created = _time(d.get("created_at"))
    return created is not None and created > as_of


def _latest_state(statuses: dict | None, as_of: datetime) -> str | None:
    items = statuses["payload"] if statuses and isinstance(statuses.get("payload"), list) else []
    dated = [(_time(s.get("created_at")), s.get("id") or 0, s.get("state")) for s in items]
    dated = [d for d in dated if d[0] is not None and d[0] <= as_of]
    return max(dated)[2] if dated else None


def _latest_gql_state(node: dict | None, as_of: datetime) -> str | None:
    """The latest status state (REST's lowercase) of a GraphQL Deployment node as of the run."""
    payload = (node or {}).get("payload")
    items = ((payload.get("statuses") or {}).get("nodes") or []) if isinstance(payload, dict) else []
    dated = [(_time(s.get("createdAt")), str(s.get("state") or "").lower()) for s in items if isinstance(s, dict)]
    dated = [d for d in dated if d[0] is not None and d[0] <= as_of]
    # at the same second the warehouse's derived status ids order by lifecycle rank (normalize_graphql)
    return max(dated, key=lambda d: (d[0], _RANK.get(d[1], 0)))[1] if dated else None


def change_evidence_files(raw: RawEvidence, settings: Settings, change: dict) -> dict[str, Any]:
    """file name -> JSON content for one change's raw evidence; 'not_found' lists what is absent."""
    files: dict[str, Any] = {}
    missing: list[str] = []

    def put(name: str, source: str, kind: str, key: str) -> dict | None:
        rec = raw.get(source, kind, key)
        if rec is None:
            missing.append(f"{source} {kind} {key}")
        else:
            files[name] = rec
        return rec

    cid, repo = change["change_id"], change.get("repo")
    if change.get("change_kind") == "direct_push" or "@" in cid:
        sha = change.get("sha")
        try:
            branch = settings.repo(repo).production_branch
        except KeyError:
            branch = None
        commits = raw.get("github", "commits", f"{repo}:{branch}") if branch else None
        match = [c for c in (commits or {}).get("payload") or [] if isinstance(c, dict) and c.get("sha") == sha]
        if match:
            files["commit.json"] = dict(commits, payload=match[0])
        else:
            missing.append(f"github commits {repo}:{branch} (commit {sha})")
        gql = raw.get("github", "gql_commit_pulls", f"{repo}@{sha}")
        if gql is not None:  # the GraphQL history node of the commit (its associatedPullRequests)
            files["commit_pulls.graphql.json"] = gql
            if (rec := raw.get("github", "commit_pulls", f"{repo}@{sha}")) is not None:
                files["commit_pulls.json"] = rec
        else:
            put("commit_pulls.json", "github", "commit_pulls", f"{repo}@{sha}")
    else:
        # REST kinds and/or the GraphQL PullRequest node (gql_pull holds reviews, checks, statuses;
        # a piece it could not hold whole was fetched by REST as its own kind)
        pull = raw.get("github", "pull", cid)
        gql = raw.get("github", "gql_pull", cid)
        if pull is not None:
            files["pull.json"] = pull
        if gql is not None:
            files["pull.graphql.json"] = gql
        if pull is None and gql is None:
            missing.append(f"github pull {cid}")
        if gql is None:
            put("reviews.json", "github", "reviews", cid)
        elif (rec := raw.get("github", "reviews", cid)) is not None:
            files["reviews.json"] = rec
        head = _head_of(pull, gql)
        if head:
            for name, kind in (("check_runs.json", "check_runs"), ("statuses.json", "statuses")):
                if gql is None:
                    put(name, "github", kind, f"{repo}@{head}")
                elif (rec := raw.get("github", kind, f"{repo}@{head}")) is not None:
                    files[name] = rec
        else:
            missing.append(f"head commit of {cid} (no pull payload): check runs and statuses")
        key = change.get("ticket_key")
        if key:
            if put("ticket.json", "jira", "issue", key) is None:
                missing.pop()
                if put("ticket_missing.json", "jira", "issue_missing", key) is not None:
                    missing.append(f"jira issue {key} (Jira says it does not exist or is not visible)")
                else:
                    missing.append(f"jira issue {key}")
            else:
                put("ticket_changelog.json", "jira", "changelog", key)
    graphql: list[dict] = []
    files["deployments.json"] = _deployments(raw, settings, change, graphql)
    if graphql:
        files["deployment_statuses.graphql.json"] = graphql
    files["_missing"] = missing
    return files


def _repo_files(raw: RawEvidence, settings: Settings, repo: str) -> dict[str, Any]:
    files: dict[str, Any] = {}
    missing: list[str] = []
    try:
        rc = settings.repo(repo)
    except KeyError:
        rc = None
    pairs = [("repo.json", "repo", repo)]
    if rc:
        b = rc.production_branch
        pairs += [("branch.json", "branch", f"{repo}:{b}"), ("branch_protection.json", "branch_protection", f"{repo}:{b}"),
                  ("branch_rules.json", "branch_rules", f"{repo}:{b}")]
    for name, kind, key in pairs:
        rec = raw.get("github", kind, key)
        if rec is None:
            missing.append(f"github {kind} {key}")
        else:
            files[name] = rec
    rules = (files.get("branch_rules.json") or {}).get("payload") or []
    ids = sorted({r.get("ruleset_id") for r in rules if isinstance(r, dict) and r.get("ruleset_id") is not None})
    if ids:
        files["rulesets.json"] = [raw.get("github", "ruleset", f"{repo}/rulesets/{i}") or
                                  {"not_found": f"github ruleset {repo}/rulesets/{i}"} for i in ids]
    if rc:
        files["environments.json"] = [raw.get("github", "environment", f"{repo}:{e}") or
                                      {"not_found": f"github environment {repo}:{e}"}
                                      for e in rc.production_environments]
    files["_missing"] = missing
    return files


def _recover(base: Path, day: str) -> None:
    """Undo what a run of ``day`` killed mid-write left (names used by :func:`write_evidence`): the
    previous folder, moved aside but not yet replaced, goes back in place; half-built folders and
    temp archives are removed.  Files under final names are never touched."""
    final = base / day
    moved_aside = [p for p in stale_entries(base, rf"\.{re.escape(day)}\.old-(\d+)") if p.is_dir()]
    if moved_aside and not final.exists():
        os.rename(moved_aside[-1], final)
    remove_stale(base, rf"\.{re.escape(day)}\.(?:tmp|old)-(\d+)")
    remove_stale(base, rf"\.{re.escape(day)}\.part-(\d+)(?:\.manifest)?")
    remove_stale(base, tmp_pattern(base / f"ccwatch-evidence-{day}.tar.gz"))


def write_evidence(con: duckdb.DuckDBPyConnection, settings: Settings, as_of: datetime, home: Path,
                   gx_results: list[dict], report_html: str, endpoints: dict[str, str]) -> EvidenceResult:
    day = outputs.evidence_date(as_of).isoformat()
    base = Path(home) / "evidence"
    base.mkdir(parents=True, exist_ok=True)
    _recover(base, day)
    tmp = base / f".{day}.tmp-{os.getpid()}"
    part = base / f".{day}.part-{os.getpid()}"  # the change folders' tar part (evidence_tree)
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        try:
            tree = evidence_tree.write_tree(tmp, con, settings, as_of, gx_results, report_html, day, part)
            header = {
                "manifest_version": 1,
                "tool": "ccwatch",
                "as_of": iso(outputs.naive_utc(as_of)),
                "evidence_date": day,
                "versions": archive.versions(),
                "config": {"file": Path(settings.source_path).name if settings.source_path else None,
                           "sha256": settings.sha256 or None},
                "endpoints": {k: redact_url(v) for k, v in sorted((endpoints or {}).items())},
                "counts": tree.counts,
            }
            evidence_tree.write_manifest(tmp, header, tree)
            tree.top[archive.MANIFEST] = ("", 0)  # an archive entry (its bytes are read from the folder)
            final = base / day
            old = base / f".{day}.old-{os.getpid()}"
            if final.exists():
                os.rename(final, old)
            os.rename(tmp, final)
            shutil.rmtree(old, ignore_errors=True)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        tmp_archive = base / f".ccwatch-evidence-{day}.tar.gz.{os.getpid()}.tmp"
        try:
            archive.assemble_archive(final, day, as_of, tmp_archive, tree.entries(), tree.part)
            digest = archive.sha256_file(tmp_archive)
            path, numbered = archive.publish(tmp_archive, base, f"ccwatch-evidence-{day}")
        finally:
            tmp_archive.unlink(missing_ok=True)
    finally:
        part.unlink(missing_ok=True)
        part.with_name(part.name + ".manifest").unlink(missing_ok=True)
    pruned = retention.prune_evidence(base, as_of, settings.evidence.retention_days, settings.evidence.keep_latest,
                                      keep=path)
    return EvidenceResult(directory=final, archive=path, numbered=numbered,
                          files=tree.files, sha256=digest, pruned=tuple(p.name for p in pruned))
