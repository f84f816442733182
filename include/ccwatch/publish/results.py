"""Shared reading helpers for what users receive (report, evidence archive, Slack alert).

Everything here reads the warehouse for one run (as-of time) and returns plain Python
values; it never writes and never looks at the wall clock.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Any

import duckdb

from ccwatch.common.times import evidence_date
from ccwatch.controls.catalogue import control_sort_key

#: the columns of population.csv (CONTROLS.md, "Outputs"); change_kind, pr_url and ticket_url are extras
POPULATION_COLUMNS = (
    "change_id", "repo", "number", "sha", "title", "author", "merged_at", "merged_by",
    "ticket_key", "deployed_at", "deployer", "category",
)
CHANGE_COLUMNS = POPULATION_COLUMNS + ("change_kind", "pr_url", "ticket_url")
#: control_results' columns (CONTROLS.md "Outputs"); ``exception`` (r2, migration 9): the id of the
#: exceptions-register entry that covers a failing row, else empty
RESULT_COLUMNS = ("as_of", "change_id", "repo", "control_id", "status", "detail", "exception")
#: the columns of exceptions.csv: every entry of the run's register with its verdict (table ``exceptions``)
EXCEPTION_COLUMNS = ("as_of", "entry", "id", "change_id", "repo", "control_id", "justification", "approved_by",
                     "approved_at", "expires", "status", "reason", "detail", "result_status", "applied")

_SAFE_URL = re.compile(r"https?://[^\s<>\"'|`\\]+\Z")


def safe_url(url: Any) -> str | None:
    """The URL when it is a plain http(s) URL that cannot break out of an attribute or a Slack link."""
    if not isinstance(url, str) or not _SAFE_URL.match(url):
        return None
    return url


def table_columns(con: duckdb.DuckDBPyConnection, table: str) -> set[str]:
    rows = con.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_name = ?", [table]
    ).fetchall()
    return {r[0] for r in rows}


def _select(con, table: str, wanted: tuple[str, ...], order: str) -> list[dict]:
    cols = table_columns(con, table)
    if not cols:
        return []
    exprs = [f'"{c}"' if c in cols else f'NULL AS "{c}"' for c in wanted]
    cur = con.execute(f"SELECT {', '.join(exprs)} FROM {table} ORDER BY {order}")
    return [dict(zip(wanted, row, strict=True)) for row in cur.fetchall()]


def changes(con: duckdb.DuckDBPyConnection) -> list[dict]:
    """Every change of the run (table ``change_facts``), sorted by change_id; [] when absent."""
    return _select(con, "change_facts", CHANGE_COLUMNS, '"change_id"')


def repos(con: duckdb.DuckDBPyConnection) -> list[dict]:
    """Every repository row of the run (table ``repo_facts``), with an html_url when one is known."""
    cols = table_columns(con, "repo_facts")
    if not cols:
        return []
    url = next((c for c in ("html_url", "repo_url", "url") if c in cols), None)
    wanted = ("change_id", "repo")
    rows = _select(con, "repo_facts", wanted + ((url,) if url else ()), '"change_id"')
    for r in rows:
        r["html_url"] = r.pop(url, None) if url else None
    return rows


def _result_select(con: duckdb.DuckDBPyConnection) -> str:
    """RESULT_COLUMNS as a select list (a warehouse read-only before migration 9 has no ``exception``)."""
    exc = "exception" if "exception" in table_columns(con, "control_results") else "NULL::VARCHAR AS exception"
    return f"as_of, change_id, repo, control_id, status, detail, {exc}"


def results(con: duckdb.DuckDBPyConnection, as_of: datetime) -> list[dict]:
    """This evidence date's control_results rows, sorted by change_id then control (numeric)."""
    rows = con.execute(
        f"SELECT {_result_select(con)} FROM control_results "
        "WHERE CAST(as_of AS DATE) = ?",
        [evidence_date(as_of)],
    ).fetchall()
    out = [dict(zip(RESULT_COLUMNS, r, strict=True)) for r in rows]
    keys = {c: control_sort_key(c) for c in {r["control_id"] for r in out}}  # a few distinct ids
    out.sort(key=lambda r: (r["change_id"], keys[r["control_id"]], r["status"], r["detail"]))
    return out


def history(con: duckdb.DuckDBPyConnection, as_of: datetime, max_dates: int = 30) -> list[tuple[date, dict]]:
    """Per run date up to the as-of date (oldest first): {control_id: {status: count}}."""
    rows = con.execute(
        "SELECT CAST(as_of AS DATE) AS d, control_id, status, count(*) FROM control_results "
        "WHERE CAST(as_of AS DATE) <= ? GROUP BY ALL ORDER BY d",
        [evidence_date(as_of)],
    ).fetchall()
    by_date: dict[date, dict] = {}
    for d, control_id, status, n in rows:
        by_date.setdefault(d, {}).setdefault(control_id, {})[status] = n
    return sorted(by_date.items())[-max_dates:]


