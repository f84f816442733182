"""Jira connector: server info, the field list, issues and their full changelogs (raw).

The ``jira`` client is built here from the Endpoint (not Airflow's JiraHook, which wraps
atlassian-python-api with the legacy search).  ``serverInfo.deploymentType`` decides the
search API (API-NOTES): Cloud has removed ``/rest/api/{2,3}/search`` and pages
``/rest/api/3/search/jql`` with ``nextPageToken``/``isLast`` (``enhanced_search_issues``);
Server/Data Center pages ``/rest/api/2/search`` with ``startAt``/``total``.

Changelogs embedded in issues are truncated, so each issue's history is paged from
``/rest/api/{2|3}/issue/{key}/changelog`` (the client has no public method for it: we
use its ``_get_json``, which applies its URL scheme, session, auth and retries).

A JQL ``key in (...)`` naming a key that does not exist (or is not visible) fails with
400: the keys named by the error are dropped, recorded as ``issue_missing`` with the
error body, and the search is retried.  Every other failure raises SourceError.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import requests
from jira import JIRA, JIRAError

from ccwatch.connectors import SourceError, fetched_now, public_url, unique_items
from ccwatch.connectors.resilience import RETRY_STATUSES, RetryPolicy, mount_retry, rate_limit_text
from ccwatch.endpoints import Endpoint
from ccwatch.settings import Settings
from ccwatch.staging import RawRecord
from ccwatch.warehouse.normalize_jira import parse_ts

PAGE_SIZE = 100
KEY_CHUNK = 50
TIMEOUT_SECONDS = 30  # connect/read timeout of one request
# 429, 5xx, resets and read timeouts: jittered backoff, Retry-After honoured, bounded in count and
# total wait (connectors/resilience.py).  The library's own ResilientSession retries are off: they
# skip 500/502/504 and read timeouts and sleep up to 60 s per try.
RETRY_POLICY = RetryPolicy()
# JQL dates are read in the searching user's time zone: start the window a day earlier so no
# ticket updated in the UTC window is missed whatever that zone is (extra tickets are harmless).
JQL_TZ_MARGIN = timedelta(days=1)
_QUOTED_KEY = re.compile(r"'([A-Z][A-Z0-9_]*-\d+)'")


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
    with an incremental ``plan`` (``ccwatch.watermarks.JiraPlan``), updated since each project
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
    search = _search_cloud if cloud else _search_server
    if wanted is None:
        groups = plan.groups if plan is not None else [
            (settings.jira.project_keys, "full", as_of - timedelta(days=settings.lookback_days))]
        for group, _mode, since in groups:
            start = since - JQL_TZ_MARGIN
            projects = ", ".join(f'"{p}"' for p in group)
            jql = f'project in ({projects}) AND updated >= "{start.strftime("%Y-%m-%d %H:%M")}" ORDER BY key ASC'
            for issue in search(j, jql):
                yield from _issue_records(j, issue, cloud)
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
            for issue in issues:
                yield from _issue_records(j, issue, cloud)
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
                            nextPageToken=token, maxResults=PAGE_SIZE, fields="*all", json_result=True)
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
                            maxResults=PAGE_SIZE, fields="*all", json_result=True, validate_query=True)
        issues = page["issues"]
        yield from _new_issues(issues, seen_keys)
        start += len(issues)
        total = page.get("total")
        if not issues or total is None or start >= int(total):
            return


def _issue_records(j: _Jira, issue: dict[str, Any], cloud: bool) -> Iterator[RawRecord]:
    key = issue.get("key")
    if not key:
        raise SourceError(f"Jira {j.scope}: search returned an issue without a key")
    yield j.record("issue", key, j.url(f"issue/{key}"), issue)
    yield j.record("changelog", key, j.url(f"issue/{key}/changelog"), _changelog(j, key, cloud))


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
