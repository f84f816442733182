"""Reading GitHub's REST answers: rate-limit answers, the Link header, the permission a 403 needs.

Shared by the REST fetch (``connectors/github.py``) and the GraphQL fetch (``github_graphql.py``).
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
                ("/commits", "Contents: read"), ("/branches", "Contents: read"), ("/rules", "Metadata: read")]


def permission(path: str) -> str:
    need = next((p for frag, p in PERMISSIONS if frag in path), "Metadata: read")
    return (f"the '{need}' repository permission (fine-grained token or GitHub App) or the 'repo' scope "
            f"(classic token), and the repository selected for the token")


def next_link(link: str) -> str | None:
    for part in link.split(","):
        seg = part.split(";")
        if len(seg) >= 2 and any(s.strip() == 'rel="next"' for s in seg[1:]):
            return seg[0].strip().strip("<>")
    return None
