"""Jira connector: server info, the field list, issues and their full changelogs (raw).

The ``jira`` client is built here from the Endpoint (not Airflow's JiraHook, which wraps
atlassian-python-api with the legacy search).  ``serverInfo.deploymentType`` decides the
search API (API-NOTES): Cloud has removed ``/rest/api/{2,3}/search`` and pages
``/rest/api/3/search/jql`` with ``nextPageToken``/``isLast`` (``enhanced_search_issues``);
Server/Data Center pages ``/rest/api/2/search`` with ``startAt``/``total``.

The search asks for ``expand=changelog``: each issue then embeds part of its history (at most
100 histories on legacy search, fewer - 40 by user reports - on enhanced search; API-NOTES).
An embedded changelog is used only when it is provably complete (``startAt`` 0, ``total``
present and no more than the histories returned, and fewer histories than that API's cap, so a
``total`` that counted only the returned page cannot pass a truncated history as whole); the
``changelog`` record is then built from those histories, oldest first, with the search URL and
``#<key>`` as its url.  Every other issue's history is paged from
``/rest/api/{2|3}/issue/{key}/changelog`` (the client has no public method for it: we use its
``_get_json``, which applies its URL scheme, session, auth and retries), by a small thread pool
(one ``jira`` client, hence one requests session, per worker thread); records come out in the
same order as a serial fetch.  The issue record keeps the payload exactly as the search returned
it (embedded changelog included).

A JQL ``key in (...)`` naming a key that does not exist (or is not visible) fails with
400: the keys named by the error are dropped, recorded as ``issue_missing`` with the
error body, and the search is retried.  Every other failure raises SourceError.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import requests
from jira import JIRA, JIRAError

from ccwatch.common.endpoints import Endpoint
from ccwatch.common.times import parse_ts
from ccwatch.common.times import utc_now_iso as fetched_now
from ccwatch.ingest.errors import SourceError
from ccwatch.ingest.http.paging import unique_items
from ccwatch.ingest.http.retry import RETRY_STATUSES, RetryPolicy, mount_retry, rate_limit_text
from ccwatch.ingest.http.urls import public_url
from ccwatch.ingest.records import RawRecord
from ccwatch.settings import Settings

PAGE_SIZE = 100
KEY_CHUNK = 50
TIMEOUT_SECONDS = 30  # connect/read timeout of one request
# 429, 5xx, resets and read timeouts: jittered backoff, Retry-After honoured, bounded in count and
# total wait (ingest/http/retry.py).  The library's own ResilientSession retries are off: they
# skip 500/502/504 and read timeouts and sleep up to 60 s per try.
RETRY_POLICY = RetryPolicy()
# JQL dates are read in the searching user's time zone: start the window a day earlier so no
# ticket updated in the UTC window is missed whatever that zone is (extra tickets are harmless).
JQL_TZ_MARGIN = timedelta(days=1)
_QUOTED_KEY = re.compile(r"'([A-Z][A-Z0-9_]*-\d+)'")
# histories a search embeds per issue with expand=changelog (API-NOTES): an embedded changelog
# of this many or more is not trusted as complete whatever its ``total`` says
EMBED_CAP = {"cloud": 40, "server": 100}
CHANGELOG_WORKERS = 6  # concurrent per-issue changelog fetches (each with its own client)


class _Jira:
    def __init__(self, endpoint: Endpoint, scope: str, api: str = "2", deployment_type: str | None = None) -> None:
        if not endpoint.login or not endpoint.token:
            raise SourceError(f"Jira {endpoint} ({scope}): the connection needs a login and an API token")
        self.base = endpoint.base_url.rstrip("/")
        self.scope = scope
        self.api = api
        self.client = JIRA(server=self.base, basic_auth=(endpoint.login, endpoint.token), get_server_info=False,
                           max_retries=0, timeout=TIMEOUT_SECONDS,
                           options={"verify": endpoint.verify_tls, "rest_api_version": api})
        mount_retry(self.client._session, RETRY_POLICY)
        self.client.deploymentType = deployment_type  # what JIRA(get_server_info=True) would set
        self._endpoint, self._deployment_type = endpoint, deployment_type
        self._local = threading.local()

    def for_thread(self) -> _Jira:
        """This connection for the calling worker thread: its own client and session (a requests
        Session is not documented as thread-safe)."""
        mine = getattr(self._local, "jira", None)
        if mine is None:
            mine = self._local.jira = _Jira(self._endpoint, self.scope, self.api, self._deployment_type)
        return mine

    def url(self, path: str, params: dict[str, Any] | None = None) -> str:
        return public_url(f"{self.base}/rest/api/{self.api}/{path}" + (f"?{urlencode(params)}" if params else ""))

    def call(self, what: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except JIRAError as exc:
            raise SourceError(f"Jira {self.scope}: {what} answered HTTP {exc.status_code}: {_error_text(exc)}") from None
        except (requests.RequestException, ValueError) as exc:
            raise SourceError(f"Jira {self.scope}: {what} failed{_failure_hint(exc)}: {type(exc).__name__}: {exc}"
                              ) from None

    def record(self, kind: str, key: str, url: str, payload: Any, status: int = 200) -> RawRecord:
        return RawRecord(source="jira", kind=kind, natural_key=key, url=url, fetched_at=fetched_now(),
                         payload=payload, status_code=status)


def _error_text(exc: JIRAError) -> str:
    body = _error_body(exc)
    text = (exc.text or "").strip()[:300] or "no message"
    if isinstance(body, dict):
        msgs = list(body.get("errorMessages") or []) + [f"{k}: {v}" for k, v in (body.get("errors") or {}).items()]
        if msgs:
            text = "; ".join(str(m) for m in msgs)
    return text + _status_hint(exc)


def _status_hint(exc: JIRAError) -> str:
    """What an error status means for the run (the retries are spent when one of RETRY_STATUSES remains)."""
    status = exc.status_code
    resp = getattr(exc, "response", None)
    if status == 429:
        return f" (rate limited; {rate_limit_text(getattr(resp, 'headers', None))}; still limited after the retries)"
    if status in RETRY_STATUSES:
        return " (still failing after the retries)"
    if status == 401:
        return " (the login or API token is wrong, expired or revoked)"
    if status == 403:
        return " (the Jira user lacks the 'Browse projects' permission, or the API token is not accepted)"
    return ""


def _failure_hint(exc: Exception) -> str:
    if isinstance(exc, ValueError):  # requests' JSONDecodeError included
        return " (the answer is not JSON: truncated or not an API answer)"
    return " (gave up after the retries)"


def _error_body(exc: JIRAError) -> Any:
    resp = getattr(exc, "response", None)
    try:
        return resp.json() if resp is not None else None
    except ValueError:
        return None


def fetch_jira(settings: Settings, endpoint: Endpoint, as_of: datetime,
               keys: Iterable[str] | None = None, plan: Any = None) -> Iterator[RawRecord]:
    """Yield server_info, fields, statuses, then issue + changelog per ticket (and issue_missing).

    Without ``keys``: the tickets of the configured projects updated in the lookback window, or,
    with an incremental ``plan`` (``ccwatch.ingest.plan.JiraPlan``), updated since each project
    group's ``since``.  Every transition, field edit and comment bumps ``updated``, so nothing
    that changed is missed; time alone changes nothing (evaluation reads the as-of time)."""
    wanted = None if keys is None else sorted(dict.fromkeys(keys))
    scope = f"projects {', '.join(settings.jira.project_keys)}" if wanted is None else f"tickets {', '.join(wanted[:5])}" + (
        " ..." if wanted and len(wanted) > 5 else "")
    probe = _Jira(endpoint, scope)
    info = probe.call("GET serverInfo", probe.client.server_info)
    if not isinstance(info, dict) or not info.get("deploymentType"):
        raise SourceError(f"Jira {scope}: GET {probe.url('serverInfo')} returned no deploymentType")
    yield probe.record("server_info", "serverInfo", probe.url("serverInfo"), info)
    fields = probe.call("GET field", probe.client.fields)
    yield probe.record("fields", "fields", probe.url("field"), fields)
    # every status with its category: a changelog moves through statuses no issue is in now
    statuses = probe.call("GET status", lambda: [st.raw for st in probe.client.statuses()])
    yield probe.record("statuses", "statuses", probe.url("status"), statuses)

    cloud = info["deploymentType"] == "Cloud"
    j = _Jira(endpoint, scope, api="3" if cloud else "2", deployment_type=info["deploymentType"])
    with _Changelogs(j, cloud) as changelogs:
        yield from _fetch_issues(settings, j, changelogs, as_of, wanted, plan, scope)


def _fetch_issues(settings: Settings, j: _Jira, changelogs: _Changelogs, as_of: datetime,
                  wanted: list[str] | None, plan: Any, scope: str) -> Iterator[RawRecord]:
    cloud = changelogs.cloud
    search = _search_cloud if cloud else _search_server
    if wanted is None:
        groups = plan.groups if plan is not None else [
            (settings.jira.project_keys, "full", as_of - timedelta(days=settings.lookback_days))]
        for group, _mode, since in groups:
            start = since - JQL_TZ_MARGIN
            projects = ", ".join(f'"{p}"' for p in group)
            jql = f'project in ({projects}) AND updated >= "{start.strftime("%Y-%m-%d %H:%M")}" ORDER BY key ASC'
            yield from changelogs.records(search(j, jql), _search_url(j, jql, cloud))
        return
    for i in range(0, len(wanted), KEY_CHUNK):
        chunk = wanted[i:i + KEY_CHUNK]
        while chunk:
            jql = f"key in ({', '.join(chunk)}) ORDER BY key ASC"
            try:
                issues = list(search(j, jql, raw_400=True))
            except _BadKeys as bad:
                missing = [k for k in chunk if k in bad.keys]
                if not missing:
                    raise SourceError(f"Jira {scope}: search {bad.url} answered HTTP 400: {bad.text}") from None
                for k in missing:
                    yield j.record("issue_missing", k, bad.url, bad.body, 400)
                chunk = [k for k in chunk if k not in missing]
                continue
            yield from changelogs.records(issues, _search_url(j, jql, cloud))
            break


class _BadKeys(Exception):
    def __init__(self, url: str, body: Any, text: str) -> None:
        super().__init__(text)
        self.url, self.body, self.text = url, body, text
        self.keys = set(_QUOTED_KEY.findall(text))


def _search_page(j: _Jira, what: str, fn: Callable[..., Any], url: str, raw_400: bool, **kw: Any) -> dict[str, Any]:
    try:
        page = fn(**kw)
    except JIRAError as exc:
        if raw_400 and exc.status_code == 400:
            raise _BadKeys(url, _error_body(exc) or {"errorMessages": [exc.text]}, _error_text(exc)) from None
        raise SourceError(f"Jira {j.scope}: {what} {url} answered HTTP {exc.status_code}: {_error_text(exc)}") from None
    except (requests.RequestException, ValueError) as exc:
        raise SourceError(f"Jira {j.scope}: {what} {url} failed{_failure_hint(exc)}: {type(exc).__name__}: {exc}"
                          ) from None
    if not isinstance(page, dict) or not isinstance(page.get("issues"), list):
        raise SourceError(f"Jira {j.scope}: {what} {url} did not return an issue list")
    return page


def _search_cloud(j: _Jira, jql: str, raw_400: bool = False) -> Iterator[dict[str, Any]]:
    """GET /rest/api/3/search/jql, following nextPageToken until isLast."""
    token: str | None = None
    seen_tokens: set[str] = set()
    seen_keys: set[str] = set()
    while True:
        url = j.url("search/jql", {"jql": jql})
        page = _search_page(j, "search", j.client.enhanced_search_issues, url, raw_400, jql_str=jql,
                            nextPageToken=token, maxResults=PAGE_SIZE, fields="*all", expand="changelog",
                            json_result=True)
        yield from _new_issues(page["issues"], seen_keys)
        token = page.get("nextPageToken")
        if page.get("isLast", token is None) or not token:
            return
        if token in seen_tokens:
            raise SourceError(f"Jira {j.scope}: search {url} repeated a nextPageToken (paging loop)")
        seen_tokens.add(token)


def _new_issues(issues: list[Any], seen: set[str]) -> Iterator[Any]:
    """Issues not yielded before: results that shift while paged repeat some (de-duplicated by key)."""
    for issue in issues:
        key = issue.get("key") if isinstance(issue, dict) else None
        if key is not None and key in seen:
            continue
        if key is not None:
            seen.add(key)
        yield issue


def _search_server(j: _Jira, jql: str, raw_400: bool = False) -> Iterator[dict[str, Any]]:
    """GET /rest/api/2/search, paging with startAt until total."""
    start = 0
    seen_keys: set[str] = set()
    while True:
        url = j.url("search", {"jql": jql})
        page = _search_page(j, "search", j.client.search_issues, url, raw_400, jql_str=jql, startAt=start,
                            maxResults=PAGE_SIZE, fields="*all", expand="changelog", json_result=True,
                            validate_query=True)
        issues = page["issues"]
        yield from _new_issues(issues, seen_keys)
        start += len(issues)
        total = page.get("total")
        if not issues or total is None or start >= int(total):
            return


def _search_url(j: _Jira, jql: str, cloud: bool) -> str:
    return j.url("search/jql" if cloud else "search", {"jql": jql, "expand": "changelog"})


def embedded_histories(issue: dict[str, Any], cap: int) -> list[dict[str, Any]] | None:
    """The histories embedded in a searched issue when they are provably its whole changelog, else None.

    Provable: ``startAt`` 0, an integer ``total`` no larger than the histories returned, and fewer
    histories than the API embeds at most (``cap``): a missing total proves nothing."""
    cl = issue.get("changelog")
    if not isinstance(cl, dict):
        return None
    hist, total, start = cl.get("histories"), cl.get("total"), cl.get("startAt")
    if not isinstance(hist, list) or not all(isinstance(h, dict) and h.get("id") is not None for h in hist):
        return None
    if type(total) is not int or type(start) is not int or start != 0:
        return None
    if len(hist) < total or len(hist) >= cap:
        return None
    return hist


class _Changelogs:
    """Issue + changelog records for searched issues: embedded when complete, else paged concurrently."""

    def __init__(self, j: _Jira, cloud: bool, workers: int | None = None) -> None:
        self.j, self.cloud = j, cloud
        self.cap = EMBED_CAP["cloud" if cloud else "server"]
        self.pool = ThreadPoolExecutor(max_workers=workers or CHANGELOG_WORKERS, thread_name_prefix="jira-changelog")
        self.failed = threading.Event()  # one paging failed: the queued ones send nothing more

    def __enter__(self) -> _Changelogs:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)

    def _paged(self, key: str) -> list[dict[str, Any]]:
        if self.failed.is_set():  # only issues after the failed one (FIFO): never yielded
            raise SourceError(f"Jira {self.j.scope}: changelog of {key} not fetched (an earlier one failed)")
        try:
            return _changelog(self.j.for_thread(), key, self.cloud)
        except BaseException:
            self.failed.set()
            raise

    def records(self, issues: Iterable[dict[str, Any]], search_url: str) -> Iterator[RawRecord]:
        """Per search page (PAGE_SIZE issues): start the pagings it needs, then yield in order."""
        batch: list[dict[str, Any]] = []
        for issue in issues:
            batch.append(issue)
            if len(batch) >= PAGE_SIZE:
                yield from self._batch(batch, search_url)
                batch = []
        if batch:
            yield from self._batch(batch, search_url)

    def _batch(self, issues: list[dict[str, Any]], search_url: str) -> Iterator[RawRecord]:
        j = self.j
        plan: list[tuple[dict[str, Any], str, list[dict[str, Any]] | Future]] = []
        for issue in issues:
            key = issue.get("key") if isinstance(issue, dict) else None
            if not key:
                raise SourceError(f"Jira {j.scope}: search returned an issue without a key")
            hist = embedded_histories(issue, self.cap)
            plan.append((issue, key, hist if hist is not None else self.pool.submit(self._paged, key)))
        try:
            for issue, key, hist in plan:
                yield j.record("issue", key, j.url(f"issue/{key}"), issue)
                if isinstance(hist, Future):
                    yield j.record("changelog", key, j.url(f"issue/{key}/changelog"), hist.result())
                else:
                    yield j.record("changelog", key, f"{search_url}#{key}",
                                   _oldest_first(unique_items(hist)))
        finally:
            for _issue, _key, hist in plan:
                if isinstance(hist, Future):
                    hist.cancel()


def _changelog(j: _Jira, key: str, cloud: bool) -> list[dict[str, Any]]:
    """Every history of the issue, oldest first."""
    histories: list[dict[str, Any]] = []
    start = 0
    while True:
        params = {"startAt": start, "maxResults": PAGE_SIZE}
        try:
            page = j.client._get_json(f"issue/{key}/changelog", params=params)
        except JIRAError as exc:
            if exc.status_code == 404 and not cloud and not histories:
                return _changelog_expanded(j, key)  # older Server/DC: no changelog resource
            raise SourceError(f"Jira {j.scope}: GET {j.url(f'issue/{key}/changelog', params)} answered HTTP "
                              f"{exc.status_code}: {_error_text(exc)}") from None
        except (requests.RequestException, ValueError) as exc:
            raise SourceError(f"Jira {j.scope}: GET {j.url(f'issue/{key}/changelog')} failed{_failure_hint(exc)}: "
                              f"{type(exc).__name__}: {exc}") from None
        values = page.get("values") if isinstance(page, dict) else None
        if not isinstance(values, list):
            raise SourceError(f"Jira {j.scope}: GET {j.url(f'issue/{key}/changelog')} returned no 'values' list")
        histories.extend(values)
        start += len(values)
        total = page.get("total")
        if not values or page.get("isLast") is True or (total is not None and start >= int(total)):
            break
    return _oldest_first(unique_items(histories))  # by history id: pages that shifted repeat some


def _changelog_expanded(j: _Jira, key: str) -> list[dict[str, Any]]:
    issue = j.call(f"GET issue/{key}?expand=changelog", j.client._get_json, f"issue/{key}",
                   params={"expand": "changelog", "fields": "key"})
    cl = (issue or {}).get("changelog") or {}
    hist = cl.get("histories")
    if not isinstance(hist, list) or (cl.get("total") is not None and len(hist) < int(cl["total"])):
        raise SourceError(f"Jira {j.scope}: the changelog of {key} is incomplete ({len(hist or [])} of {cl.get('total')})")
    return _oldest_first(hist)


def _oldest_first(histories: list[dict[str, Any]]) -> list[dict[str, Any]]:
    def at(h: dict[str, Any]) -> tuple[str, int]:
        created = parse_ts(h.get("created"))
        hid = str(h.get("id", ""))
        return (created.isoformat() if created else "", int(hid) if hid.isdigit() else 0)

    return sorted(histories, key=at)


__all__ = ["fetch_jira"]
