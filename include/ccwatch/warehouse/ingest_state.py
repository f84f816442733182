"""The ingest state a committed load leaves for the next fetch (computed inside the load transaction).

``compute_state`` reads the warehouse the load just wrote (so it lives here, with the warehouse,
and the fetch stages never open DuckDB): per repository the coverage ``[covered_from,
watermark]``, the production-branch tip, whether its activity log is whole, whether the branch is
unprotected (``"protected": false`` and a 404 for its classic protection), the deployments
still open, the first-parent commits of the next overlap that have no merged PR, and the ETags
the fetch saw; per Jira project its
coverage; and the keys of every stored ticket.  ``ccwatch.ingest.state`` writes it to
``CCWATCH_HOME/state/ingest_state.json`` after the commit; ``ccwatch.ingest.plan`` reads it.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from ccwatch.common.times import iso_z, naive_utc, parse_utc
from ccwatch.ingest.plan import (
    FINAL_DEPLOYMENT_STATES,
    OVERLAP,
    deployment_keep_days,
    project_fingerprint,
    repo_fingerprint,
)
from ccwatch.ingest.state import STATE_VERSION
from ccwatch.settings import RepoConfig, Settings
from ccwatch.warehouse.kept_protection import unprotected
from ccwatch.warehouse.raw_lists import items_with_ids, payload_text
from ccwatch.warehouse.stored_branch import stored_branch


def _union(prev: tuple[datetime, datetime] | None, new: tuple[datetime, datetime]) -> tuple[datetime, datetime]:
    """Coverage after a fetch: joined when the intervals touch, else the one reaching later."""
    if prev is None:
        return new
    (a, b), (c, d) = prev, new
    if c <= b and a <= d:
        return min(a, c), max(b, d)
    return prev if b >= d else new


def _prev_interval(entry: Any, fingerprint: str) -> tuple[datetime, datetime] | None:
    if not isinstance(entry, dict) or entry.get("fingerprint") != fingerprint:
        return None
    try:
        return parse_utc(entry["covered_from"]), parse_utc(entry["watermark"])
    except (KeyError, ValueError, TypeError):
        return None


def _fetched(meta: dict[str, Any], m: dict[str, Any]) -> tuple[datetime, datetime]:
    lo = parse_utc(m["window_start"]) if m["mode"] == "full" else parse_utc(m["since"])
    return lo, parse_utc(meta["fetched_through"])


def compute_state(con: Any, settings: Settings, as_of: datetime, prev: dict[str, Any] | None,
                  metas: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The state to publish once the load that carries ``metas`` commits (``con`` sees its rows)."""
    prev = prev or {}
    state: dict[str, Any] = {"version": STATE_VERSION, "loaded_as_of": iso_z(as_of), "github": {}, "jira": {}}
    gh = metas.get("github") or {}
    for rc in settings.github.repositories:
        m = (gh.get("repos") or {}).get(rc.repo)
        if m is None:
            continue
        fp = repo_fingerprint(settings, rc)
        covered_from, watermark = _union(_prev_interval((prev.get("github") or {}).get(rc.repo), fp), _fetched(gh, m))
        state["github"][rc.repo] = {
            "fingerprint": fp, "covered_from": iso_z(covered_from), "watermark": iso_z(watermark),
            "tip": stored_branch(con, rc.repo, rc.production_branch).tip, "activity_complete": _activity_complete(con, rc),
            "unprotected": unprotected(con, rc.repo, rc.production_branch),
            "open_deployments": _open_deployments(con, settings, rc, watermark),
            "unlinked": _unlinked_commits(con, rc, watermark), **_validators(con, rc, as_of)}
    jm = metas.get("jira") or {}
    for p in settings.jira.project_keys:
        m = (jm.get("projects") or {}).get(p)
        if m is None:
            continue
        fp = project_fingerprint(settings, p)
        covered_from, watermark = _union(_prev_interval((prev.get("jira") or {}).get(p), fp), _fetched(jm, m))
        state["jira"][p] = {"fingerprint": fp, "covered_from": iso_z(covered_from), "watermark": iso_z(watermark)}
    state["jira_known_keys"] = [k for (k,) in con.execute(
        "SELECT key FROM tickets WHERE ticket_exists ORDER BY key").fetchall()]
    return state


def _unlinked_commits(con: Any, rc: RepoConfig, watermark: datetime) -> list[dict[str, str]]:
    """First-parent commits of the production branch committed within OVERLAP before the
    watermark (the next incremental fetch's overlap) that have no merged PR: a direct push, or a
    merge commit whose PR association GitHub had not indexed yet (rechecked while in the overlap)."""
    cutoff = naive_utc(watermark - OVERLAP)
    rows = con.execute(
        "SELECT sha, committed_at FROM commits WHERE repo = ? AND branch = ? AND committed_at >= ? "
        "AND coalesce(len(pr_numbers), 0) = 0 ORDER BY committed_at, sha",
        [rc.repo, rc.production_branch, cutoff]).fetchall()
    return [{"sha": sha, "committed_at": iso_z(at.replace(tzinfo=UTC))} for sha, at in rows]


