"""What each evidence folder holds: the raw records of one change, or of one repository.

A change folder holds the pull request (REST ``pull.json`` and/or the GraphQL node
``pull.graphql.json``), its reviews, the head commit's check runs and statuses, the ticket with
its changelog, and per environment the deployments that carry the change with their statuses;
a direct push holds its commit and the commit's PR lookup.  A repository folder holds the
repository, branch, protection, rules, rulesets, environments and (r2) the production branch's
activity log (CC8.1-14, and when each direct push reached the branch) and when the deployments lists
were last fetched.  Each file is the raw record as fetched ({source, kind, natural_key, url,
fetched_at, etag, status_code, payload}); what is absent is listed, never invented.

(Issue #15) The lists many changes share and the fetch asks again every night (an environment's
deployments, Jira's field list: a 304 moves their fetch time) are named in a change folder without
that time, so a change whose own records did not move keeps its folder's bytes from one evidence date
to the next; the lists' fetch times are in the repository folder (``deployment_lists.json``) and in
the top-level ``jira_field_list.json`` (``folder.py``).
"""

from __future__ import annotations

from typing import Any

from ccwatch.common.changes import is_direct_push
from ccwatch.common.times import parse_ts_or_none
from ccwatch.ingest.github.repositories import branch_tip
from ccwatch.publish.evidence.reader import RawEvidence, head_of
from ccwatch.settings import Settings
from ccwatch.warehouse.settings_history import SettingsHistory, settings_at

TICKET_FIELDS = "ticket_fields.json"  # (r2) the Jira field ids of ticket.json -> their names
SETTINGS_AT_MERGE = "settings_at_merge.json"  # (r2) the repository settings in force at the merge


# what a change folder says of a shared list's record: not its fetch time (see the module's docstring)
_LIST_SOURCE = ("source", "kind", "natural_key", "url", "status_code")


def field_names(raw: RawEvidence) -> tuple[dict[str, str], dict | None]:
    """Jira field id -> name from the stored field list (``/rest/api/2/field``, raw kind ``fields``),
    parsed once per run; and that record's provenance without its fetch time (None when no list is
    stored)."""
    rec = raw.get("jira", "fields", "fields")
    if raw.field_names is None:
        payload = (rec or {}).get("payload")
        raw.field_names = {str(f["id"]): str(f.get("name")) for f in payload or []
                           if isinstance(f, dict) and f.get("id") is not None} if isinstance(payload, list) else {}
    src = {k: rec[k] for k in _LIST_SOURCE} if rec else None
    return raw.field_names, src


def ticket_fields(raw: RawEvidence, ticket: dict, changelog: dict | None) -> dict:
    """ticket_fields.json: every field id of the ticket's ``fields`` and of its changelog items
    (``fieldId``), mapped to its name in the stored Jira field list; ids the list lacks are listed
    apart, and names that several fields share are named (Jira field names are not unique).  The
    raw ticket.json is left byte-exact: this file is added beside it."""
    names, src = field_names(raw)
    payload = ticket.get("payload") if isinstance(ticket, dict) else None
    ids = set(((payload or {}).get("fields") or {}).keys()) if isinstance(payload, dict) else set()
    for h in ((changelog or {}).get("payload") or []) if isinstance((changelog or {}).get("payload"), list) else []:
        for item in (h.get("items") or []) if isinstance(h, dict) else []:
            if isinstance(item, dict) and item.get("fieldId"):
                ids.add(str(item["fieldId"]))
    fields = {i: names[i] for i in sorted(ids) if i in names}
    by_name = raw.field_ids_by_name
    if by_name is None:  # once per run, like the names
        by_name = raw.field_ids_by_name = {}
        for i, n in names.items():
            by_name.setdefault(n, []).append(i)
    shared = {n: sorted(by_name[n]) for n in sorted(set(fields.values())) if len(by_name[n]) > 1}
    return {"ticket": ticket.get("natural_key"), "fields": fields,
            "not_in_field_list": sorted(i for i in ids if i not in names),
            "names_shared_by_several_fields": shared,
            "field_list": src or {"not_found": "jira fields fields (no stored /rest/api/2/field list)"}}


def settings_at_merge(raw: RawEvidence, change: dict) -> dict:
    """settings_at_merge.json: the repository's settings snapshot in force when the change reached the
    production branch (``warehouse.settings_history.settings_at``)."""
    if raw.settings_history is None:
        raw.settings_history = SettingsHistory(raw.con)
    out = settings_at(raw.settings_history, change.get("repo") or "", change.get("merged_at"))
    return {"change_id": change.get("change_id"), **out}


