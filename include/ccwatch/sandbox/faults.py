"""Switchable fault modes of the API double: rate limits, 5xx, slow answers, resets, broken bodies.

A fault is a dict, listed in the scenario's ``faults`` or added at run time with
``SandboxServer.add_fault``::

    {"service": "github", "path": r"/pulls/\\d+/reviews$", "method": "GET",  # method optional
     "mode": "status", "status": 502, "times": 2, "after": 0}

``path`` is a regular expression searched in the request path, ``query`` (optional) a dict of
query parameters that must be equal, ``graphql`` (optional) a dict that must be part of a GraphQL
POST's summary (``operationName`` and the ``owner``/``name`` variables), e.g.
``{"operationName": "CcwatchMergedPulls", "name": "payments-api"}``.  Every request that
matches counts; the fault hits the matching requests number ``after`` .. ``after + times - 1``
(``times`` absent: every one from ``after`` on).  Several faults may hit one request; they apply
in list order.  :meth:`FaultEngine.unfired` lists the faults that changed no answer (cleared ones
included; a hit that finds nothing to change, e.g. ``drop_field`` on a field the answer lacks, does not
count; ``slow`` always does): a test whose fault never fired proves nothing about it
(tests/conftest.py fails it).  On a GraphQL answer ``drop_field`` walks the lists on its dotted path
(``data.repository.pullRequests.nodes[number=1].author``: a ``[field=value]`` picks list items),
and ``link_loop`` / ``duplicate_page`` act on the outermost connection (its ``endCursor`` stays
the cursor it was asked with / its ``nodes`` come twice).

The answers copy the real services (docs/SANDBOX.md, "Fault modes"): GitHub's primary
rate limit is a 403 with ``X-RateLimit-Remaining: 0`` and the reset epoch, its secondary
limit a 403 with ``Retry-After``; Jira and Slack answer 429 with ``Retry-After``.
"""

from __future__ import annotations

import copy
import re
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from ccwatch.sandbox.http import SandboxRequest, SandboxResponse, json_response
from ccwatch.sandbox.render import Ctx, node_id

SERVICES = ("github", "jira", "slack")
MODES = ("rate_limit", "secondary_limit", "status", "slow", "reset", "truncated_json", "invalid_json",
         "link_loop", "duplicate_page", "drop_field")
GITHUB_ONLY = ("link_loop", "duplicate_page")  # Link paging (GraphQL: the outer connection); Jira: offsets
FAULT_KEYS = {"service", "path", "method", "query", "graphql", "mode", "times", "after", "status", "body",
              "headers", "reset_in", "retry_after", "seconds", "field", "to", "value"}

GH_RATE_DOC = "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api"
GH_SECONDARY_DOC = GH_RATE_DOC + "#about-secondary-rate-limits"
GHOST = {"id": 10137, "type": "User"}  # the account GitHub shows for deleted users
# the same as a GraphQL Actor, as the documents select one (queries.ACTOR: no 32-bit databaseId)
GQL_GHOST = {"__typename": "User", "login": "ghost", "id": node_id("User", 10137)}

# realistic bodies per service for the ``status`` mode (a fault may give its own ``body``)
_GH_STATUS = {500: "Server Error", 502: "Server Error", 503: "Service Unavailable",
              504: "We couldn't respond to your request in time. Sorry about that. Please try resubmitting "
                   "your request and contact us if the problem persists."}
_JIRA_STATUS = {500: "Internal server error", 502: "Bad Gateway", 503: "Service Unavailable",
                504: "Gateway Timeout"}


