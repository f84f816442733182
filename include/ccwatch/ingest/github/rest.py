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
from urllib.parse import urlencode, urlsplit

from github import Auth, Github, GithubException, GithubRetry, RateLimitExceededException

from ccwatch.common.endpoints import Endpoint
from ccwatch.ingest.github.answers import is_rate_limit as _is_rate_limit
from ccwatch.ingest.github.answers import next_link as _next_link
from ccwatch.ingest.github.answers import permission as _permission
from ccwatch.ingest.github.conditional import (
    VALIDATORS_KIND,
    list_commits,
    plan_validators,
    relink,
    ruleset_ids,
    url_key,
)
from ccwatch.ingest.http.retry import RETRY_STATUSES, RetryPolicy, github_retry, rate_limit_text
from ccwatch.ingest.records import RawRecord
from ccwatch.ingest.source import SourceError, fetched_now, iso_z, page_key, public_url, unique_items
from ccwatch.settings import RepoConfig, Settings
from ccwatch.warehouse.normalize.github import first_parent_chain
from ccwatch.warehouse.normalize.jira import parse_ts

SECONDS_BETWEEN_REQUESTS: float = 0.0
TIMEOUT_SECONDS = 30  # connect/read timeout of one request (PyGithub takes whole seconds)
PER_PAGE = 100
RETRY_POLICY = RetryPolicy()  # 5 retries, all waits of one request <= 15 min (connectors/resilience.py)


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


class _Repo:
    """One repository's requests; every failure is a SourceError naming repo and endpoint."""

    def __init__(self, gh: Github, endpoint: Endpoint, repo: str, validators: dict[str, str] | None = None,
                 budget: Any = None, as_of: datetime | None = None) -> None:
        self.as_of = as_of  # the run's as-of time (github_conditional: which ETags may be kept)
        self.req = gh.requester
        self.base = endpoint.base_url.rstrip("/")
        self.repo = repo
        self.prefix = f"/repos/{repo}"
        self.validators = dict(validators or {})  # url key -> ETag to send (github_conditional.py)
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
        if status == 429 or (status == 403 and _is_rate_limit(headers, data)):
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
        params = dict(params or {}, per_page=PER_PAGE)
        url: str | None = self.base + self.prefix + path
        items: list[Any] = []
        first_shown, etag, page_params = None, None, params
        fetched: set[tuple] = set()
        while url:
            status, headers, data, shown = self._call(url, page_params, conditional and first_shown is None)
            if status == 304:
                return None, shown, self.seen.get(url_key(shown))
            fetched.add(page_key(shown))
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
            if url and page_key(public_url(url)) in fetched:
                raise SourceError(f"GitHub {self.repo}: GET {shown}: the Link rel=\"next\" points back to a page "
                                  f"already fetched ({public_url(url)}): paging loop")
            if stop is not None and stop(page):
                break
        return unique_items(items), first_shown or "", etag  # a listing that shifted while paged

    def _error(self, status: int, data: Any, shown: str) -> SourceError:
        msg = data.get("message") if isinstance(data, dict) else None
        text = f"GitHub {self.repo}: GET {shown} answered HTTP {status}" + (f": {msg}" if msg else "")
        path = urlsplit(shown).path
        if status == 403:
            return SourceError(f"{text}. The token lacks access to {self.repo}: it needs {_permission(path)}")
        if status == 404 and path.endswith(self.prefix):
            return SourceError(f"{text}. {self.repo} does not exist or the token cannot see it (GitHub answers "
                               f"404 for a private repository the token has no access to): it needs "
                               f"{_permission(path)}")
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
        return RawRecord(source="github", kind=kind, natural_key=key, url=url, fetched_at=fetched_now(),
                         payload=payload, etag=etag, status_code=status)


