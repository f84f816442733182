"""The GitHub REST client of one repository: requests, paging, ETags and errors as SourceError.

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
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any
from urllib.parse import urlencode, urlsplit

from github import Auth, Github, GithubException, GithubRetry, RateLimitExceededException

from ccwatch.common.endpoints import Endpoint
from ccwatch.common.times import iso_z, utc_now_iso
from ccwatch.ingest.errors import SourceError
from ccwatch.ingest.github.answers import is_rate_limit, permission
from ccwatch.ingest.github.conditional import VALIDATORS_KIND, url_key
from ccwatch.ingest.http.paging import next_link, page_key, unique_items
from ccwatch.ingest.http.retry import RETRY_STATUSES, RetryPolicy, github_retry, rate_limit_text
from ccwatch.ingest.http.urls import public_url
from ccwatch.ingest.records import RawRecord

SECONDS_BETWEEN_REQUESTS: float = 0.0
TIMEOUT_SECONDS = 30  # connect/read timeout of one request (PyGithub takes whole seconds)
PER_PAGE = 100
RETRY_POLICY = RetryPolicy()  # 5 retries, all waits of one request <= 15 min (ingest/http/retry.py)


DEFAULT_RETRY = "default"


def default_retry() -> GithubRetry:
    """5xx/429, resets and read timeouts (and GitHub's 403 rate-limit answers, which GithubRetry
    recognises) retried with jittered exponential backoff, ``Retry-After`` and the rate-limit reset
    honoured, bounded by RETRY_POLICY in count and total wait."""
    return github_retry(RETRY_POLICY)


def make_client(endpoint: Endpoint, *, seconds_between_requests: float | None = SECONDS_BETWEEN_REQUESTS,
                retry: Any = DEFAULT_RETRY) -> Github:
    """``retry``: DEFAULT_RETRY, an int or a urllib3 ``Retry``, or None for no retry."""
    if not endpoint.token:
        raise SourceError(f"GitHub {endpoint}: no token configured in the connection")
    return Github(base_url=endpoint.base_url.rstrip("/"), auth=Auth.Token(endpoint.token), per_page=PER_PAGE,
                  timeout=TIMEOUT_SECONDS, verify=endpoint.verify_tls,
                  retry=default_retry() if retry == DEFAULT_RETRY else retry,
                  seconds_between_requests=seconds_between_requests, seconds_between_writes=None)


@contextmanager
def own_client(endpoint: Endpoint, client: Github | None = None) -> Iterator[Github]:
    """``client`` as given (its owner closes it), else a client of ``endpoint``'s own, closed on leaving."""
    if client is not None:
        yield client
        return
    gh = make_client(endpoint)
    try:
        yield gh
    finally:
        gh.close()


