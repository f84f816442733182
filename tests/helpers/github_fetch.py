"""Every configured repository's raw GitHub records in one call, as the tests ask for them.

The product fetches one repository at a time (``ingest.github.fetch.fetch_github_repo``, the unit
of concurrency and of Airflow's task mapping); this runs it for each configured repository in
turn with one client of the given retry policy, as a serial ingest would.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

from ccwatch.common.endpoints import Endpoint
from ccwatch.ingest.github.client import DEFAULT_RETRY, make_client
from ccwatch.ingest.github.fetch import fetch_github_repo
from ccwatch.ingest.records import RawRecord
from ccwatch.settings import Settings


def fetch_github(settings: Settings, endpoint: Endpoint, as_of: datetime, *, retry: Any = DEFAULT_RETRY,
                 plans: dict[str, Any] | None = None) -> Iterator[RawRecord]:
    """The raw records of every configured repository, in config order; raises SourceError."""
    gh = make_client(endpoint, retry=retry)
    try:
        for rc in settings.github.repositories:
            yield from fetch_github_repo(settings, endpoint, as_of, rc, (plans or {}).get(rc.repo), client=gh)
    finally:
        gh.close()
