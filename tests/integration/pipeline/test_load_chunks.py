"""The bounded load (warehouse/store.py): a load in many tiny chunks leaves the warehouse, table by
table, of the same staging loaded in one chunk, and both that of the one-batch load it replaced
(tests/helpers/one_batch.py, the reference); on the demo org and on a small synthetic org, each
for a backfill and the incremental night after it (304s, accumulating lists merged with the
stored ones, PRs asked again for stored commits).

Each night is fetched once through the API double into one home; the staging is copied into a
home per chunk size, with the warehouse and ingest state of the previous night, and loaded there.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import duckdb
import pytest
from ccwatch import pipeline as p
from ccwatch.common.endpoints import Endpoint
from ccwatch.common.paths import warehouse_path
from ccwatch.common.times import parse_as_of
from ccwatch.demo_env import DEMO_AUTH
from ccwatch.sandbox import PortHold, SandboxServer
from ccwatch.sandbox.synthetic import add_next_day, generate_org
from ccwatch.sandbox.synthetic_config import org_config
from ccwatch.settings import load_settings
from ccwatch.warehouse import connection, store

from tests.helpers import one_batch
from tests.helpers.paths import CONFIG, DEMO_SCENARIO

APPENDED = ("commits", "deployments", "branch_activity")  # tables a night may add rows to without replacing any
TINY, ONE, REF = 7, 10**9, 0  # records per chunk: many chunks, one chunk; 0: the one-batch reference
TABLES_SQL = ("SELECT table_name FROM information_schema.tables WHERE table_schema = 'main' "
              "AND table_type = 'BASE TABLE' ORDER BY table_name")


def warehouse(home: Path) -> dict[str, list[str]]:
    """Every table of the warehouse, rows sorted (``runs`` without its wall-clock columns)."""
    con = duckdb.connect(str(warehouse_path(home)), read_only=True)
    try:
        out = {}
        for (t,) in con.execute(TABLES_SQL).fetchall():
            cols = [c for (c,) in con.execute("SELECT column_name FROM information_schema.columns WHERE table_name = ? "
                                              "ORDER BY ordinal_position", [t]).fetchall()
                    if not (t == "runs" and c in ("started_at", "finished_at", "updated_at"))]
            rows = con.execute(f'SELECT {", ".join(chr(34) + c + chr(34) for c in cols)} FROM "{t}"').fetchall()
            out[t] = sorted(re.sub(r"127\.0\.0\.1:\d+", "sandbox", repr(r)) for r in rows)
        return out
    finally:
        con.close()


def fetch(settings, server: SandboxServer, as_of, home: Path) -> None:
    gh = Endpoint(server.url + "/api/v3", token=DEMO_AUTH["github_token"])
    jr = Endpoint(server.url, login=DEMO_AUTH["jira_user"], token=DEMO_AUTH["jira_token"])
    p.ingest_github(settings, gh, as_of, home, max_workers=2)
    p.ingest_jira(settings, jr, as_of, home)
    p.resolve_tickets(settings, jr, as_of, home)


def load_each(settings, as_of, fetched: Path, homes: dict[int, Path], monkeypatch) -> dict[int, tuple[dict, dict, str]]:
    """Load the staging fetched into ``fetched`` in every home (its previous night kept there)."""
    out = {}
    for size, home in homes.items():
        if home != fetched:
            shutil.rmtree(home / "staging", ignore_errors=True)
            shutil.copytree(fetched / "staging", home / "staging")
        bounds = []
        with monkeypatch.context() as m:
            if size == REF:
                m.setattr(store, "load_records", one_batch.load_records)
            if size == TINY:  # the load's own DuckDB bound, small enough that the staged rows spill
                m.setenv(connection.LOAD_MEMORY_LIMIT_ENV, "128MB")
                real = store.load_records

                def bounded(con, *a, _real=real, _seen=bounds, **kw):
                    _seen.append(con.execute("SELECT current_setting('memory_limit')").fetchone()[0])
                    return _real(con, *a, **kw)

                m.setattr(store, "load_records", bounded)
            counts = p.load_warehouse(settings, as_of, home, chunk_records=size or None)
        assert bounds == (["122.0 MiB"] if size == TINY else [])
        state = (home / "ingest_state.json").read_text(encoding="utf-8") if (home / "ingest_state.json").exists() else ""
        out[size] = (counts, warehouse(home), re.sub(r"127\.0\.0\.1:\d+", "sandbox", state))
    return out


def two_nights(settings, day1: dict, day2: dict, tmp_path: Path, monkeypatch) -> None:
    homes = {TINY: tmp_path / "tiny", ONE: tmp_path / "one", REF: tmp_path / "reference"}
    d1, d2 = parse_as_of(day1["meta"]["as_of"]), parse_as_of(day2["meta"]["as_of"])
    with PortHold() as hold:  # the same port both nights, held between them: the ETags of night 1 name it
        with SandboxServer(day1, hold=hold) as server:
            fetch(settings, server, d1, homes[TINY])
        first = load_each(settings, d1, homes[TINY], homes, monkeypatch)
        assert first[TINY] == first[ONE] == first[REF]
        assert first[TINY][0]["raw_payloads"] > 10 * TINY and first[TINY][1]["pull_requests"]
        with SandboxServer(day2, hold=hold) as server:
            fetch(settings, server, d2, homes[TINY])  # incremental: the ingest state of night 1
    second = load_each(settings, d2, homes[TINY], homes, monkeypatch)
    assert second[TINY] == second[ONE]
    assert second[TINY][1:] == second[REF][1:]  # the warehouse and the ingest state
    assert second[TINY][1] != first[TINY][1]
    # the lists with only new items on top: the bounded load normalised those alone
    # (warehouse/appends.py), the reference the whole merged lists again
    counts, ref_counts = second[TINY][0], second[REF][0]
    assert {t: n for t, n in counts.items() if t not in APPENDED} == {t: n for t, n in ref_counts.items() if t not in APPENDED}
    assert counts["commits"] < ref_counts["commits"]


def test_demo_org_in_tiny_chunks(tmp_path, monkeypatch):
    settings = load_settings(str(CONFIG))
    scenario = json.loads(DEMO_SCENARIO.read_text(encoding="utf-8"))
    scenario["auth"] = dict(DEMO_AUTH)
    day2 = json.loads(json.dumps(scenario))
    day2["meta"]["as_of"] = "2026-11-26T00:00:00Z"
    two_nights(settings, scenario, day2, tmp_path, monkeypatch)  # the second night: 304s and the overlap window


@pytest.mark.parametrize("seed", [3])
def test_synthetic_org_in_tiny_chunks(tmp_path, seed, monkeypatch):
    day1 = generate_org(repos=3, prs=60, months=2, seed=seed, as_of="2026-11-25T00:00:00Z")
    day2 = add_next_day(day1, changes=8)
    for s in (day1, day2):
        s["auth"] = dict(DEMO_AUTH)
    (tmp_path / "ccwatch.yaml").write_text(org_config(day1), encoding="utf-8")
    two_nights(load_settings(str(tmp_path / "ccwatch.yaml")), day1, day2, tmp_path, monkeypatch)