def validate_fault(fault: Any) -> dict:
    """A checked copy of one fault dict (ValueError names the problem)."""
    if not isinstance(fault, dict):
        raise ValueError(f"sandbox fault: must be an object, got {type(fault).__name__}")
    f = copy.deepcopy(fault)
    unknown = sorted(set(f) - FAULT_KEYS)
    if unknown:
        raise ValueError(f"sandbox fault: unknown key(s) {unknown}")
    if f.get("service") not in SERVICES:
        raise ValueError(f"sandbox fault: service must be one of {SERVICES}, got {f.get('service')!r}")
    if f.get("mode") not in MODES:
        raise ValueError(f"sandbox fault: mode must be one of {MODES}, got {f.get('mode')!r}")
    if f["mode"] in GITHUB_ONLY and f["service"] != "github":
        raise ValueError(f"sandbox fault: mode {f['mode']} exists only for github")
    try:
        re.compile(f.get("path") or "")
    except re.error as exc:
        raise ValueError(f"sandbox fault: path is not a regular expression: {exc}") from None
    for key in ("times", "after"):
        if f.get(key) is not None and (not isinstance(f[key], int) or f[key] < 0):
            raise ValueError(f"sandbox fault: {key} must be a non-negative integer")
    if f["mode"] == "status" and not isinstance(f.get("status"), int):
        raise ValueError("sandbox fault: mode status needs an integer 'status'")
    if f["mode"] == "drop_field" and not f.get("field"):
        raise ValueError("sandbox fault: mode drop_field needs 'field'")
    if f.get("graphql") is not None and (f["service"] != "github" or not isinstance(f["graphql"], dict)):
        raise ValueError("sandbox fault: graphql must be an object (github only)")
    if f.get("to", "absent") not in ("absent", "null", "ghost", "value"):
        raise ValueError("sandbox fault: 'to' must be absent, null, ghost or value")
    if f.get("to") == "value" and "value" not in f:
        raise ValueError("sandbox fault: 'to': 'value' needs 'value'")
    return f


