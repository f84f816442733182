"""(issue #15) The repositories' settings, asked org-wide by GraphQL before their fetches.

A repository's settings (visibility, archived, default branch, the merge methods it allows ...) are
evidence (the repository folder's ``repository.graphql.json``).  REST's ``GET /repos/{o}/{r}``
gave them, revalidated with its ETag, but GitHub answers it 200 whenever a push moved the
repository's ``pushed_at``: one counted request for every repository that changed, every night.
GraphQL has no conditional requests, but one document can name 50 repositories
(``CcwatchRepositories``, 1 point), so :func:`stage_repositories` asks every configured repository
``REPOSITORIES_BATCH`` at a time before the repositories are fetched (beside the reconciliation
counts, ``counts.py``) and stages the nodes::

    staging/<date>/github_repositories.json   {"as_of", "url", "repos": {repo: {"node": <as returned>,
                                                                              "fetched_at"}}}

Each repository's fetch takes its record from there (:func:`staged_repository`; raw kind
``gql_repository``, natural key ``owner/name``, payload the node as returned, url
``...#CcwatchRepositories``), or asks it alone (``CcwatchRepository``, :func:`fetch_repository`)
when the file has no node of it for the date.  Fail closed: an HTTP or GraphQL error, a missing
node or a node of another repository (renamed or transferred) fails the stage, naming the
repository; the date then cannot be loaded until a fetch succeeds.

(stop 31) Each node also holds its production branch (``productionBranch``): the tip
(:func:`branch_tip`), and what REST's ``"protected"`` flag says (:func:`protected`), which the
protection skip and the load's kept-protection check read.  REST's ``GET /branches/{b}`` that gave
both answered 200 after every push.  GitHub refuses ``branchProtectionRule`` to a token without the
Administration permission: :func:`_query` then asks again without the flags, and REST's branch is
asked where a flag is needed.
"""

from __future__ import annotations

import logging
import re
from datetime import datetime
from pathlib import Path
from typing import Any

from github import Github

from ccwatch.common.endpoints import Endpoint
from ccwatch.common.files import read_json_optional, write_json_atomic
from ccwatch.common.paths import staging_dir
from ccwatch.common.times import iso_z, utc_now_iso
from ccwatch.ingest.errors import SourceError
from ccwatch.ingest.github.answers import permission
from ccwatch.ingest.github.client import own_client
from ccwatch.ingest.github.graphql import REPO_OP, REPOS_OP, GraphQL, GraphQLErrors, org_batches
from ccwatch.ingest.github.queries import REPOSITORIES_BATCH, repositories_document
from ccwatch.ingest.records import RawRecord
from ccwatch.settings import RepoConfig, Settings

log = logging.getLogger(__name__)

REPOSITORIES_FILE = "github_repositories.json"
KIND = "gql_repository"


def repositories_path(home: Path, as_of: datetime) -> Path:
    return staging_dir(home, as_of) / REPOSITORIES_FILE


# the variables that ask a branch's protection flag: ``$p0`` ... (CcwatchRepositories), ``$protection``
FLAGS = frozenset({"protection", *(f"p{i}" for i in range(REPOSITORIES_BATCH))})


def qualified(branch: str) -> str:
    return f"refs/heads/{branch}"


def branch_tip(node: Any, branch: str) -> str | None:
    """The tip of ``branch`` in a ``gql_repository`` node (its ``productionBranch``), or None when the
    node does not name that branch (a node from before stop 31, or from a config naming another
    production branch; GitHub answers ``null`` for a branch that does not exist)."""
    ref = node.get("productionBranch") if isinstance(node, dict) else None
    if not isinstance(ref, dict) or ref.get("name") != branch:
        return None
    oid = (ref.get("target") or {}).get("oid") if isinstance(ref.get("target"), dict) else None
    return oid if isinstance(oid, str) and oid else None


def protected(node: Any, branch: str) -> bool | None:
    """What REST's ``"protected"`` flag of ``branch`` says, from a ``gql_repository`` node asked with
    the flag (``$p``): a classic rule for the ref or a rule of an active ruleset (API-NOTES: GitHub
    says true for either).  None: the node was asked without it, or is of another branch."""
    ref = node.get("productionBranch") if isinstance(node, dict) else None
    if not isinstance(ref, dict) or ref.get("name") != branch or "branchProtectionRule" not in ref:
        return None
    rules = ref.get("rules")
    if not isinstance(rules, dict) or not isinstance(rules.get("totalCount"), int):
        return None
    return ref["branchProtectionRule"] is not None or rules["totalCount"] > 0


def _mismatch(node: Any, repo: str) -> str | None:
    """Why ``node`` is not ``repo``'s Repository node (None: it is).  GitHub compares names without case."""
    if not isinstance(node, dict):
        return "no repository in the answer"
    name = node.get("nameWithOwner")
    if not isinstance(name, str) or name.lower() != repo.lower():
        return (f"the answer names {name!r}: the repository was renamed or transferred; put its current "
                f"name in the config (github.repositories)")
    return None


def _checked(node: Any, repo: str, shown: str) -> dict[str, Any]:
    why = _mismatch(node, repo)
    if why is not None:
        raise SourceError(f"GitHub {repo}: {shown}: {why}")
    return node


