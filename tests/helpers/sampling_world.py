"""Warehouses for the sampling, packet and self-audit tests.

``synthetic()``: a warehouse with the stored population of two nightly runs and their
control_results (the rows ``store_population`` and ``evaluate`` write), 40 changes merged one
per day from 2026-10-01, four planted on the edges of October, and repository rows.

``make_home(tmp, build)``: a ccwatch home whose warehouse is such a world.

``with_raw()``: the outputs test warehouse (raw payloads in the real GitHub / Jira REST
shapes, a ``<script>`` title) with its population stored for its as-of time.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

from ccwatch.controls.catalogue import CHANGE_CONTROLS
from ccwatch.warehouse import connection
from ccwatch.warehouse.facts import POPULATION_COLUMNS
from ccwatch.warehouse.population import store_population

from tests.helpers import outputs_world

RUN1 = datetime(2026, 10, 21, 2, 0)  # evaluates the changes merged before it
RUN2 = datetime(2026, 11, 20, 2, 0)  # evaluates every change
REPOS = ("acme/api", "acme/web")
EDGES = {  # change_id -> merged_at, on the edges of October
    "acme/api#900": datetime(2026, 9, 30, 23, 59, 59),
    "acme/api#901": datetime(2026, 10, 1, 0, 0, 0),
    "acme/api#902": datetime(2026, 10, 31, 23, 59, 59),
    "acme/api#903": datetime(2026, 11, 1, 0, 0, 0),
}


def change(cid: str, merged_at: datetime, **kw) -> dict:
    repo = cid.split("#")[0].split("@")[0]
    row = dict.fromkeys(POPULATION_COLUMNS)
    row.update(change_id=cid, repo=repo, change_kind="pr", number=int(cid.rsplit("#", 1)[1]) if "#" in cid else None,
               title=f"change {cid} [PAY-1]", author="carol-dev", merged_at=merged_at, merged_by="bob-rev",
               ticket_key="PAY-1", category="normal")
    row.update(kw)
    return row


def changes() -> list[dict]:
    out = [change(f"{REPOS[i % 2]}#{100 + i}", datetime(2026, 10, 1, 12) + timedelta(days=i)) for i in range(40)]
    out += [change(cid, at) for cid, at in EDGES.items()]
    return out


def statuses_for(c: dict, as_of: datetime) -> dict[str, tuple[str, str]]:
    """Planted results: #105 fails CC8.1-03; a change merged within 3 days of the run is pending on 06/07."""
    out = {}
    for cid in CHANGE_CONTROLS:
        status, detail = "pass", f"{cid} ok for {c['change_id']}"
        if cid == "CC8.1-09":
            status, detail = "not_applicable", "normal change, not an emergency"
        if cid in ("CC8.1-06", "CC8.1-07") and as_of - c["merged_at"] < timedelta(days=3):
            status, detail = "pending", "not deployed yet"
        if cid == "CC8.1-03" and c["change_id"].endswith("#105"):
            status, detail = "fail", "no APPROVED review by anyone but carol-dev"
        out[cid] = (status, detail)
    return out


def add_run(con, as_of: datetime, rows: list[dict], results=statuses_for) -> None:
    """What one nightly evaluation stores: population rows and control_results (replacing the date)."""
    cols = ", ".join(f'"{c}"' for c in POPULATION_COLUMNS)
    con.execute("DELETE FROM population WHERE CAST(as_of AS DATE) = ?", [as_of.date()])
    con.execute("DELETE FROM control_results WHERE CAST(as_of AS DATE) = ?", [as_of.date()])
    evaluated = [r for r in rows if r["merged_at"] < as_of]
    con.executemany(f"INSERT INTO population (as_of, {cols}) VALUES (?{', ?' * len(POPULATION_COLUMNS)})",
                    [[as_of] + [r[c] for c in POPULATION_COLUMNS] for r in evaluated])
    res = [(as_of, r["change_id"], r["repo"], cid, s, d) for r in evaluated for cid, (s, d) in results(r, as_of).items()]
    res += [(as_of, repo, repo, cid, "pass", "protected") for repo in REPOS for cid in ("CC8.1-11", "CC8.1-12")]
    con.executemany("INSERT INTO control_results (as_of, change_id, repo, control_id, status, detail) "
                    "VALUES (?, ?, ?, ?, ?, ?)", res)


def synthetic(con=None):
    con = con or connection.connect(":memory:")
    rows = changes()
    add_run(con, RUN1, rows)
    add_run(con, RUN2, rows)
    return con


def with_raw(con=None):
    con = outputs_world.build(con)
    con.execute("BEGIN TRANSACTION")
    store_population(con, outputs_world.AS_OF)
    con.execute("COMMIT")
    return con


def make_home(tmp: Path, build=with_raw) -> Path:
    """A ccwatch home in ``tmp`` whose warehouse.duckdb is the world ``build()`` returns."""
    con = build()
    con.execute(f"ATTACH '{tmp / 'warehouse.duckdb'}' AS f")
    con.execute("COPY FROM DATABASE memory TO f")
    con.close()
    return tmp
