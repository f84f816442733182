"""GitHub connector: raw REST payloads of the evaluation window (docs/ARCHITECTURE.md kinds).

Requests go through PyGithub's ``Requester`` (``Github(...).requester``): its auth, base
URL (github.com or Enterprise ``/api/v3``), throttle and urllib3 retry, but with the JSON
kept exactly as GitHub returned it (the high-level objects complete themselves lazily with
extra requests and rewrite list items).  We page with the ``Link`` header ourselves.

Throttle: PyGithub's default ``seconds_between_requests=0.25`` exists for *concurrent*
clients and writes; this connector only reads, strictly one request at a time, and GitHub's
secondary limits are answered by the retry (``Retry-After`` / 403 rate-limit bodies, see
``GithubRetry``).  So the default here is no added sleep (``SECONDS_BETWEEN_REQUESTS``);
pass ``seconds_between_requests`` to be gentler with a shared Enterprise server.  Retry:
5 attempts with exponential backoff for 5xx/429, primary rate-limit waits capped at 15 min;
after that the last answer is an error and the fetch raises :class:`SourceError`.

Window: merged PRs, first-parent commits and deployments created in
``[as_of - lookback_days, ...)``; deployments listed before the window start are dropped
(no change of the window can have been shipped before it was merged).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from github import Auth, Github, GithubException, GithubRetry, RateLimitExceededException

from ccwatch.connectors import SourceError, fetched_now, iso_z, public_url
from ccwatch.endpoints import Endpoint
from ccwatch.settings import RepoConfig, Settings
from ccwatch.staging import RawRecord
from ccwatch.warehouse.normalize import first_parent_chain
from ccwatch.warehouse.normalize_jira import parse_ts

SECONDS_BETWEEN_REQUESTS: float = 0.0
TIMEOUT_SECONDS = 30
PER_PAGE = 100


DEFAULT_RETRY = "default"


def default_retry() -> GithubRetry:
    """5xx/429 (and GitHub's 403 rate-limit answers, which GithubRetry adds) retried 5 times with
    exponential backoff; rate-limit waits longer than 15 minutes fail instead of hanging the run."""
    return GithubRetry(total=5, backoff_factor=0.5, status_forcelist=[*range(500, 600), 429],
                       raise_on_status=False, max_rate_limit_wait=900)


def make_client(endpoint: Endpoint, *, seconds_between_requests: float | None = SECONDS_BETWEEN_REQUESTS,
                retry: Any = DEFAULT_RETRY) -> Github:
    """``retry``: DEFAULT_RETRY, an int or a urllib3 ``Retry``, or None for no retry."""
    if not endpoint.token:
        raise SourceError(f"GitHub {endpoint}: no token configured in the connection")
    return Github(base_url=endpoint.base_url.rstrip("/"), auth=Auth.Token(endpoint.token), per_page=PER_PAGE,
                  timeout=TIMEOUT_SECONDS, verify=endpoint.verify_tls,
                  retry=default_retry() if retry == DEFAULT_RETRY else retry,
                  seconds_between_requests=seconds_between_requests, seconds_between_writes=None)


class _Repo:
    """One repository's requests; every failure is a SourceError naming repo and endpoint."""

    def __init__(self, gh: Github, endpoint: Endpoint, repo: str) -> None:
        self.req = gh.requester
        self.base = endpoint.base_url.rstrip("/")
        self.repo = repo
        self.prefix = f"/repos/{repo}"

    def _call(self, path: str, params: dict[str, Any] | None) -> tuple[int, dict[str, str], Any, str]:
        url = path if path.startswith("http") else self.base + path
        shown = public_url(url if not params else f"{url}?{urlencode(params)}")
        try:
            status, headers, body = self.req.requestJson("GET", url, parameters=params or None)
        except RateLimitExceededException as exc:  # the wait for the reset would exceed the cap
            raise SourceError(f"GitHub {self.repo}: GET {shown}: rate limit exceeded: {exc.data}") from None
        except GithubException as exc:
            # GithubRetry inspects every 403 and raises the plain API error when it is not a rate
            # limit: that is an HTTP answer like any other (e.g. protection unreadable)
            status, headers, body = exc.status, dict(exc.headers or {}), exc.data
        except Exception as exc:  # connection errors, exhausted retries
            raise SourceError(f"GitHub {self.repo}: GET {shown} failed: {type(exc).__name__}: {exc}") from None
        headers = {k.lower(): v for k, v in (headers or {}).items()}
        if not isinstance(body, (str, bytes, type(None))):
            return status, headers, body, shown
        try:
            data = json.loads(body) if body else None
        except ValueError:
            raise SourceError(f"GitHub {self.repo}: GET {shown}: HTTP {status}, body is not JSON") from None
        return status, headers, data, shown

    def get(self, path: str, params: dict[str, Any] | None = None, data_statuses: tuple[int, ...] = ()
            ) -> tuple[int, Any, str, str | None]:
        status, headers, data, shown = self._call(self.prefix + path, params)
        if status != 200 and status not in data_statuses:
            raise self._error(status, data, shown)
        return status, data, shown, headers.get("etag")

    def get_all(self, path: str, params: dict[str, Any] | None = None, items_key: str | None = None,
                stop=None) -> tuple[list[Any], str, str | None]:
        """Every page (Link rel="next"); ``stop(page_items)`` True ends paging early."""
        params = dict(params or {}, per_page=PER_PAGE)
        url: str | None = self.base + self.prefix + path
        items: list[Any] = []
        first_shown, etag, page_params = None, None, params
        while url:
            status, headers, data, shown = self._call(url, page_params)
            if status != 200:
                raise self._error(status, data, shown)
            page = data.get(items_key) if items_key and isinstance(data, dict) else data
            if not isinstance(page, list):
                raise SourceError(f"GitHub {self.repo}: GET {shown}: expected a list, got {type(page).__name__}")
            items.extend(page)
            if first_shown is None:
                first_shown, etag = shown, headers.get("etag")
            url = _next_link(headers.get("link", ""))
            page_params = None  # the next link carries the query
            if stop is not None and stop(page):
                break
        return items, first_shown or "", etag

    def _error(self, status: int, data: Any, shown: str) -> SourceError:
        msg = data.get("message") if isinstance(data, dict) else None
        return SourceError(f"GitHub {self.repo}: GET {shown} answered HTTP {status}" + (f": {msg}" if msg else ""))

    def record(self, kind: str, key: str, url: str, payload: Any, status: int = 200, etag: str | None = None
               ) -> RawRecord:
        return RawRecord(source="github", kind=kind, natural_key=key, url=url, fetched_at=fetched_now(),
                         payload=payload, etag=etag, status_code=status)


def _next_link(link: str) -> str | None:
    for part in link.split(","):
        seg = part.split(";")
        if len(seg) >= 2 and any(s.strip() == 'rel="next"' for s in seg[1:]):
            return seg[0].strip().strip("<>")
    return None


def fetch_github(settings: Settings, endpoint: Endpoint, as_of: datetime, *,
                 seconds_between_requests: float | None = SECONDS_BETWEEN_REQUESTS,
                 retry: Any = DEFAULT_RETRY) -> Iterator[RawRecord]:
    """Yield the raw records of every configured repository; raise SourceError on any failure."""
    start = as_of - timedelta(days=settings.lookback_days)
    gh = make_client(endpoint, seconds_between_requests=seconds_between_requests, retry=retry)
    try:
        for rc in settings.github.repositories:
            yield from _fetch_repo(_Repo(gh, endpoint, rc.repo), rc, start, as_of)
    finally:
        gh.close()


def _fetch_repo(r: _Repo, rc: RepoConfig, start: datetime, as_of: datetime) -> Iterator[RawRecord]:
    repo, branch = rc.repo, rc.production_branch
    status, data, url, etag = r.get("")
    yield r.record("repo", repo, url, data, etag=etag)
    yield from _pulls(r, rc, start, as_of)

    # the branch, its protection (403/404 are evidence) and its rules
    _, br, url, etag = r.get(f"/branches/{branch}")
    yield r.record("branch", f"{repo}:{branch}", url, br, etag=etag)
    status, prot, url, etag = r.get(f"/branches/{branch}/protection", data_statuses=(403, 404))
    yield r.record("branch_protection", f"{repo}:{branch}", url, prot, status, etag)
    rules, url, etag = r.get_all(f"/rules/branches/{branch}")
    yield r.record("branch_rules", f"{repo}:{branch}", url, rules, etag=etag)
    for rid in sorted({int(x["ruleset_id"]) for x in rules if x.get("ruleset_id")}):
        _, rs, url, etag = r.get(f"/rulesets/{rid}")
        yield r.record("ruleset", f"{repo}/rulesets/{rid}", url, rs, etag=etag)

    # first-parent history of the production branch in the window, and the PRs of each commit
    commits, url, etag = r.get_all("/commits", {"sha": branch, "since": iso_z(start)})
    yield r.record("commits", f"{repo}:{branch}", url, commits, etag=etag)
    tip = (br.get("commit") or {}).get("sha") if isinstance(br, dict) else None
    for c in first_parent_chain(commits, tip):
        pulls, url, etag = r.get_all(f"/commits/{c['sha']}/pulls")
        yield r.record("commit_pulls", f"{repo}@{c['sha']}", url, pulls, etag=etag)

    # deployments (production and staging) with all their statuses
    lo = parse_ts(iso_z(start))
    for env in dict.fromkeys(rc.production_environments + rc.staging_environments):
        deps, url, etag = r.get_all("/deployments", {"environment": env},
                                    stop=lambda page: _sorted_past(page, "created_at", lo))
        deps = [d for d in deps if not _before(d.get("created_at"), lo)]
        yield r.record("deployments", f"{repo}:{env}", url, deps, etag=etag)
        for d in deps:
            sts, url, etag = r.get_all(f"/deployments/{d['id']}/statuses")
            yield r.record("deployment_statuses", f"{repo}/deployments/{d['id']}", url, sts, etag=etag)

    for env in rc.production_environments:
        status, data, url, etag = r.get(f"/environments/{env}", data_statuses=(404,))
        yield r.record("environment", f"{repo}:{env}", url, data, status, etag)


def _before(ts: Any, lo: datetime) -> bool:
    """``ts`` (ISO string) is earlier than ``lo`` (naive UTC)."""
    dt = parse_ts(ts)
    return dt is not None and dt < lo


def _sorted_past(page: list[dict[str, Any]], field: str, lo: datetime) -> bool:
    """Paging may stop: this page is newest-first by ``field`` and already older than ``lo``.

    Only a page that really is in that order lets paging stop early: a server that ignores
    the requested sort costs more requests, never a missed change.
    """
    stamps = [parse_ts(p.get(field)) for p in page]
    if not stamps or None in stamps:
        return False
    return all(a >= b for a, b in zip(stamps, stamps[1:], strict=False)) and stamps[-1] < lo


def _pulls(r: _Repo, rc: RepoConfig, start: datetime, as_of: datetime) -> Iterator[RawRecord]:
    """PRs merged into the production branch in the window, with reviews, checks and statuses."""
    repo = rc.repo

    lo, hi = parse_ts(iso_z(start)), parse_ts(iso_z(as_of))

    def past_window(page: list[dict[str, Any]]) -> bool:
        return _sorted_past(page, "updated_at", lo)

    listed, _, _ = r.get_all("/pulls", {"state": "closed", "base": rc.production_branch, "sort": "updated",
                                        "direction": "desc"}, stop=past_window)
    seen: set[int] = set()
    for item in listed:
        merged = parse_ts(item.get("merged_at"))
        if merged is None or not (lo <= merged <= hi) or item["number"] in seen:
            continue
        seen.add(item["number"])
        n = item["number"]
        _, pr, url, etag = r.get(f"/pulls/{n}")
        yield r.record("pull", f"{repo}#{n}", url, pr, etag=etag)
        reviews, url, etag = r.get_all(f"/pulls/{n}/reviews")
        yield r.record("reviews", f"{repo}#{n}", url, reviews, etag=etag)
        sha = (pr.get("head") or {}).get("sha")
        if not sha:
            raise SourceError(f"GitHub {repo}: pull #{n} has no head sha")
        runs, url, etag = r.get_all(f"/commits/{sha}/check-runs", {"filter": "all"}, items_key="check_runs")
        yield r.record("check_runs", f"{repo}@{sha}", url, runs, etag=etag)
        sts, url, etag = r.get_all(f"/commits/{sha}/statuses")
        yield r.record("statuses", f"{repo}@{sha}", url, sts, etag=etag)
