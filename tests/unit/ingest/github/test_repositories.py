"""The repositories' settings asked org-wide by GraphQL and staged for their fetches
(ingest/github/repositories.py, issue #15): no REST ``GET /repos/{o}/{r}`` per repository."""

from __future__ import annotations

import json

import pytest
from ccwatch.common.endpoints import Endpoint
from ccwatch.common.times import parse_as_of
from ccwatch.ingest.errors import SourceError
from ccwatch.ingest.github import repositories as R
from ccwatch.ingest.github.queries import REPOSITORIES_BATCH, repositories_document
from ccwatch.ingest.records import RawRecord
from ccwatch.settings import RepoConfig

from tests.helpers.graphql_client import CannedClient

AS_OF = parse_as_of("2026-11-25")
RC = RepoConfig(repo="acme/api", production_branch="main", production_environments=("production",))
ENDPOINT = Endpoint("https://api.github.com", token="t")


def node(repo: str, **extra) -> dict:
    return {"id": "R_kgDOxyz", "nameWithOwner": repo, "url": f"https://github.com/{repo}", "visibility": "PRIVATE",
            "isArchived": False, "defaultBranchRef": {"name": "main"}, "pushedAt": "2026-11-24T10:00:00Z", **extra}


def repos(n: int) -> list[RepoConfig]:
    return [RepoConfig(repo=f"acme/r{i:03}", production_branch="main", production_environments=("production",))
            for i in range(n)]


def staged(home, entry=..., **top) -> None:
    body = {"as_of": "2026-11-25T00:00:00Z", "url": "https://api.github.com/graphql#CcwatchRepositories",
            "repos": {RC.repo: {"node": node(RC.repo), "fetched_at": "2026-11-25T02:00:01Z"} if entry is ... else entry}}
    body.update(top)
    path = R.repositories_path(home, AS_OF)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(body), encoding="utf-8")


def test_fifty_repositories_a_request_each_node_kept_as_returned():
    rcs = repos(REPOSITORIES_BATCH + 3)
    client = CannedClient([{"data": {f"r{i}": node(rc.repo) for i, rc in enumerate(rcs[:REPOSITORIES_BATCH])}},
                           {"data": {f"r{i}": node(rc.repo, isArchived=True)
                                     for i, rc in enumerate(rcs[REPOSITORIES_BATCH:])}}])
    out = R.fetch_repositories(ENDPOINT, rcs, client=client)
    sent = client.requester.sent
    assert [s["operationName"] for s in sent] == ["CcwatchRepositories"] * 2
    assert sent[1]["variables"] == {"o0": "acme", "n0": "r050", "q0": "refs/heads/main", "p0": True,
                                    "o1": "acme", "n1": "r051", "q1": "refs/heads/main", "p1": True,
                                    "o2": "acme", "n2": "r052", "q2": "refs/heads/main", "p2": True}
    assert out["url"] == "https://api.github.com/graphql#CcwatchRepositories"
    assert out["repos"]["acme/r052"]["node"] == node("acme/r052", isArchived=True)
    assert out["repos"]["acme/r000"]["node"] == node("acme/r000")
    assert set(out["repos"]) == {rc.repo for rc in rcs}


@pytest.mark.parametrize("answer, said", [
    ({"data": {"r0": node("acme/r000"), "r1": None}}, "acme/r001"),
    ({"data": {"r0": node("acme/r000")}}, "acme/r001"),
    ({"data": {"r0": node("acme/r000"), "r1": node("acme/renamed")}}, "acme/r001.*acme/renamed"),
    ({"data": {"r0": node("acme/r000"), "r1": None},
      "errors": [{"type": "NOT_FOUND", "message": "Could not resolve to a Repository with the name 'acme/r001'.",
                  "path": ["r1"]}]},
     r"NOT_FOUND.*\(at r1: acme/r001\).*acme/r001 does not exist or the token cannot see it.*'Metadata: read'"),
])
def test_a_batch_with_an_error_or_a_missing_repository_fails_naming_it(answer, said):
    with pytest.raises(SourceError, match=said) as err:
        R.fetch_repositories(ENDPOINT, repos(2), client=CannedClient([answer]))
    assert "CcwatchRepositories" in str(err.value)


