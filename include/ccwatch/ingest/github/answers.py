"""Reading GitHub's answers: is it a rate limit, and which permission does a 403 need.

Shared by the REST client (``client.py``) and the GraphQL batches (``graphql.py``).
"""

from __future__ import annotations

from typing import Any

from github.Requester import Requester


def is_rate_limit(headers: dict[str, str], data: Any) -> bool:
    msg = data.get("message") if isinstance(data, dict) else None
    return (headers.get("x-ratelimit-remaining") == "0" or bool(headers.get("retry-after"))
            or Requester.isRateLimitError(msg or "") or data is None)  # a rate-limit body GithubRetry consumed


# fine-grained token permission (classic tokens: the ``repo`` scope) per endpoint of the connector
PERMISSIONS = [("/protection", "Administration: read"), ("/check-runs", "Checks: read"),
                ("/statuses", "Commit statuses: read"), ("/pulls", "Pull requests: read"),
                ("/deployments", "Deployments: read"), ("/environments", "Actions: read"),
                ("/commits", "Contents: read"), ("/branches", "Contents: read"), ("/rules", "Metadata: read"),
                ("/activity", "Contents: read"), ("/compare", "Contents: read")]


def permission(path: str) -> str:
    need = next((p for frag, p in PERMISSIONS if frag in path), "Metadata: read")
    return (f"the '{need}' repository permission (fine-grained token or GitHub App) or the 'repo' scope "
            f"(classic token), and the repository selected for the token")