def commit_urls(con: duckdb.DuckDBPyConnection, only=None) -> dict[tuple[str, str], str]:
    """(repo, sha) -> commit html_url from the normalised commits table (links for direct pushes);
    ``only``: just these (repo, sha) pairs."""
    if "html_url" not in table_columns(con, "commits"):
        return {}
    if only is not None:
        pairs = sorted({(r, s) for r, s in only if r and s})
        if not pairs:
            return {}
        rows = con.execute("SELECT c.repo, c.sha, any_value(c.html_url) FROM commits c JOIN (SELECT "
                           "unnest(?::VARCHAR[]) AS repo, unnest(?::VARCHAR[]) AS sha) x "
                           "ON x.repo = c.repo AND x.sha = c.sha GROUP BY c.repo, c.sha",
                           [[p[0] for p in pairs], [p[1] for p in pairs]]).fetchall()
        return {(r, s): u for r, s, u in rows if u}
    rows = con.execute("SELECT repo, sha, any_value(html_url) FROM commits GROUP BY repo, sha").fetchall()
    return {(r, s): u for r, s, u in rows if u}


def change_link(change: dict | None, commit_links: dict | None = None) -> str | None:
    """The safest link for a change: its PR, else its commit page."""
    if not change:
        return None
    url = safe_url(change.get("pr_url"))
    if url is None and commit_links and change.get("sha"):
        url = safe_url(commit_links.get((change.get("repo"), change.get("sha"))))
    return url


def status_counts(con: duckdb.DuckDBPyConnection, as_of: datetime) -> dict[str, dict[str, int]]:
    """{control_id: {status: count}} of this evidence date's control_results (aggregated in SQL)."""
    out: dict[str, dict[str, int]] = {}
    for control_id, status, n in con.execute(
            "SELECT control_id, status, count(*) FROM control_results WHERE CAST(as_of AS DATE) = ? "
            "GROUP BY ALL ORDER BY ALL", [evidence_date(as_of)]).fetchall():
        out.setdefault(control_id, {})[status] = n
    return out


def top_results(con: duckdb.DuckDBPyConnection, as_of: datetime, status: str, limit: int,
                control_ids: tuple[str, ...] | None = None) -> list[dict]:
    """At most ``limit`` rows per control with this status (first by change_id), sorted like
    :func:`results`; ``control_ids`` restricts the controls (None: all)."""
    where = "" if control_ids is None else f" AND control_id IN ({', '.join('?' for _ in control_ids)})"
    rows = con.execute(
        f"SELECT {_result_select(con)} FROM (SELECT *, row_number() OVER "
        "(PARTITION BY control_id ORDER BY change_id, detail) AS _n FROM control_results "
        f"WHERE CAST(as_of AS DATE) = ? AND status = ?{where}) WHERE _n <= ?",
        [evidence_date(as_of), status, *(control_ids or ()), limit],
    ).fetchall()
    out = [dict(zip(RESULT_COLUMNS, r, strict=True)) for r in rows]
    out.sort(key=lambda r: (r["change_id"], control_sort_key(r["control_id"]), r["status"], r["detail"]))
    return out


def exception_entries(con: duckdb.DuckDBPyConnection, as_of: datetime) -> list[dict]:
    """This evidence date's exceptions-register entries with their verdicts (EXCEPTION_COLUMNS), in
    register order; [] without a register (or before migration 9)."""
    if not table_columns(con, "exceptions"):
        return []
    cur = con.execute(f"SELECT {', '.join(EXCEPTION_COLUMNS)} FROM exceptions WHERE CAST(as_of AS DATE) = ? "
                      "ORDER BY entry", [evidence_date(as_of)])
    return [dict(zip(EXCEPTION_COLUMNS, r, strict=True)) for r in cur.fetchall()]


def exception_register(con: duckdb.DuckDBPyConnection, as_of: datetime) -> dict | None:
    """The register file this evidence date's run evaluated: {path, sha256, content (bytes), entries};
    None when no register was configured for that run."""
    if not table_columns(con, "exception_registers"):
        return None
    row = con.execute("SELECT path, sha256, content, entries FROM exception_registers "
                      "WHERE CAST(as_of AS DATE) = ?", [evidence_date(as_of)]).fetchone()
    return dict(zip(("path", "sha256", "content", "entries"), row, strict=True)) if row else None


