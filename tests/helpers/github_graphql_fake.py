"""A fake PyGithub requester serving canned GitHub GraphQL and REST answers, for the connector's
GraphQL tests (tests/integration/ingest/github/test_graphql.py, test_commit_links.py,
test_deployment_statuses.py): REST and GraphQL go through the real ``RepoClient``."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

from ccwatch.common.endpoints import Endpoint
from ccwatch.ingest.github.client import RepoClient
from ccwatch.settings import RepoConfig

REPO = "acme/payments-api"
BASE = "https://api.github.com"
GQL = "https://api.github.com/graphql"
START, AS_OF = datetime(2026, 10, 26, tzinfo=UTC), datetime(2026, 11, 25, tzinfo=UTC)
H1, H2 = "1" * 40, "2" * 40
RATE = {"cost": 1, "limit": 5000, "remaining": 4990, "used": 10, "resetAt": "2026-11-25T01:00:00Z"}


def cursor(i: int) -> str:
    return base64.b64encode(f"cursor:v2:{i}".encode()).decode()


def rc() -> RepoConfig:
    return RepoConfig(repo=REPO, production_branch="main", production_environments=("production",))


class FakeRequester:
    """PyGithub's Requester surface the connector uses: requestJson + graphql_url."""

    graphql_url = GQL

    def __init__(self, graphql=None, rest: dict[str, Any] | None = None):
        self.graphql = graphql or (lambda op, v: (200, {}, {"data": {}}))
        self.rest = rest or {}
        self.calls: list[tuple[str, str, Any]] = []

    def requestJson(self, verb, url, parameters=None, headers=None, input=None):  # noqa: A002, N802
        if verb == "POST":
            assert url == GQL
            assert set(input) == {"query", "variables", "operationName"}
            assert f"query {input['operationName']}(" in input["query"]
            self.calls.append(("POST", input["operationName"], input["variables"]))
            status, hdrs, body = self.graphql(input["operationName"], input["variables"])
            return status, hdrs, json.dumps(body)
        path = url[len(BASE):]
        self.calls.append(("GET", path, parameters))
        if path not in self.rest:
            return 404, {}, json.dumps({"message": "Not Found"})
        return 200, {"etag": 'W/"e"'}, json.dumps(self.rest[path])

    def posts(self, op: str | None = None) -> list[dict]:
        return [v for verb, o, v in self.calls if verb == "POST" and (op is None or o == op)]

    def gets(self) -> list[str]:
        return [p for verb, p, _ in self.calls if verb == "GET"]


def repo_of(req: FakeRequester) -> RepoClient:
    return RepoClient(SimpleNamespace(requester=req), Endpoint(BASE, token="ghp_secret"), REPO)