def _explained(text: str, repos: list[str]) -> str:
    """A GraphQL error's ``(at r3)`` with the repository that alias asked for, and what a NOT_FOUND
    means (as the REST client says of a 404 on the repository)."""
    named: list[str] = []

    def name(m: re.Match) -> str:
        i = int(m.group(1))
        if i >= len(repos):
            return m.group(0)
        named.append(repos[i])
        return f"(at r{i}: {repos[i]}"
    text = re.sub(r"\(at r(\d+)", name, text)
    if "NOT_FOUND" in text:
        who = ", ".join(dict.fromkeys(named)) or (repos[0] if len(repos) == 1 else "a repository of the batch")
        text += (f". {who} does not exist or the token cannot see it (GitHub answers NOT_FOUND for a private "
                 f"repository the token has no access to): it needs {permission('')}")
    return text


def _query(g: GraphQL, op: str, variables: dict[str, Any], document: str | None, repos: list[str]
           ) -> tuple[dict[str, Any], int]:
    """(the answer's data, requests made): asked with every branch's protection flag (``$p0`` ... /
    ``$protection`` true); errors only under ``productionBranch`` (GitHub answers ``FORBIDDEN`` for
    ``branchProtectionRule`` to a token without the Administration permission) ask it again without
    the flags, which are then unknown (the fetch asks REST's branch where it needs one).  Any other
    error raises SourceError naming the repositories."""
    try:
        try:
            return g.query(op, variables, document), 1
        except GraphQLErrors as exc:
            if not exc.only_under("productionBranch"):
                raise
            log.warning("GitHub: %s: the production branches' protection flags of %s cannot be read (%s): asked "
                        "again without them; where the flag is needed, the branch is asked through REST",
                        op, ", ".join(repos), exc)
            return g.query(op, {k: v if k not in FLAGS else False for k, v in variables.items()}, document), 2
    except SourceError as exc:
        raise SourceError(_explained(str(exc), repos)) from None


def fetch_repositories(endpoint: Endpoint, repos: list[RepoConfig], *, budget: Any = None,
                       client: Github | None = None) -> dict[str, Any]:
    """``{"url", "repos": {repo: {"node", "fetched_at"}}}`` for ``repos``, ``REPOSITORIES_BATCH`` a
    request, each node with its production branch's tip and protection flag (:func:`_query`).  Any
    HTTP or GraphQL error but the flags', or a missing or other repository's node, raises SourceError
    naming the repository (never a partial set)."""
    out: dict[str, Any] = {}
    url, requests = "", 0
    with own_client(endpoint, client) as gh:
        branches = {rc.repo: rc.production_branch for rc in repos}
        for g, chunk in org_batches(gh, budget, list(branches), REPOSITORIES_BATCH, "repository settings"):
            url = g.record_url(REPOS_OP)
            variables: dict[str, Any] = {}
            for i, repo in enumerate(chunk):
                variables[f"o{i}"], variables[f"n{i}"] = repo.split("/", 1)
                variables[f"q{i}"], variables[f"p{i}"] = qualified(branches[repo]), True
            data, asked = _query(g, REPOS_OP, variables, repositories_document(len(chunk)), chunk)
            requests += asked
            fetched_at = utc_now_iso()
            for i, repo in enumerate(chunk):
                out[repo] = {"node": _checked(data.get(f"r{i}"), repo, f"POST {g.shown} ({REPOS_OP})"),
                             "fetched_at": fetched_at}
    log.info("GitHub: the settings of %d repositories in %d GraphQL request(s)", len(out), requests)
    return {"url": url, "repos": out}


def stage_repositories(settings: Settings, endpoint: Endpoint, as_of: datetime, home: Path, *, budget: Any = None
                       ) -> dict[str, Any]:
    """Fetch the settings of every configured repository and stage them (atomically) for the date."""
    path = repositories_path(home, as_of)
    path.unlink(missing_ok=True)  # a failed attempt leaves none (its repositories then ask their own)
    got = fetch_repositories(endpoint, list(settings.github.repositories), budget=budget)
    write_json_atomic(path, {"as_of": iso_z(as_of), **got})
    return {"repos": len(got["repos"]), "file": str(path)}


def staged_repository(home: Path, as_of: datetime, rc: RepoConfig) -> RawRecord | None:
    """The ``gql_repository`` record of ``rc`` from the date's staged settings, or None when the file
    holds no node of it for the date (then its fetch asks its own)."""
    staged = read_json_optional(repositories_path(home, as_of),
                                f"GitHub {rc.repo}: the staged repository settings (its own are asked alone)")
    if not isinstance(staged, dict) or staged.get("as_of") != iso_z(as_of):
        return None
    entry = (staged.get("repos") or {}).get(rc.repo)
    if not isinstance(entry, dict) or _mismatch(entry.get("node"), rc.repo) is not None:
        return None
    url, fetched_at = staged.get("url"), entry.get("fetched_at")
    if not isinstance(url, str) or not url or not isinstance(fetched_at, str) or not fetched_at:
        return None
    return RawRecord(source="github", kind=KIND, natural_key=rc.repo, url=url, fetched_at=fetched_at,
                     payload=entry["node"], etag=None, status_code=200)


def fetch_repository(r: Any, rc: RepoConfig) -> RawRecord:
    """``rc``'s ``gql_repository`` record asked alone (``CcwatchRepository``; ``r``: its ``client.RepoClient``)."""
    g = GraphQL(r)
    owner, name = rc.repo.split("/", 1)
    data, _ = _query(g, REPO_OP, {"owner": owner, "name": name, "qualifiedName": qualified(rc.production_branch),
                                  "protection": True}, None, [rc.repo])
    node = _checked(data.get("repository"), rc.repo, f"POST {g.shown} ({REPO_OP})")
    return r.record(KIND, rc.repo, g.record_url(REPO_OP), node)