def changes_by_id(con: duckdb.DuckDBPyConnection, change_ids) -> dict[str, dict]:
    """change_id -> change row (CHANGE_COLUMNS) for the given ids only."""
    ids = sorted(set(change_ids))
    cols = table_columns(con, "change_facts")
    if not cols or not ids:
        return {}
    exprs = [f'"{c}"' if c in cols else f'NULL AS "{c}"' for c in CHANGE_COLUMNS]
    rows = con.execute(f"SELECT {', '.join(exprs)} FROM change_facts WHERE change_id IN "
                       "(SELECT unnest(?::VARCHAR[]))", [ids]).fetchall()
    return {r[0]: dict(zip(CHANGE_COLUMNS, r, strict=True)) for r in rows}


def run_changes_by_id(con: duckdb.DuckDBPyConnection, as_of: datetime, change_ids) -> dict[str, dict]:
    """change_id -> change row (CHANGE_COLUMNS) as the run of this evidence date evaluated it: its
    stored population (table ``population``), else, for runs older than that table, ``change_facts``."""
    ids = sorted(set(change_ids))
    out: dict[str, dict] = {}
    if ids and table_columns(con, "population"):
        cols = ", ".join(f'"{c}"' for c in CHANGE_COLUMNS)
        rows = con.execute(f"SELECT {cols} FROM population WHERE CAST(as_of AS DATE) = ? AND change_id IN "
                           "(SELECT unnest(?::VARCHAR[]))", [evidence_date(as_of), ids]).fetchall()
        out = {r[0]: dict(zip(CHANGE_COLUMNS, r, strict=True)) for r in rows}
    missing = [i for i in ids if i not in out]
    return out | (changes_by_id(con, missing) if missing else {})


def evidence_dates(con: duckdb.DuckDBPyConnection) -> list[date]:
    """The evidence dates that have control_results, newest first."""
    if not table_columns(con, "control_results"):
        return []
    rows = con.execute("SELECT DISTINCT CAST(as_of AS DATE) AS d FROM control_results ORDER BY d DESC").fetchall()
    return [r[0] for r in rows]


def date_as_of(con: duckdb.DuckDBPyConnection, day: date) -> datetime | None:
    """The as-of time (naive UTC) of the control_results of an evidence date; None without results."""
    return con.execute("SELECT max(as_of) FROM control_results WHERE CAST(as_of AS DATE) = ?", [day]).fetchone()[0]


def fetch_span(con: duckdb.DuckDBPyConnection) -> tuple[datetime | None, datetime | None]:
    """(earliest, latest) fetch time (naive UTC) of the raw payloads the warehouse holds: the data an
    evaluation reads (each payload is kept in its latest fetched version); (None, None) when empty."""
    if not table_columns(con, "raw_payloads"):
        return None, None
    lo, hi = con.execute("SELECT min(fetched_at), max(fetched_at) FROM raw_payloads").fetchone()
    return lo, hi


def latest_run(con: duckdb.DuckDBPyConnection) -> dict | None:
    """The newest row of ``runs`` (as_of, stage, detail): how far the latest run got, or None."""
    if not table_columns(con, "runs"):
        return None
    row = con.execute("SELECT as_of, stage, detail FROM runs ORDER BY as_of DESC LIMIT 1").fetchone()
    return dict(zip(("as_of", "stage", "detail"), row, strict=True)) if row else None