class ThreadClients:
    """One PyGithub client per thread (PyGithub's requester is not shared between threads), all
    closed together: :meth:`get` in the thread that makes requests, :meth:`close` once they are done."""

    def __init__(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint
        self.local, self.lock, self.made = threading.local(), threading.Lock(), []

    def get(self) -> Github:
        gh = getattr(self.local, "gh", None)
        if gh is None:
            gh = self.local.gh = make_client(self.endpoint)
            with self.lock:
                self.made.append(gh)
        return gh

    def close(self) -> None:
        for gh in self.made:
            gh.close()


class RepoClient:
    """One repository's requests; every failure is a SourceError naming repo and endpoint."""

    def __init__(self, gh: Github, endpoint: Endpoint, repo: str, validators: dict[str, str] | None = None,
                 budget: Any = None, as_of: datetime | None = None) -> None:
        self.as_of = as_of  # the run's as-of time (conditional.py: which ETags may be kept)
        self.req = gh.requester
        self.base = endpoint.base_url.rstrip("/")
        self.repo = repo
        self.prefix = f"/repos/{repo}"
        self.validators = dict(validators or {})  # url key -> ETag to send (conditional.py)
        self.seen: dict[str, str] = {}  # url key -> ETag of this fetch's answers (the next plan's validators)
        self.budget = budget  # ratebudget.RateBudget shared by concurrent fetches, or None
        self.pulls_page: Any = None
        self.ruleset_ids: tuple[int, ...] = ()

    def _call(self, path: str, params: dict[str, Any] | None, conditional: bool = False
              ) -> tuple[int, dict[str, str], Any, str]:
        """``conditional``: send the plan's ETag of this URL as If-None-Match (the answer may be 304)
        and remember the answer's ETag."""
        url = path if path.startswith("http") else self.base + path
        shown = public_url(url if not params else f"{url}?{urlencode(params)}")
        key = url_key(shown)
        sent = self.validators.get(key) if conditional else None
        if self.budget is not None:
            self.budget.acquire("core")
        try:
            status, headers, body = self.req.requestJson("GET", url, parameters=params or None,
                                                         headers={"If-None-Match": sent} if sent else None)
        except RateLimitExceededException as exc:  # retries spent, or the wait would pass the budget
            self._feed(exc.headers)
            raise self._rate_limited(shown, exc.headers, exc.data) from None
        except GithubException as exc:
            # GithubRetry inspects every 403 and raises the plain API error when it is not a rate
            # limit: that is an HTTP answer like any other (e.g. protection unreadable)
            status, headers, body = exc.status, dict(exc.headers or {}), exc.data
        except Exception as exc:  # connection errors, timeouts, exhausted retries
            raise SourceError(f"GitHub {self.repo}: GET {shown} failed (gave up after the retries): "
                              f"{type(exc).__name__}: {exc}") from None
        headers = {k.lower(): v for k, v in (headers or {}).items()}
        self._feed(headers)
        if status == 304:
            if not sent:  # only an If-None-Match may be answered 304
                raise SourceError(f"GitHub {self.repo}: GET {shown} answered HTTP 304 to a request without "
                                  "If-None-Match")
            self.seen[key] = headers.get("etag") or sent
            return status, headers, None, shown
        if conditional and status == 200 and headers.get("etag"):
            self.seen[key] = headers["etag"]
        if not isinstance(body, (str, bytes, type(None))):
            data = body
        else:
            try:
                data = json.loads(body) if body else None
            except ValueError:
                raise SourceError(f"GitHub {self.repo}: GET {shown}: HTTP {status}, body is not JSON "
                                  f"(truncated or not an API answer)") from None
        if status == 429 or (status == 403 and is_rate_limit(headers, data)):
            raise self._rate_limited(shown, headers, data)  # never evidence, whatever the endpoint
        if status == 401:
            msg = data.get("message") if isinstance(data, dict) else None
            raise SourceError(f"GitHub {self.repo}: GET {shown} answered HTTP 401" + (f" ({msg})" if msg else "")
                              + ": the token is invalid, expired or revoked; check the connection's token")
        return status, headers, data, shown

    def _feed(self, headers: Any) -> None:
        if self.budget is not None and headers:
            self.budget.update(headers)

    def _rate_limited(self, shown: str, headers: Any, data: Any) -> SourceError:
        msg = data.get("message") if isinstance(data, dict) else data
        return SourceError(f"GitHub {self.repo}: GET {shown}: rate limit exceeded and not reset within the "
                           f"retry budget ({rate_limit_text(headers)}): {msg or 'no message'}")

    def get(self, path: str, params: dict[str, Any] | None = None, data_statuses: tuple[int, ...] = (),
            conditional: bool = False) -> tuple[int, Any, str, str | None]:
        """``conditional``: may answer ``(304, None, url, etag)``: unchanged since the stored copy."""
        status, headers, data, shown = self._call(self.prefix + path, params, conditional)
        if status == 304:
            return status, None, shown, self.seen.get(url_key(shown))
        if status != 200 and status not in data_statuses:
            raise self._error(status, data, shown)
        return status, data, shown, headers.get("etag")

    def get_all(self, path: str, params: dict[str, Any] | None = None, items_key: str | None = None,
                stop=None, conditional: bool = False) -> tuple[list[Any] | None, str, str | None]:
        """Every page (Link rel="next"); ``stop(page_items)`` True ends paging early.
        ``conditional``: the first page is asked with the stored ETag; a 304 returns
        ``(None, url, etag)`` (the listing is unchanged since the stored copy)."""
        _, items, shown, etag = self.get_listing(path, params, items_key, stop, conditional)
        return items, shown, etag

    def get_listing(self, path: str, params: dict[str, Any] | None = None, items_key: str | None = None,
                    stop=None, conditional: bool = False, data_statuses: tuple[int, ...] = ()
                    ) -> tuple[int, Any, str, str | None]:
        """``(status, items, url, etag)`` of every page, as :meth:`get_all`; a first page answered
        with one of ``data_statuses`` (e.g. 403/404 kept as evidence) returns ``(status, body,
        url, None)``; a 304 returns ``(304, None, url, etag)``."""
        params = dict(params or {}, per_page=PER_PAGE)
        url: str | None = self.base + self.prefix + path
        items: list[Any] = []
        first_shown, etag, page_params = None, None, params
        fetched: set[tuple] = set()
        while url:
            status, headers, data, shown = self._call(url, page_params, conditional and first_shown is None)
            if status == 304:
                return 304, None, shown, self.seen.get(url_key(shown))
            fetched.add(page_key(shown))
            if first_shown is None and status in data_statuses:
                return status, data, shown, None
            if status != 200:
                raise self._error(status, data, shown)
            page = data.get(items_key) if items_key and isinstance(data, dict) else data
            if not isinstance(page, list):
                raise SourceError(f"GitHub {self.repo}: GET {shown}: expected a list, got {type(page).__name__}")
            items.extend(page)
            if first_shown is None:
                first_shown, etag = shown, headers.get("etag")
            url = next_link(headers.get("link", ""))
            page_params = None  # the next link carries the query
            if url and page_key(public_url(url)) in fetched:
                raise SourceError(f"GitHub {self.repo}: GET {shown}: the Link rel=\"next\" points back to a page "
                                  f"already fetched ({public_url(url)}): paging loop")
            if stop is not None and stop(page):
                break
        return 200, unique_items(items), first_shown or "", etag  # a listing that shifted while paged

    def _error(self, status: int, data: Any, shown: str) -> SourceError:
        msg = data.get("message") if isinstance(data, dict) else None
        text = f"GitHub {self.repo}: GET {shown} answered HTTP {status}" + (f": {msg}" if msg else "")
        path = urlsplit(shown).path
        if status == 403:
            return SourceError(f"{text}. The token lacks access to {self.repo}: it needs {permission(path)}")
        if status == 404 and path.endswith(self.prefix):
            return SourceError(f"{text}. {self.repo} does not exist or the token cannot see it (GitHub answers "
                               f"404 for a private repository the token has no access to): it needs "
                               f"{permission(path)}")
        if status in RETRY_STATUSES:
            return SourceError(f"{text} (still failing after the retries)")
        return SourceError(text)

    def validators_record(self, as_of: datetime) -> RawRecord:
        """The ETags of this fetch's conditional answers (kept in the ingest state after the load)."""
        return self.record(VALIDATORS_KIND, self.repo, self.base + self.prefix,
                           {"as_of": iso_z(as_of), "validators": dict(sorted(self.seen.items())),
                            "ruleset_ids": list(self.ruleset_ids)})

    def record(self, kind: str, key: str, url: str, payload: Any, status: int = 200, etag: str | None = None
               ) -> RawRecord:
        return RawRecord(source="github", kind=kind, natural_key=key, url=url, fetched_at=utc_now_iso(),
                         payload=payload, etag=etag, status_code=status)