@pytest.mark.parametrize("n, said", [
    (2, r"NOT_FOUND.*\. a repository of the batch does not exist or the token cannot see it"),
    (1, r"NOT_FOUND.*\. acme/r000 does not exist or the token cannot see it"),
])
def test_a_not_found_without_an_alias_names_what_it_can(n, said):
    """An error without a ``path`` (no alias to name the repository): the repository when the batch
    holds one, else the batch."""
    answer = {"data": None, "errors": [{"type": "NOT_FOUND", "message": "Could not resolve to a Repository."}]}
    with pytest.raises(SourceError, match=said):
        R.fetch_repositories(ENDPOINT, repos(n), client=CannedClient([answer]))


def test_a_staged_repository_is_the_record_the_fetch_would_have_stored(tmp_path):
    staged(tmp_path)
    rec = R.staged_repository(tmp_path, AS_OF, RC)
    assert (rec.source, rec.kind, rec.natural_key, rec.status_code) == ("github", "gql_repository", "acme/api", 200)
    assert rec.payload == node("acme/api") and rec.fetched_at == "2026-11-25T02:00:01Z"
    assert rec.url == "https://api.github.com/graphql#CcwatchRepositories" and rec.etag is None


@pytest.mark.parametrize("entry", [
    None, "not an object", {"node": None, "fetched_at": "2026-11-25T02:00:01Z"},
    {"node": node("acme/other"), "fetched_at": "2026-11-25T02:00:01Z"},  # another repository's node
    {"node": node("acme/api")},                                           # no fetch time
])
def test_a_staged_entry_that_is_not_this_repositorys_node_is_not_taken(tmp_path, entry):
    staged(tmp_path, entry)
    assert R.staged_repository(tmp_path, AS_OF, RC) is None


def test_no_file_an_unreadable_file_or_another_date_asks_alone(tmp_path):
    assert R.staged_repository(tmp_path, AS_OF, RC) is None
    staged(tmp_path, as_of="2026-11-24T00:00:00Z")
    assert R.staged_repository(tmp_path, AS_OF, RC) is None
    R.repositories_path(tmp_path, AS_OF).write_text("{truncated", encoding="utf-8")
    assert R.staged_repository(tmp_path, AS_OF, RC) is None


def test_the_name_is_compared_as_github_does_without_case():
    client = CannedClient([{"data": {"r0": node("Acme/API")}}])
    out = R.fetch_repositories(ENDPOINT, [RC], client=client)
    assert out["repos"]["acme/api"]["node"]["nameWithOwner"] == "Acme/API"


def test_the_batch_document_holds_one_aliased_repository_each():
    doc = repositories_document(2)
    assert ("query CcwatchRepositories($o0: String!, $n0: String!, $q0: String!, $p0: Boolean!, $o1: String!, "
            "$n1: String!, $q1: String!, $p1: Boolean!)") in doc
    assert "r1: repository(owner: $o1, name: $n1)" in doc
    assert "productionBranch: ref(qualifiedName: $q1)" in doc and "ref(qualifiedName: $q0)" in doc
    with pytest.raises(ValueError):
        repositories_document(REPOSITORIES_BATCH + 1)
    with pytest.raises(ValueError):
        repositories_document(0)


def test_each_repository_is_asked_its_own_production_branch():
    """(stop 31) The node carries the production branch's tip: each alias names its repository's branch."""
    rcs = [RC, RepoConfig(repo="acme/web", production_branch="release/2026", production_environments=())]
    client = CannedClient([{"data": {"r0": node(RC.repo), "r1": node("acme/web")}}])
    R.fetch_repositories(ENDPOINT, rcs, client=client)
    assert client.requester.sent[0]["variables"] == {"o0": "acme", "n0": "api", "q0": "refs/heads/main", "p0": True,
                                                     "o1": "acme", "n1": "web", "q1": "refs/heads/release/2026",
                                                     "p1": True}