def change_kind_counts(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    if "change_kind" not in table_columns(con, "change_facts"):
        return {}
    return {k or "unknown": n for k, n in con.execute(
        "SELECT change_kind, count(*) FROM change_facts GROUP BY ALL").fetchall()}


def pass_rate(counts: dict[str, int]) -> float | None:
    """pass / (pass + fail); pending and not_applicable are not judged yet / not in scope."""
    judged = counts.get("pass", 0) + counts.get("fail", 0)
    return None if judged == 0 else counts.get("pass", 0) / judged


def summary_table(con: duckdb.DuckDBPyConnection, as_of: datetime) -> str:
    """Per-control counts of this date's results, as printed at the end of the demo (an empty
    table, the header alone, when the date has no results)."""
    counts = status_counts(con, as_of)
    lines = [f"{'control':<10} {'pass':>6} {'fail':>6} {'pending':>8} {'n/a':>6}"]
    for cid in sorted(counts, key=control_sort_key):
        c = counts[cid]
        lines.append(f"{cid:<10} {c.get('pass', 0):>6} {c.get('fail', 0):>6} {c.get('pending', 0):>8} "
                     f"{c.get('not_applicable', 0):>6}")
    return "\n".join(lines)



#: (r2) the columns of reconciliation.csv (table ``reconciliation``, warehouse/reconciliation.py)
RECONCILIATION_COLUMNS = ("repo", "branch", "window", "search_count", "population_count", "direct_pushes", "match",
                          "search_query", "searched_at", "detail")


def reconciliation(con: duckdb.DuckDBPyConnection, as_of: datetime) -> list[dict]:
    """This evidence date's population reconciliation, one row per repository (RECONCILIATION_COLUMNS;
    ``window`` = ``<from>..<to>`` in ISO-8601 UTC, ``match`` a bool); [] when the run has none (a run
    evaluated before migration 10)."""
    if not table_columns(con, "reconciliation"):
        return []
    cur = con.execute(
        "SELECT repo, branch, strftime(window_from, '%Y-%m-%dT%H:%M:%SZ') || '..' || "
        "strftime(window_to, '%Y-%m-%dT%H:%M:%SZ'), search_count, population_count, direct_pushes, \"match\", "
        "search_query, searched_at, detail FROM reconciliation WHERE CAST(as_of AS DATE) = ? ORDER BY repo",
        [evidence_date(as_of)])
    return [dict(zip(RECONCILIATION_COLUMNS, r, strict=True)) for r in cur.fetchall()]


def reconciliation_status(rows: list[dict]) -> str:
    """``match`` (every repository matches), ``mismatch`` (one does not) or ``not_run`` (no rows)."""
    if not rows:
        return "not_run"
    return "match" if all(r["match"] for r in rows) else "mismatch"


#: (r2) the columns of branch_history.csv: the production branch's first-parent commits of the run's
#: changes, oldest first per repository, each with its change and the deployments that carried it
BRANCH_HISTORY_COLUMNS = ("repo", "branch", "position", "sha", "parent_sha", "committed_at", "reached_at",
                          "change_kind", "pr_number", "change_id", "deployed_here", "carried_by")


def branch_history(con: duckdb.DuckDBPyConnection, as_of: datetime) -> list[dict]:
    """The first-parent commits of each production branch that belong to a change of this date's
    population (a PR's merge or squash commit and its rebased commits; a direct push), in branch order.

    ``reached_at``: the change's time in the window (a PR's ``merged_at``, a direct push's push time);
    ``deployed_here``: the deployments (``environment:id``, creation order) created by as_of whose sha is
    this commit; ``carried_by``: per environment, the deployments that carry the commit's change, up to
    the first successful one (``change_deployments``, the definition the controls use)."""
    if not table_columns(con, "population") or not table_columns(con, "change_deployments"):
        return []
    day = evidence_date(as_of)
    cur = con.execute("""
        WITH pop AS (SELECT * FROM population WHERE CAST(as_of AS DATE) = ?),
        run AS (SELECT max(as_of) AS as_of FROM pop),
        fp AS (
            SELECT c.repo, c.branch, c.position, c.sha, c.parent_sha, c.committed_at, c.pr_numbers
            FROM commits c JOIN (SELECT DISTINCT repo FROM pop) r USING (repo)
        ),
        linked AS (
            SELECT fp.*, p.change_id, p.change_kind, p.number, p.merged_at
            FROM fp JOIN pop p ON p.repo = fp.repo AND (
                (p.change_kind = 'pr' AND list_contains(fp.pr_numbers, p.number))
                OR (p.change_kind = 'direct_push' AND p.sha = fp.sha))
        ),
        one AS (  -- a commit listing two PRs of the population: the lowest number
            SELECT * FROM linked QUALIFY row_number() OVER (PARTITION BY repo, branch, sha
                                                            ORDER BY change_kind = 'direct_push', number) = 1
        ),
        here AS (
            SELECT d.repo, d.sha, string_agg(d.environment || ':' || d.deployment_id, ' '
                                             ORDER BY d.created_at, d.deployment_id) AS ids
            FROM deployments d, run WHERE d.created_at <= run.as_of GROUP BY ALL
        ),
        carried AS (
            SELECT cd.change_id, string_agg(cd.environment || ':' || cd.deployment_id, ' '
                                            ORDER BY cd.environment, cd.ord) AS ids
            FROM change_deployments cd, run WHERE cd.as_of = run.as_of GROUP BY ALL
        )
        SELECT o.repo, o.branch, o.position, o.sha, o.parent_sha, o.committed_at, o.merged_at, o.change_kind,
               o.number, o.change_id, h.ids, ca.ids
        FROM one o LEFT JOIN here h ON h.repo = o.repo AND h.sha = o.sha
        LEFT JOIN carried ca ON ca.change_id = o.change_id
        ORDER BY o.repo, o.branch, o.position
    """, [day])
    return [dict(zip(BRANCH_HISTORY_COLUMNS, r, strict=True)) for r in cur.fetchall()]