def fetch_github(settings: Settings, endpoint: Endpoint, as_of: datetime, *,
                 seconds_between_requests: float | None = SECONDS_BETWEEN_REQUESTS,
                 retry: Any = DEFAULT_RETRY, plans: dict[str, Any] | None = None) -> Iterator[RawRecord]:
    """Yield the raw records of every configured repository; raise SourceError on any failure.

    ``plans``: repo -> ``ccwatch.ingest.plan.RepoPlan``; a repository without one (or with a full
    plan) is fetched over the whole lookback window."""
    gh = make_client(endpoint, seconds_between_requests=seconds_between_requests, retry=retry)
    try:
        for rc in settings.github.repositories:
            yield from fetch_github_repo(settings, endpoint, as_of, rc, (plans or {}).get(rc.repo), client=gh)
    finally:
        gh.close()


def fetch_github_repo(settings: Settings, endpoint: Endpoint, as_of: datetime, rc: RepoConfig, plan: Any = None,
                      *, client: Github | None = None, budget: Any = None) -> Iterator[RawRecord]:
    """The raw records of ONE repository (the unit of concurrency and of Airflow's task mapping).

    ``client``: a PyGithub client to reuse (not shared between threads); default: one of its own.
    ``budget``: a shared rate-limit budget of concurrent fetches (``connectors/ratebudget.py``)."""
    start = as_of - timedelta(days=settings.lookback_days)
    gh = client or make_client(endpoint)
    try:
        r = _Repo(gh, endpoint, rc.repo, plan_validators(plan), budget, as_of)
        yield from _fetch_repo(r, rc, start, as_of, plan)
        yield r.validators_record(as_of)  # last: every request of the fetch has answered
    finally:
        if client is None:
            gh.close()


def _fetch_repo(r: _Repo, rc: RepoConfig, start: datetime, as_of: datetime, plan: Any = None
                ) -> Iterator[RawRecord]:
    """One repository.  An incremental ``plan`` (docs/ARCHITECTURE.md, "Incremental ingestion")
    fetches PRs updated, commits made and deployments created since ``plan.since``, plus the
    statuses of ``plan.open_deployments``.  Repository, branch, protection, rules, rulesets,
    the commits and deployments listings and environments are conditional requests
    (github_conditional.py): with the plan's ETags an unchanged one answers 304, free, and
    yields a 304 record (the load keeps the stored copy)."""
    repo, branch = rc.repo, rc.production_branch
    incremental = plan is not None and plan.incremental
    since = plan.since if incremental else start
    status, data, url, etag = r.get("", conditional=True)
    yield r.record("repo", repo, url, data, status, etag)
    yield from _pulls(r, rc, start, as_of, since, plan)

    # the branch, its protection (403/404 are evidence) and its rules
    status, br, url, etag = r.get(f"/branches/{branch}", conditional=True)
    yield r.record("branch", f"{repo}:{branch}", url, br, status, etag)
    status, prot, url, etag = r.get(f"/branches/{branch}/protection", data_statuses=(403, 404), conditional=True)
    yield r.record("branch_protection", f"{repo}:{branch}", url, prot, status, etag)
    rules, url, etag = r.get_all(f"/rules/branches/{branch}", conditional=True)
    yield r.record("branch_rules", f"{repo}:{branch}", url, rules, 304 if rules is None else 200, etag)
    # a 304 rules list: the rulesets it named last time (a ruleset's bypass list or enforcement
    # can change without changing the branch's rules)
    rids = (ruleset_ids(rules) if rules is not None else tuple(getattr(plan, "ruleset_ids", ()) or ()))
    r.ruleset_ids = rids
    for rid in rids:
        status, rs, url, etag = r.get(f"/rulesets/{rid}", conditional=True)
        yield r.record("ruleset", f"{repo}/rulesets/{rid}", url, rs, status, etag)

    # first-parent history of the production branch in the window, and the PRs of each commit
    # (incremental: the stored tip when the branch answered 304)
    tip = (br.get("commit") or {}).get("sha") if isinstance(br, dict) else (plan.tip if incremental else None)
    commits, url, etag = list_commits(r, branch, start, since, tip, plan if incremental else None)
    yield r.record("commits", f"{repo}:{branch}", url, commits, 304 if commits is None else 200, etag)
    chain = first_parent_chain(commits or [], tip)  # 304: the branch did not move, no new commit
    yield from _commit_pulls(r, rc, chain + relink(plan, chain), since)  # + the overlap's unlinked ones

    # deployments (production and staging) with all their statuses
    # (incremental: created since `since`, merged with the stored list at load, plus the
    # stored deployments whose statuses may still move)
    lo = parse_ts(iso_z(since))
    open_deps = plan.open_deployments if incremental else {}
    for env in dict.fromkeys(rc.production_environments + rc.staging_environments):
        deps, url, etag = r.get_all("/deployments", {"environment": env},
                                    stop=lambda page: _sorted_past(page, "created_at", lo), conditional=True)
        if deps is None:  # 304: no deployment created since the stored list
            yield r.record("deployments", f"{repo}:{env}", url, None, 304, etag)
            deps = []
        else:
            deps = [d for d in deps if not _before(d.get("created_at"), lo)]
            yield r.record("deployments", f"{repo}:{env}", url, deps, etag=etag)
        ids = list(dict.fromkeys([d["id"] for d in deps] + [int(o["id"]) for o in open_deps.get(env, [])]))
        yield from _deployment_statuses(r, ids, list(deps or []) + list(open_deps.get(env, [])))

    for env in rc.production_environments:
        status, data, url, etag = r.get(f"/environments/{env}", data_statuses=(404,), conditional=True)
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