def _validators(con: Any, rc: RepoConfig, as_of: datetime) -> dict[str, Any]:
    """The ETags the fetch of this load saw (its ``validators`` raw record; one of another date
    is stale, so none then)."""
    row = con.execute("SELECT payload FROM raw_payloads WHERE source = 'github' AND kind = 'validators' "
                      "AND natural_key = ?", [rc.repo]).fetchone()
    payload = json.loads(row[0]) if row and row[0] else None
    if not isinstance(payload, dict) or payload.get("as_of") != iso_z(as_of):
        return {}
    return {"validators": dict(payload.get("validators") or {}), "ruleset_ids": list(payload.get("ruleset_ids") or [])}


def _activity_complete(con: Any, rc: RepoConfig) -> bool:
    """(r2) The stored activity log of the production branch is whole up to this load: the load
    holds a readable one (HTTP 200, or a 304 that kept it).  After a 403/404 the next fetch reads
    it again from the window start (an incremental read would leave a gap)."""
    row = con.execute("SELECT status_code FROM raw_payloads WHERE source = 'github' AND kind = 'activity' "
                      "AND natural_key = ?", [f"{rc.repo}:{rc.production_branch}"]).fetchone()
    return bool(row and row[0] == 200)


def _open_deployments(con: Any, settings: Settings, rc: RepoConfig, watermark: datetime) -> dict[str, list]:
    """Stored deployments of the window whose statuses the next incremental fetch refetches: those
    without a final status, and production ones young enough that a control window (deploy grace,
    PIR, post-mortem) may still depend on them, so a late status (a rollback marked failure, a
    manual inactive) is seen while it can still change a result.  Staging deployments that GitHub
    auto-inactivates need nothing: staging counts its latest status other than inactive."""
    naive = naive_utc(watermark)
    rows = con.execute(
        """
        WITH st AS (
            SELECT deployment_id, arg_max(state, struct_pack(t := created_at, i := status_id)) AS latest
            FROM deployment_statuses WHERE repo = ? GROUP BY ALL
        )
        SELECT d.environment, d.deployment_id, d.created_at, st.latest, d.sha
        FROM deployments d LEFT JOIN st USING (deployment_id)
        WHERE d.repo = ? AND d.created_at >= ?
          AND (st.latest IS NULL OR NOT list_contains(?, st.latest)
               OR (list_contains(?, d.environment) AND d.created_at >= ?))
        ORDER BY d.environment, d.created_at, d.deployment_id
        """,
        [rc.repo, rc.repo, naive - timedelta(days=settings.lookback_days), list(FINAL_DEPLOYMENT_STATES),
         list(rc.production_environments), naive - timedelta(days=deployment_keep_days(settings))]).fetchall()
    wanted: dict[str, set[str]] = {}
    for env, dep_id, *_ in rows:
        wanted.setdefault(env, set()).add(str(dep_id))
    nodes = _deployment_node_ids(con, rc, wanted)
    out: dict[str, list] = {}
    for env, dep_id, created, latest, sha in rows:
        # created_at and sha: the GraphQL statuses lookup checks the node it gets against them
        entry = {"id": int(dep_id), "created_at": iso_z(created.replace(tzinfo=UTC)), "state": latest, "sha": sha}
        if nodes.get(int(dep_id)):
            entry["node_id"] = nodes[int(dep_id)]  # GraphQL looks the statuses up by node id
        out.setdefault(env, []).append(entry)
    return out


def _deployment_node_ids(con: Any, rc: RepoConfig, wanted: dict[str, set[str]]) -> dict[int, str]:
    """Deployment id -> GraphQL node id, from the stored REST deployments lists (of each environment,
    the wanted deployments' items only when the list is held as items: not a long list's every item)."""
    out: dict[int, str] = {}
    for env in sorted(wanted):
        key = ("github", "deployments", f"{rc.repo}:{env}")
        items = items_with_ids(con, key, wanted[env])
        if items is None:
            text = payload_text(con, *key, "AND status_code = 200")
            items = json.loads(text) if text else None
        for d in items if isinstance(items, list) else []:
            if isinstance(d, dict) and d.get("id") is not None and isinstance(d.get("node_id"), str):
                out[int(d["id"])] = d["node_id"]
    return out


def missing_basis(con: Any, metas: dict[str, dict[str, Any]]) -> str | None:
    """An incremental batch builds on the load that wrote its state: that load must be in this
    warehouse (a restored or replaced warehouse would otherwise silently miss changes)."""
    for meta in metas.values():
        bases = (meta or {}).get("bases") or [(meta or {}).get("basis")]  # several: the per-repository fan-out
        for basis in filter(None, bases):
            if not con.execute("SELECT 1 FROM runs WHERE as_of = ?", [parse_utc(basis).replace(tzinfo=None)]).fetchone():
                return (f"the {meta.get('source')} fetch is incremental on the load of {basis}, which this "
                        "warehouse has no record of")
    return None
