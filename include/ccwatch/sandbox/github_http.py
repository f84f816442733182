"""GitHub REST v3 double, HTTP mechanics: error bodies, Link pagination, ETag/304, rate-limit headers.

Pure helpers over :class:`SandboxRequest` / :class:`SandboxResponse`; the routes live in
``github.py`` and ``github_protection.py``.
"""

from __future__ import annotations

import hashlib
from urllib.parse import parse_qsl, urlencode, urlsplit

from ccwatch.sandbox.http import SandboxRequest, SandboxResponse, json_response

DOCS = "https://docs.github.com/rest"


def gh_error(status: int, message: str, doc: str = DOCS) -> SandboxResponse:
    return json_response({"message": message, "documentation_url": doc, "status": str(status)}, status=status)


def not_found() -> SandboxResponse:
    return gh_error(404, "Not Found")


def paginate(req: SandboxRequest, items: list, wrap=None) -> SandboxResponse:
    """Slice a list like GitHub (per_page default 30, max 100; page from 1) and emit the Link header."""
    try:
        per_page = min(max(int(req.arg("per_page", "30")), 1), 100)
        page = max(int(req.arg("page", "1")), 1)
    except ValueError:
        per_page, page = 30, 1
    last = max((len(items) + per_page - 1) // per_page, 1)
    chunk = items[(page - 1) * per_page: page * per_page]
    pairs = [(k, v) for k, v in parse_qsl(urlsplit(req.raw_target).query, keep_blank_values=True) if k != "page"]

    def link(n: int) -> str:
        return f"{req.origin}{req.path}?{urlencode(pairs + [('page', str(n))])}"

    rels = []
    if page > 1:
        rels.append(f'<{link(min(page - 1, last))}>; rel="prev"')
    if page < last:
        rels.append(f'<{link(page + 1)}>; rel="next"')
        rels.append(f'<{link(last)}>; rel="last"')
    if page > 1:
        rels.append(f'<{link(1)}>; rel="first"')
    headers = {"Link": ", ".join(rels)} if rels else {}
    return json_response(wrap(chunk) if wrap else chunk, headers=headers)


def add_etag(req: SandboxRequest, resp: SandboxResponse) -> bool:
    """Set a weak ETag on a 200 answer; True when the request's If-None-Match matches it."""
    if resp.status != 200:
        return False
    etag = 'W/"' + hashlib.sha256(resp.body_bytes()).hexdigest() + '"'
    resp.headers["ETag"] = etag
    sent = [t.strip() for t in (req.headers.get("If-None-Match") or "").split(",") if t.strip()]
    return any(t == etag or t == etag[2:] or t == "*" for t in sent)


def not_modified_response(resp: SandboxResponse) -> SandboxResponse:
    return SandboxResponse(status=304, headers={"ETag": resp.headers["ETag"]}, raw=b"")


def rate_limit_headers(limit: int, used: int, reset: int) -> dict[str, str]:
    return {
        "X-RateLimit-Limit": str(limit), "X-RateLimit-Remaining": str(max(limit - used, 0)),
        "X-RateLimit-Reset": str(reset), "X-RateLimit-Used": str(used), "X-RateLimit-Resource": "core",
        "X-GitHub-Media-Type": "github.v3; format=json", "x-github-api-version-selected": "2022-11-28",
    }