def _pulls(r: _Repo, rc: RepoConfig, start: datetime, as_of: datetime, since: datetime | None = None,
           plan: Any = None) -> Iterator[RawRecord]:
    """PRs merged into the production branch in the window and updated since ``since`` (default:
    the window start, i.e. all of them), with reviews, checks and statuses.  A new review or
    label bumps a PR's ``updated_at``, so an unchanged PR is never refetched.

    With a ``plan``, the pulls list's page 1 is asked first with the stored ETag
    (``github_conditional.pulls_changed``): a 304 means no PR changed, an incremental plan then
    needs nothing more.  GraphQL (``github_graphql``) batches the PRs unless disabled there."""
    from ccwatch.ingest.github import graphql as gql
    from ccwatch.ingest.github.conditional import pulls_changed

    if plan is not None and not pulls_changed(r, rc, plan) and plan.incremental:
        return
    if gql.ENABLED:
        yield from gql.fetch_pulls(r, rc, start, as_of, since)
        return
    repo = rc.repo

    lo, hi = parse_ts(iso_z(start)), parse_ts(iso_z(as_of))
    upd_lo = parse_ts(iso_z(since or start))

    def past_window(page: list[dict[str, Any]]) -> bool:
        return _sorted_past(page, "updated_at", upd_lo)

    listed, _, _ = r.get_all("/pulls", {"state": "closed", "base": rc.production_branch, "sort": "updated",
                                        "direction": "desc"}, stop=past_window)
    seen: set[int] = set()
    for item in listed:
        merged = parse_ts(item.get("merged_at"))
        if merged is None or not (lo <= merged <= hi) or item["number"] in seen:
            continue
        if _before(item.get("updated_at"), upd_lo):
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



def _commit_pulls(r: _Repo, rc: RepoConfig, first_parent: list[dict[str, Any]], since: datetime
                  ) -> Iterator[RawRecord]:
    from ccwatch.ingest.github import graphql as gql  # imports this module
    return gql.commit_pulls(r, rc, first_parent, since)  # GraphQL history pages, REST for the rest


def _deployment_statuses(r: _Repo, ids: list[int], known: list[dict[str, Any]]) -> Iterator[RawRecord]:
    from ccwatch.ingest.github import graphql as gql
    return gql.deployment_statuses(r, ids, known)  # by node_id (in `known`) through GraphQL, else REST
