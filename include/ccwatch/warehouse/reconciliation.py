"""(r2) Population reconciliation (CONTROLS.md, "Evidence an auditor can trust"; table ``reconciliation``,
migration 10).

Per configured repository, the number of PRs merged into the production branch in the window
according to an independent source, GitHub search's ``issueCount`` (raw kind ``merged_count``,
fetched by the connector with the search string ``repo:o/r is:pr is:merged base:<branch>
merged:<from>..<to>``), against the population's count of PR changes of that repository.
``store_reconciliation`` runs in the transaction that writes the date's ``control_results`` and
``population`` (a rerun of a date replaces its rows).

A count stored for another window (the raw row holds the latest fetch; a rerun of an older date
without a fetch would find a later window's count) or no count at all is not assumed to match:
``search_count`` is NULL and ``match`` false, with a detail saying why (fail closed).  A difference
fails the run's reconciliation check: it is named in the report, the Slack message and
``reconciliation.csv``; the control results are not changed (the check is about the population,
not about any one change).
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import duckdb

from ccwatch.common.times import naive_utc
from ccwatch.ingest.github.queries import merged_count_query, search_time
from ccwatch.settings import Settings

COLUMNS = ("as_of", "repo", "branch", "window_from", "window_to", "search_query", "search_count", "searched_at",
           "population_count", "direct_pushes", "match", "detail")


def _count(payload: object) -> int | None:
    data = payload.get("data") if isinstance(payload, dict) else None
    search = data.get("search") if isinstance(data, dict) else None
    n = search.get("issueCount") if isinstance(search, dict) else None
    return n if isinstance(n, int) and not isinstance(n, bool) else None


def reconcile(con: duckdb.DuckDBPyConnection, settings: Settings, as_of: datetime) -> list[dict]:
    """One row per configured repository (COLUMNS), from ``raw_payloads`` and the date's ``population``."""
    t = naive_utc(as_of)
    start = as_of - timedelta(days=settings.lookback_days)
    counts = {(repo, kind): n for repo, kind, n in con.execute(
        "SELECT repo, change_kind, count(*) FROM population WHERE as_of = ? GROUP BY ALL", [t]).fetchall()}
    rows = []
    for rc in settings.github.repositories:
        repo, branch = rc.repo, rc.production_branch
        want = merged_count_query(repo, branch, search_time(start), search_time(as_of))
        raw = con.execute(
            "SELECT payload, fetched_at, status_code FROM raw_payloads WHERE source = 'github' AND kind = 'merged_count' "
            "AND natural_key = ?", [f"{repo}:{branch}"]).fetchone()
        payload = json.loads(raw[0]) if raw and raw[0] is not None else None
        got_q = ((payload or {}).get("variables") or {}).get("q") if isinstance(payload, dict) else None
        pop, pushes = counts.get((repo, "pr"), 0), counts.get((repo, "direct_push"), 0)
        n = _count(payload) if raw and raw[2] == 200 else None
        if raw is None:
            n, detail = None, "no search count was fetched for this repository: cannot reconcile (fail closed)"
        elif got_q != want:
            n, detail = None, (f"the stored search count is for another window ({got_q!r}, fetched {raw[1]}), "
                               f"not {want!r}: rerun the date with a fetch")
        elif n is None:
            detail = "the stored search answer has no issueCount: cannot reconcile (fail closed)"
        elif n == pop:
            detail = f"search counts {n} merged PR(s), the population holds {pop}: they match"
        else:
            more = "more" if n > pop else "fewer"
            detail = (f"MISMATCH: search counts {n} merged PR(s), the population holds {pop} "
                      f"({abs(n - pop)} {more} in the search): the population may be incomplete")
        rows.append({"as_of": t, "repo": repo, "branch": branch, "window_from": naive_utc(start), "window_to": t,
                     "search_query": got_q, "search_count": n, "searched_at": raw[1] if raw else None,
                     "population_count": pop, "direct_pushes": pushes, "match": n is not None and n == pop,
                     "detail": detail})
    return rows


def store_reconciliation(con: duckdb.DuckDBPyConnection, settings: Settings, as_of: datetime) -> list[dict]:
    """Replace the as-of date's reconciliation rows; returns them.  Runs inside the caller's transaction."""
    rows = reconcile(con, settings, as_of)
    t = naive_utc(as_of)
    con.execute("DELETE FROM reconciliation WHERE CAST(as_of AS DATE) = CAST(? AS DATE)", [t])
    cols = ", ".join(f'"{c}"' for c in COLUMNS)
    for r in rows:
        con.execute(f"INSERT INTO reconciliation ({cols}) VALUES ({', '.join('?' * len(COLUMNS))})",
                    [r[c] for c in COLUMNS])
    return rows