class FaultEngine:
    """Holds the active faults and applies them to answers (thread-safe)."""

    def __init__(self, faults: Any, route: Callable[[str, SandboxRequest], SandboxResponse]):
        self._route = route
        self._lock = threading.Lock()
        self.faults: list[dict] = []
        self._seen: list[int] = []  # matching requests per fault
        self._fired: dict[int, int] = {}  # id(fault) -> answers it changed
        self._cleared_unfired: list[dict] = []
        items = list(faults.values()) if isinstance(faults, dict) else list(faults or [])
        for f in items:
            self.add(f)

    def add(self, fault: dict) -> dict:
        f = validate_fault(fault)
        with self._lock:
            self.faults.append(f)
            self._seen.append(0)
            self._fired[id(f)] = 0
        return f

    def clear(self) -> None:
        with self._lock:
            self._cleared_unfired += [f for f in self.faults if not self._fired[id(f)]]
            self.faults.clear()
            self._seen.clear()
            self._fired.clear()

    def unfired(self) -> list[dict]:
        """The faults (active or cleared) that have not changed a single answer yet."""
        with self._lock:
            return self._cleared_unfired + [f for f in self.faults if not self._fired[id(f)]]

    def _hits(self, service: str, req: SandboxRequest) -> list[dict]:
        hits = []
        with self._lock:
            for i, f in enumerate(self.faults):
                if f["service"] != service or not re.search(f.get("path") or "", req.path):
                    continue
                if f.get("method") and f["method"].upper() != req.method:
                    continue
                if any(req.arg(k) != str(v) for k, v in (f.get("query") or {}).items()):
                    continue
                if f.get("graphql") and not _graphql_matches(f["graphql"], req):
                    continue
                n = self._seen[i]
                self._seen[i] += 1
                after, times = f.get("after") or 0, f.get("times")
                if n >= after and (times is None or n < after + times):
                    hits.append(f)
        return hits

    def apply(self, service: str, req: SandboxRequest, resp: SandboxResponse) -> SandboxResponse:
        for f in self._hits(service, req):
            if f["mode"] == "slow":  # fired before it sleeps: a client that gave up has seen it
                self._fire(f)
            out = MODE_FUNCS[f["mode"]](self, f, service, req, resp)
            if out is not resp:
                self._fire(f)
            resp = out
            if resp.abort:
                break
        return resp

    def _fire(self, f: dict) -> None:
        with self._lock:
            if id(f) in self._fired:  # not cleared meanwhile
                self._fired[id(f)] += 1

    # ---------------------------------------------------------------- modes
    def rate_limit(self, f: dict, service: str, req: SandboxRequest, resp: SandboxResponse) -> SandboxResponse:
        reset_in = float(f.get("reset_in", 60))
        if service == "github":
            reset = int(time.time() + reset_in)
            out = json_response({"message": "API rate limit exceeded for user ID 1. If you reach out to GitHub "
                                 "Support for help, please include the request ID 0000:0000:0000000:0000000:"
                                 "00000000 and timestamp " + _now_text() + ".",
                                 "documentation_url": GH_RATE_DOC, "status": str(f.get("status", 403))},
                                status=int(f.get("status", 403)))
            out.headers.update(_gh_rate_headers(resp, remaining=0, reset=reset))
        elif service == "jira":
            retry_after = int(f.get("retry_after", max(round(reset_in), 1)))
            reset_at = datetime.fromtimestamp(time.time() + retry_after, UTC).strftime("%Y-%m-%dT%H:%MZ")
            out = json_response({"errorMessages": ["Rate limit exceeded."], "errors": {}}, status=429)
            out.headers.update({"Retry-After": str(retry_after), "X-RateLimit-Reset": reset_at,
                                "X-RateLimit-Limit": "100", "X-RateLimit-Remaining": "0",
                                "RateLimit-Reason": "jira-burst-based"})
        else:
            out = _slack_ratelimited(int(f.get("retry_after", max(round(reset_in), 1))))
        return _with_headers(out, f)

    def secondary_limit(self, f: dict, service: str, req: SandboxRequest, resp: SandboxResponse) -> SandboxResponse:
        retry_after = f.get("retry_after", 60)  # null: no Retry-After (GitHub: only the body says so)
        if service == "github":
            out = json_response({"message": "You have exceeded a secondary rate limit. Please wait a few minutes "
                                 "before you try again. If you reach out to GitHub Support for help, please "
                                 "include the request ID 0000:0000:0000000:0000000:00000000 and timestamp "
                                 + _now_text() + ".", "documentation_url": GH_SECONDARY_DOC,
                                 "status": str(f.get("status", 403))}, status=int(f.get("status", 403)))
            out.headers.update(_gh_rate_headers(resp))
            if retry_after is not None:
                out.headers["Retry-After"] = str(int(retry_after))
        elif service == "jira":
            return self.rate_limit(dict(f, retry_after=int(retry_after or 60)), service, req, resp)
        else:
            out = _slack_ratelimited(int(retry_after or 60))
        return _with_headers(out, f)

    def status(self, f: dict, service: str, req: SandboxRequest, resp: SandboxResponse) -> SandboxResponse:
        code = int(f["status"])
        body = f.get("body")
        if body is None:
            if service == "github":
                body = {"message": _GH_STATUS.get(code, "Server Error")}
            elif service == "jira":
                body = {"errorMessages": [_JIRA_STATUS.get(code, "Internal server error")], "errors": {}}
            else:
                body = {"ok": False, "error": "internal_error"}
        out = (json_response(body, status=code) if not isinstance(body, str)
               else SandboxResponse(status=code, raw=body.encode(), content_type="text/html; charset=utf-8"))
        if service == "github":
            out.headers.update(_gh_rate_headers(resp))
        if f.get("retry_after") is not None:
            out.headers["Retry-After"] = str(f["retry_after"])
        return _with_headers(out, f)

    def slow(self, f: dict, service: str, req: SandboxRequest, resp: SandboxResponse) -> SandboxResponse:
        time.sleep(float(f.get("seconds", 1.0)))
        return resp

    def reset(self, f: dict, service: str, req: SandboxRequest, resp: SandboxResponse) -> SandboxResponse:
        return SandboxResponse(status=0, raw=b"", abort=True)

    def truncated_json(self, f: dict, service: str, req: SandboxRequest, resp: SandboxResponse) -> SandboxResponse:
        body = resp.body_bytes()
        return replace(resp, raw=body[: len(body) // 2], data=None, headers=_drop_etag(resp.headers), on_sent=None)

    def invalid_json(self, f: dict, service: str, req: SandboxRequest, resp: SandboxResponse) -> SandboxResponse:
        body = f.get("body") or "<html><body><h1>502 Bad Gateway</h1>The proxy received an invalid response.</body></html>"
        return replace(resp, raw=str(body).encode(), data=None, headers=_drop_etag(resp.headers), on_sent=None)

    def link_loop(self, f: dict, service: str, req: SandboxRequest, resp: SandboxResponse) -> SandboxResponse:
        if _is_graphql(req):  # the outermost connection: hasNextPage, and the cursor it was asked with
            data = copy.deepcopy(resp.data)
            conn = _outer_connection(data)
            if conn is None:
                return resp
            after = ((req.json_body() or {}).get("variables") or {}).get("after")
            conn["pageInfo"].update(hasNextPage=True, endCursor=after or conn["pageInfo"].get("endCursor") or "loop")
            return replace(resp, data=data, on_sent=None)
        out = replace(resp, headers=dict(resp.headers), on_sent=None)
        here = f"{req.origin}{req.raw_target}"
        out.headers["Link"] = f'<{here}>; rel="next", <{here}>; rel="last"'
        return out

    def duplicate_page(self, f: dict, service: str, req: SandboxRequest, resp: SandboxResponse) -> SandboxResponse:
        """This page's items come again after the previous page's (as when a listing shifts while paged).
        GraphQL: the outermost connection's nodes come twice in the page."""
        if _is_graphql(req):
            data = copy.deepcopy(resp.data)
            conn = _outer_connection(data)
            if conn is None or not isinstance(conn.get("nodes"), list) or not conn["nodes"]:
                return resp
            conn["nodes"] = conn["nodes"] + copy.deepcopy(conn["nodes"])
            return replace(resp, data=data, on_sent=None)
        items, put = _items(resp.data)
        if not items:
            return resp
        prev = _previous_page(req)
        earlier = items
        if prev is not None:
            got = self._route(service, prev)
            earlier_items, _ = _items(got.data) if got.status == 200 else (None, None)
            earlier = earlier_items if earlier_items else items
        return replace(resp, data=put(list(earlier) + list(items)), headers=_drop_etag(resp.headers), on_sent=None)

    def drop_field(self, f: dict, service: str, req: SandboxRequest, resp: SandboxResponse) -> SandboxResponse:
        if resp.data is None or resp.raw is not None:
            return resp
        data = copy.deepcopy(resp.data)
        items, _ = _items(data)
        if f.get("to") == "value":  # e.g. an enum value GitHub added after the schema the double serves
            put = f["value"]
        else:
            put = (Ctx(api=req.origin + ("/api/v3" if req.path.startswith("/api/v3/") else ""), html=req.origin,
                       users={"ghost": GHOST}).user("ghost") if not _is_graphql(req) else dict(GQL_GHOST))
        for item in items if items is not None else [data]:
            _drop(item, str(f["field"]).split("."), f.get("to", "absent"), put)
        if data == resp.data:  # nothing on the path: the answer is unchanged (the fault did not fire)
            return resp
        return replace(resp, data=data, headers=_drop_etag(resp.headers))


MODE_FUNCS: dict[str, Callable[..., SandboxResponse]] = {m: getattr(FaultEngine, m) for m in MODES}


def _now_text() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _gh_rate_headers(resp: SandboxResponse, remaining: int | None = None, reset: int | None = None) -> dict[str, str]:
    """The X-RateLimit-* headers of the answer being replaced, optionally with remaining/reset."""
    out = {k: v for k, v in resp.headers.items() if k.lower().startswith("x-ratelimit") or k.lower().startswith("x-github")}
    if remaining is not None:
        limit = out.get("X-RateLimit-Limit", "5000")
        out.update({"X-RateLimit-Remaining": str(remaining), "X-RateLimit-Used": limit})
    if reset is not None:
        out["X-RateLimit-Reset"] = str(reset)
    return out


def _slack_ratelimited(retry_after: int) -> SandboxResponse:
    return json_response({"ok": False, "error": "ratelimited"}, status=429, headers={"Retry-After": str(retry_after)})


def _with_headers(resp: SandboxResponse, f: dict) -> SandboxResponse:
    resp.headers.update({str(k): str(v) for k, v in (f.get("headers") or {}).items()})
    return resp


def _drop_etag(headers: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in headers.items() if k.lower() != "etag"}


def _items(data: Any) -> tuple[list | None, Callable[[list], Any]]:
    """The item list of a payload (a list, or the one list member of a wrapper object) and how to put it back."""
    if isinstance(data, list):
        return data, lambda items: items
    if isinstance(data, dict):
        keys = [k for k in ("check_runs", "issues", "values", "items", "channels") if isinstance(data.get(k), list)]
        if keys:
            key = keys[0]
            return data[key], lambda items: dict(data, **{key: items})
    return None, lambda items: items


def _previous_page(req: SandboxRequest) -> SandboxRequest | None:
    pairs = parse_qsl(urlsplit(req.raw_target).query, keep_blank_values=True)
    try:
        page = int(req.arg("page") or 1)
    except ValueError:
        return None
    if page <= 1:
        return None
    new = [(k, v) for k, v in pairs if k != "page"] + [("page", str(page - 1))]
    query: dict[str, list[str]] = {}
    for k, v in new:
        query.setdefault(k, []).append(v)
    return replace(req, query=query, raw_target=f"{req.path}?{urlencode(new)}")


def _is_graphql(req: SandboxRequest) -> bool:
    return req.method == "POST" and req.path.rstrip("/").endswith("/graphql")


def _graphql_matches(want: dict, req: SandboxRequest) -> bool:
    from ccwatch.sandbox.http import graphql_summary

    if not _is_graphql(req):
        return False
    got = graphql_summary(req.body)
    return all(str(got.get(k)) == str(v) for k, v in want.items())


def _outer_connection(data: Any) -> dict | None:
    """The shallowest object with a ``pageInfo`` (breadth first) in a GraphQL answer."""
    level = [data]
    while level:
        nxt = []
        for obj in level:
            if isinstance(obj, dict):
                if isinstance(obj.get("pageInfo"), dict):
                    return obj
                nxt.extend(obj.values())
            elif isinstance(obj, list):
                nxt.extend(obj)
        level = nxt
    return None


_SELECT = re.compile(r"^(?P<key>[^\[]+)\[(?P<field>[^=\]]+)=(?P<value>[^\]]*)\]$")


def _drop(obj: Any, path: list[str], to: str, put: Any) -> None:
    """Lists on the way are walked item by item (GraphQL ``nodes``); a segment ``nodes[number=1]``
    keeps only the items whose ``number`` is 1.  ``to`` ghost/value: the field becomes ``put``."""
    if isinstance(obj, list):
        for item in obj:
            _drop(item, path, to, put)
        return
    if not isinstance(obj, dict) or not path:
        return
    sel = _SELECT.match(path[0])
    if sel:
        items = obj.get(sel["key"])
        for item in items if isinstance(items, list) else []:
            if isinstance(item, dict) and str(item.get(sel["field"])) == sel["value"]:
                _drop(item, path[1:], to, put)
        return
    if len(path) > 1:
        _drop(obj.get(path[0]), path[1:], to, put)
        return
    key = path[0]
    if key not in obj:
        return
    if to == "absent":
        del obj[key]
    elif to == "null":
        obj[key] = None
    else:
        obj[key] = copy.deepcopy(put)