@pytest.mark.parametrize("ref, tip", [
    ({"name": "main", "target": {"oid": "a" * 40}}, "a" * 40),
    ({"name": "release", "target": {"oid": "a" * 40}}, None),  # another branch (the config changed)
    (None, None),                                              # GitHub: no such branch
    ({"name": "main", "target": None}, None),
    (..., None),                                               # a node from before stop 31
])
def test_the_branch_tip_is_read_only_for_the_branch_asked(ref, tip):
    assert R.branch_tip(node(RC.repo) if ref is ... else node(RC.repo, productionBranch=ref), "main") == tip


def ref(rule=None, rules=0, name="main") -> dict:
    return {"name": name, "target": {"oid": "a" * 40}, "branchProtectionRule": rule, "rules": {"totalCount": rules}}


@pytest.mark.parametrize("branch, flag", [
    (ref(), False),
    (ref(rule={"id": "BPR_1"}), True),          # classic protection
    (ref(rules=3), True),                       # rules of active rulesets (GitHub's REST says true as well)
    ({"name": "main", "target": {"oid": "a" * 40}}, None),  # asked without the flag
    (dict(ref(), rules=None), None),            # no rules connection: unknown, never "unprotected"
    (ref(name="release"), None),                # another branch
    (None, None),
])
def test_the_protection_flag_is_what_rest_would_say_or_unknown(branch, flag):
    assert R.protected(node(RC.repo, productionBranch=branch), "main") is flag


FORBIDDEN = {"type": "FORBIDDEN", "message": "Resource not accessible by integration",
             "path": ["r1", "productionBranch", "branchProtectionRule"], "locations": [{"line": 9, "column": 7}]}


def test_flags_github_will_not_give_are_asked_again_without_them(caplog):
    """(stop 31) A token without the Administration permission: GitHub answers FORBIDDEN on
    ``branchProtectionRule``.  The batch is asked again without the flags (they are unknown: the
    fetch asks REST's branch); another error still fails the batch."""
    rcs = repos(2)
    client = CannedClient([{"data": {"r0": node(rcs[0].repo), "r1": dict(node(rcs[1].repo), productionBranch=None)},
                            "errors": [FORBIDDEN]},
                           {"data": {"r0": node(rcs[0].repo), "r1": node(rcs[1].repo)}}])
    out = R.fetch_repositories(ENDPOINT, rcs, client=client)
    sent = client.requester.sent
    assert [[v for k, v in s["variables"].items() if k.startswith("p")] for s in sent] == [[True, True], [False, False]]
    assert out["repos"][rcs[1].repo]["node"] == node(rcs[1].repo)
    assert "FORBIDDEN" in caplog.text and rcs[1].repo in caplog.text
    other = dict(FORBIDDEN, path=["r1", "pushedAt"])
    with pytest.raises(SourceError, match=r"FORBIDDEN.*\(at r1: acme/r001"):
        R.fetch_repositories(ENDPOINT, rcs, client=CannedClient([{"data": None, "errors": [other]}]))
    refused_again = CannedClient([{"data": None, "errors": [FORBIDDEN]}, {"data": None, "errors": [FORBIDDEN]}])
    with pytest.raises(SourceError, match="FORBIDDEN"):  # without the flags: not the flags' error, it fails
        R.fetch_repositories(ENDPOINT, rcs, client=refused_again)


class RepoClientStub:
    """What ``fetch_repository`` uses of ``client.RepoClient``: its repository, requester and ``record``."""

    def __init__(self, client):
        self.repo, self.req, self.budget = RC.repo, client.requester, None

    def record(self, kind, key, url, payload):
        return RawRecord(source="github", kind=kind, natural_key=key, url=url, fetched_at="2026-11-25T02:00:00Z",
                         payload=payload, etag=None, status_code=200)


def test_a_repository_asked_alone_has_its_flag_too_and_the_same_fallback(caplog):
    answer = {"data": {"repository": node(RC.repo, productionBranch=ref())}}
    client = CannedClient([dict(answer, errors=[dict(FORBIDDEN, path=["repository", "productionBranch",
                                                                     "branchProtectionRule"])]), answer])
    rec = R.fetch_repository(RepoClientStub(client), RC)
    assert [s["variables"]["protection"] for s in client.requester.sent] == [True, False]
    assert R.protected(rec.payload, "main") is False
