"""Incremental ingestion: fetch plans per repository / project from the ingest state.

The fetch tasks never open DuckDB (the load step holds its write lock, and two parallel
fetches must not contend for it).  Instead ``load_warehouse`` writes a small JSON state file
(``CCWATCH_HOME/state/ingest_state.json``, ``ccwatch.ingest.state``) right after its commit,
computed from the warehouse it just committed (``ccwatch.warehouse.ingest_state``):

- per repository: the *coverage* ``[covered_from, watermark]`` (every object with activity in
  it has been fetched; ``watermark`` is the as-of time of the last complete load, capped at
  the fetch's wall-clock start so a future-dated run cannot claim data it could not see), the
  production-branch tip, whether its stored activity log is whole (``activity_complete``), the
  deployments still open (latest status not final, or young
  enough that a control window may still move), per environment, and the first-parent commits
  of the next overlap that have no merged PR (``unlinked``: their PRs are asked again even
  when the commits listing answers 304, see ``ingest/github/conditional.relink``);
- per Jira project: its coverage; and the keys of every ticket stored (``resolve_tickets``
  never refetches them).

A fetch reads the state and plans per repository / project (:func:`plan_github`,
:func:`plan_jira`): **full** (the whole lookback window, as on a first run) when there is no
usable state, the config of that repository / project changed (fingerprint), or the state
does not cover the run's window; else **incremental**: what changed since
``watermark - OVERLAP``.  Every plan is written next to its staging file (``*.plan.json``) so
the load knows what the batch covers.  A state file that is missing, unreadable, of another
version, or whose warehouse is gone only costs a full fetch, never a missed change.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from ccwatch.common.times import iso_z, parse_utc
from ccwatch.ingest.state import state_digest
from ccwatch.settings import RepoConfig, Settings

log = logging.getLogger("ccwatch")

# Safety overlap: an incremental fetch starts this long before the watermark.  It absorbs
# GitHub's asynchronous indexes (a merge commit's /commits/{sha}/pulls association, the PR
# list's updated_at order), clock skew between the sources and us, and a run that started
# late.  Refetching two days of activity is cheap; missing one change is not.
OVERLAP = timedelta(days=2)
# A deployment whose latest status is one of these does not change by itself: GitHub's
# auto_inactive only marks earlier *non-production* deployments inactive (staging counts its
# latest non-inactive status anyway).  Others (queued, pending, in_progress, no status yet)
# are refetched every run while inside the window; so are young production deployments
# (deployment_keep_days).
FINAL_DEPLOYMENT_STATES = ("success", "failure", "error", "inactive")








def _hash(data: Any) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


def project_fingerprint(settings: Settings, project: str) -> str:
    """Field names are resolved when tickets are normalised: a change means refetching them all."""
    jf = settings.jira.fields
    return _hash([project, jf.business_justification, jf.risk_assessment, jf.testing_plan, jf.postmortem,
                  list(settings.jira.required_fields)])


def repo_fingerprint(settings: Settings, rc: RepoConfig) -> str:
    """What the fetch and normalisation of a repository depend on (a change means a full fetch).
    The ticket pattern, the projects and their field config are in it: they decide which tickets
    the PR titles reference and how those are normalised, and ``resolve_tickets`` only sees the
    titles of the PRs fetched."""
    return _hash([rc.repo, rc.production_branch, list(rc.production_environments), list(rc.staging_environments),
                  settings.jira.ticket_key_pattern,
                  [project_fingerprint(settings, p) for p in sorted(settings.jira.project_keys)]])


def deployment_keep_days(settings: Settings) -> int:
    """How long a deployment with a final status still has its statuses refetched: the longest
    control window that runs from a deployment (PIR, post-mortem) or to it (deploy grace)."""
    w = settings.windows
    return max(w.pir_days, w.postmortem_days, -(-w.deploy_grace_hours // 24))


# --- plans -------------------------------------------------------------------------------


@dataclass(frozen=True)
class RepoPlan:
    repo: str
    mode: str                # "full" | "incremental"
    window_start: datetime   # as_of - lookback_days
    since: datetime          # full: window_start; incremental: watermark - OVERLAP
    tip: str | None = None   # production-branch tip at the last load (incremental)
    # environment -> [{"id", "created_at", "state"}]: stored deployments whose statuses are refetched
    open_deployments: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    # conditional requests (ingest/github/conditional.py): url key -> ETag of the last
    # complete load, and the rulesets the branch rules named then (used when the rules answer 304)
    validators: dict[str, str] = field(default_factory=dict)
    ruleset_ids: tuple[int, ...] = ()
    # first-parent commits of the production branch in the overlap that had no merged PR at the
    # last load: ({"sha", "committed_at"}, ...); their PRs are asked again even when the commits
    # listing answers 304 (GitHub indexes a merge commit's PRs asynchronously)
    unlinked: tuple[dict[str, str], ...] = ()
    # (r2) the stored activity log of the production branch is whole up to the watermark (the last
    # load read it: HTTP 200); False: the next fetch reads it again from the window start
    activity_complete: bool = False
    # (stop 29) the stored branch says "protected": false and its classic protection answered 404:
    # not asked again while the branch still says so (ingest/github/fetch.py)
    unprotected: bool = False

    @property
    def incremental(self) -> bool:
        return self.mode == "incremental"


@dataclass(frozen=True)
class JiraPlan:
    # (projects, mode, since) - one project search per group
    groups: tuple[tuple[tuple[str, ...], str, datetime], ...]
    known_keys: frozenset[str] = frozenset()  # stored tickets of incremental projects


def _usable(entry: Any, fingerprint: str, window_start: datetime) -> str | None:
    """Why a state entry cannot serve an incremental fetch (None: it can)."""
    if not isinstance(entry, dict):
        return "no state"
    if entry.get("fingerprint") != fingerprint:
        return "configuration changed"
    try:
        covered_from, watermark = parse_utc(entry["covered_from"]), parse_utc(entry["watermark"])
    except (KeyError, ValueError, TypeError):
        return "state entry malformed"
    if covered_from > window_start:
        return f"state covers only from {iso_z(covered_from)}"
    if watermark < window_start:
        return f"state ends at {iso_z(watermark)}, before the window"
    return None


def plan_github(settings: Settings, state: dict[str, Any] | None, as_of: datetime) -> dict[str, RepoPlan]:
    return {rc.repo: plan_github_repo(settings, state, as_of, rc) for rc in settings.github.repositories}


def plan_github_repo(settings: Settings, state: dict[str, Any] | None, as_of: datetime, rc: RepoConfig
                     ) -> RepoPlan:
    """The plan of ONE repository (each task of the per-repository fan-out plans its own)."""
    window_start = as_of - timedelta(days=settings.lookback_days)
    entry = ((state or {}).get("github") or {}).get(rc.repo)
    why = _usable(entry, repo_fingerprint(settings, rc), window_start)
    if why is None:
        since = parse_utc(entry["watermark"]) - OVERLAP
        plan = RepoPlan(rc.repo, "incremental", window_start, since, entry.get("tip"),
                        dict(entry.get("open_deployments") or {}), *_conditional(entry, rc),
                        unlinked=_unlinked_of(entry, since), activity_complete=entry.get("activity_complete") is True,
                        unprotected=entry.get("unprotected") is True)
    else:
        plan = RepoPlan(rc.repo, "full", window_start, window_start)
    log.info("GitHub %s: %s fetch since %s%s", rc.repo, plan.mode, iso_z(plan.since),
             f" ({why})" if why and state is not None else "")
    return plan


def plan_jira(settings: Settings, state: dict[str, Any] | None, as_of: datetime) -> JiraPlan:
    window_start = as_of - timedelta(days=settings.lookback_days)
    projects = (state or {}).get("jira") or {}
    by_since: dict[tuple[str, datetime], list[str]] = {}
    for p in settings.jira.project_keys:
        entry = projects.get(p)
        why = _usable(entry, project_fingerprint(settings, p), window_start)
        mode, since = ("incremental", parse_utc(entry["watermark"]) - OVERLAP) if why is None else ("full", window_start)
        by_since.setdefault((mode, since), []).append(p)
    groups = tuple((tuple(ps), mode, since) for (mode, since), ps in sorted(by_since.items(), key=lambda kv: kv[0][1]))
    incremental = {p for ps, mode, _ in groups if mode == "incremental" for p in ps}
    known = frozenset(k for k in (state or {}).get("jira_known_keys") or [] if k.split("-", 1)[0] in incremental)
    for ps, mode, since in groups:
        log.info("Jira %s: %s fetch updated since %s", ", ".join(ps), mode, iso_z(since))
    return JiraPlan(groups, known)


def fetched_through(as_of: datetime, started: datetime) -> datetime:
    """A fetch sees the sources as they are when it runs: it covers up to its as-of time, but
    never beyond its wall-clock start (a future-dated run cannot vouch for the future)."""
    return min(as_of, started)


def github_plan_meta(plans: dict[str, RepoPlan], as_of: datetime, started: datetime,
                     state: dict[str, Any] | None) -> dict[str, Any]:
    basis = (state or {}).get("loaded_as_of") if any(p.incremental for p in plans.values()) else None
    return {"source": "github", "as_of": iso_z(as_of), "fetched_through": iso_z(fetched_through(as_of, started)),
            "basis": basis, "state_sha256": state_digest(state) if basis and state else None,
            "repos": {r: {"mode": p.mode, "since": iso_z(p.since), "window_start": iso_z(p.window_start)}
                      for r, p in plans.items()}}


def combine_github_metas(metas: list[dict[str, Any]]) -> dict[str, Any]:
    """One GitHub plan meta (the shape :func:`github_plan_meta` gives for all repositories) from the
    per-repository ones of the fan-out.  ``fetched_through`` is the earliest of them (no repository
    claims more than every fetch saw); ``bases`` lists every load an incremental one builds on
    (:func:`missing_basis` checks them all)."""
    if not metas:
        return {"source": "github", "as_of": None, "fetched_through": None, "basis": None, "bases": [],
                "anchors": [], "repos": {}}
    bases = sorted({m["basis"] for m in metas if m.get("basis")})
    anchors = sorted({(m["basis"], m.get("state_sha256") or "") for m in metas if m.get("basis")})
    out: dict[str, Any] = {}
    for m in metas:  # keys the plans carry besides these (e.g. per-repository validators) are kept
        out.update({k: v for k, v in m.items() if k != "repos"})
    out.update(source="github", as_of=metas[0]["as_of"],
               fetched_through=iso_z(min(parse_utc(m["fetched_through"]) for m in metas)),
               basis=bases[-1] if bases else None, bases=bases,
               anchors=[{"basis": b, "state_sha256": h or None} for b, h in anchors],
               repos={r: e for m in metas for r, e in (m.get("repos") or {}).items()})
    return out


def jira_plan_meta(plan: JiraPlan, as_of: datetime, started: datetime, state: dict[str, Any] | None,
                   lookback_days: int) -> dict[str, Any]:
    window_start = as_of - timedelta(days=lookback_days)
    basis = (state or {}).get("loaded_as_of") if any(m == "incremental" for _, m, _ in plan.groups) else None
    return {"source": "jira", "as_of": iso_z(as_of), "fetched_through": iso_z(fetched_through(as_of, started)),
            "basis": basis, "state_sha256": state_digest(state) if basis and state else None,
            "projects": {p: {"mode": mode, "since": iso_z(since), "window_start": iso_z(window_start)}
                         for ps, mode, since in plan.groups for p in ps},
            "known_keys": sorted(plan.known_keys)}


def _conditional(entry: dict[str, Any], rc: RepoConfig) -> tuple[dict[str, str], tuple[int, ...]]:
    """A state entry's ETags and ruleset ids (an entry without them: no conditional request).
    An entry without the ``unlinked`` list (written before it existed) does not say which
    commits of the overlap still lack their PRs: its commits-listing ETag is not sent, so the
    listing answers 200 and every commit of the overlap has its PRs asked again."""
    validators = entry.get("validators")
    ids = entry.get("ruleset_ids")
    if not isinstance(validators, dict) or not isinstance(ids, list):
        return {}, ()
    listing = f"/repos/{rc.repo}/commits"
    return ({str(k): str(v) for k, v in validators.items() if isinstance(v, str) and v
             and (isinstance(entry.get("unlinked"), list) or not str(k).split("?", 1)[0].endswith(listing))},
            tuple(int(i) for i in ids))


def _unlinked_of(entry: dict[str, Any], since: datetime) -> tuple[dict[str, str], ...]:
    """The state's unlinked commits still inside the overlap of this plan."""
    out = []
    for u in entry.get("unlinked") or []:
        try:
            if isinstance(u, dict) and isinstance(u.get("sha"), str) and parse_utc(u["committed_at"]) >= since:
                out.append({"sha": u["sha"], "committed_at": iso_z(parse_utc(u["committed_at"]))})
        except (KeyError, ValueError, TypeError):
            continue
    return tuple(out)