def _deployments(raw: RawEvidence, settings: Settings, change: dict, graphql: list) -> list[dict]:
    """Per production/staging environment, the deployments that carry the change, oldest first, up
    to the first that counts as successful (``change_deployments``: the definition the controls
    use, ``warehouse.facts``); each with its statuses record, and the GraphQL Deployment nodes
    appended to ``graphql``."""
    repo = change.get("repo")
    try:
        rc = settings.repo(repo)
    except KeyError:
        return []
    raw.repo_deployment_statuses(repo)
    carried = raw.change_deployments(change["change_id"])
    out = []
    for env in rc.production_environments + rc.staging_environments:
        rec = raw.get("github", "deployments", f"{repo}:{env}")
        if rec is None:
            out.append({"environment": env, "not_found": f"no deployments payload for {repo}:{env}"})
            continue
        items = raw.deployments_by_id(repo, env, rec)
        kept = []
        for dep_id in carried.get(env, ()):
            dkey = f"{repo}/deployments/{dep_id}"
            entry = {"deployment": items.get(dep_id), "statuses": raw.deployment_statuses("deployment_statuses", dkey)}
            gql = raw.deployment_statuses("gql_deployment_statuses", dkey)
            if gql is not None:  # the GraphQL Deployment node (deployment_statuses.graphql.json)
                entry["statuses_graphql"] = {"file": "deployment_statuses.graphql.json", "natural_key": dkey}
                graphql.append(gql)
            kept.append(entry)
        out.append({"environment": env, "source": {k: rec[k] for k in ("url", "status_code")}, "deployments": kept})
    return out


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
    if change.get("change_kind") == "direct_push" or is_direct_push(cid):
        sha = change.get("sha")
        try:
            branch = settings.repo(repo).production_branch
        except KeyError:
            branch = None
        commits = raw.get("github", "commits", f"{repo}:{branch}") if branch else None
        match = [c for c in (commits or {}).get("payload") or [] if isinstance(c, dict) and c.get("sha") == sha]
        if match:
            files["commit.json"] = dict(commits, payload=match[0])
        elif (single := raw.get("github", "commit", f"{repo}@{sha}")) is not None:
            files["commit.json"] = single  # (r2) dated before the listing: fetched alone
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
        head = head_of(pull, gql)
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
                changelog = put("ticket_changelog.json", "jira", "changelog", key)
                files[TICKET_FIELDS] = ticket_fields(raw, files["ticket.json"], changelog)
    files[SETTINGS_AT_MERGE] = settings_at_merge(raw, change)
    graphql: list[dict] = []
    files["deployments.json"] = _deployments(raw, settings, change, graphql)
    if graphql:
        files["deployment_statuses.graphql.json"] = graphql
    files["_missing"] = missing
    return files


def prefetch_run(raw: RawEvidence, settings: Settings, repos) -> None:
    """Read in one query the per-repository records the folders of a run ask for: each repository
    folder's settings records (:func:`repo_evidence_files`), each configured repository's deployments
    lists and production-branch commit list, and the Jira field list."""
    keys = [("jira", "fields", "fields")]
    for repo in repos:
        keys += [("github", "gql_repository", repo), ("github", "repo", repo)]
        try:
            rc = settings.repo(repo)
        except KeyError:
            continue
        b = rc.production_branch
        keys += [("github", k, f"{repo}:{b}") for k in ("branch", "branch_protection", "branch_rules", "activity")]
        keys += [("github", "environment", f"{repo}:{e}") for e in rc.production_environments]
    for rc in settings.github.repositories:
        keys.append(("github", "commits", f"{rc.repo}:{rc.production_branch}"))
        keys += [("github", "deployments", f"{rc.repo}:{e}")
                 for e in rc.production_environments + rc.staging_environments]
    raw.prefetch_shared(keys)


def _rest_branch(raw: RawEvidence, repo: str, branch: str) -> bool:
    """REST's branch is a file of the repository folder (``branch.json``; missing evidence when absent),
    unless the GraphQL node holds the branch's tip (stop 31: ``repository.graphql.json``) and REST's
    branch was not asked (or revalidated) since: the fetch asks it only for its ``protected`` flag where
    GitHub would not give that flag in the node, so an older copy is not this night's evidence."""
    node = raw.peek("github", "gql_repository", repo)
    if node is None or branch_tip(node.get("payload"), branch) is None:
        return True
    rest = raw.peek("github", "branch", f"{repo}:{branch}")
    if rest is None:
        return False
    asked, settings_at_ = parse_ts_or_none(rest.get("fetched_at")), parse_ts_or_none(node.get("fetched_at"))
    return settings_at_ is None or (asked is not None and asked >= settings_at_)


def deployment_lists(raw: RawEvidence, repo: str, environments) -> list[dict]:
    """deployment_lists.json: per production/staging environment, where and when its deployments list
    was last fetched (or revalidated): what the change folders' ``deployments.json`` name without a time."""
    out = []
    for env in environments:
        rec = raw.get("github", "deployments", f"{repo}:{env}")
        out.append({"environment": env, "source": {k: rec[k] for k in ("url", "fetched_at", "status_code")}}
                   if rec is not None else {"environment": env, "not_found": f"no deployments payload for {repo}:{env}"})
    return out


def repo_evidence_files(raw: RawEvidence, settings: Settings, repo: str) -> dict[str, Any]:
    files: dict[str, Any] = {}
    missing: list[str] = []
    try:
        rc = settings.repo(repo)
    except KeyError:
        rc = None
    # the settings: the GraphQL node (issue #15), or the REST body a warehouse from before holds
    pairs = [("repository.graphql.json", "gql_repository", repo)]
    if raw.get("github", "gql_repository", repo) is None and raw.get("github", "repo", repo) is not None:
        pairs = [("repo.json", "repo", repo)]
    if rc:
        b = rc.production_branch
        if _rest_branch(raw, repo, b):
            pairs.append(("branch.json", "branch", f"{repo}:{b}"))
        pairs += [("branch_protection.json", "branch_protection", f"{repo}:{b}"),
                  ("branch_rules.json", "branch_rules", f"{repo}:{b}"), ("activity.json", "activity", f"{repo}:{b}")]
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
        files["deployment_lists.json"] = deployment_lists(raw, repo, rc.production_environments +
                                                          rc.staging_environments)
    files["_missing"] = missing
    return files
