"""Carrying unmoved change folders over from the previous evidence date (issue #15, ``publish/evidence/carry.py``).

Each case writes date D of ``bench_evidence``'s synthetic window, moves one thing the next date, writes
D+1 in the same home (the carry-over) and again in an empty home (from scratch, nothing to carry), and
asserts that both archives are the same bytes and that the folders the move touched were written anew
while the others were carried (a carried file is a hard link to D's file: the same inode).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from tests.helpers.paths import BENCHMARKS

N, NEW, REPOS = 30, 4, 3
PR = "acme/r0#0"  # the busiest repository's first change (repository r0 holds most of the window)
FOLDER = "acme__r0__pr-0"


def _bench():
    if str(BENCHMARKS) not in sys.path:
        sys.path.insert(0, str(BENCHMARKS))
    import bench_evidence

    return bench_evidence


class World:
    def __init__(self, home: Path):
        from ccwatch.warehouse.connection import connect

        self.be = _bench()
        self.home = home
        self.settings = self.be.settings(REPOS)
        self.con = connect(str(home / "w.duckdb"))
        self.day(0, (0, N))

    def day(self, n: int, rows: tuple[int, int] | None = None, settings=None, before_facts=None):
        from ccwatch.controls.evaluate import evaluate
        from ccwatch.controls.facts import build_facts
        from ccwatch.publish.evidence.write import write_evidence

        be, s = self.be, settings or self.settings
        as_of = be.AS_OF + timedelta(days=n)
        fetched = (as_of - timedelta(hours=1)).strftime("%Y-%m-%d %H:%M:%S")
        if rows is not None:
            self.con.execute(be.GEN.format(repos=REPOS, n0=N, span=80 * be.DAY, start=rows[0], end=rows[1],
                                           fetched=fetched))
        self.con.execute(be.LISTS.format(fetched=fetched))
        if before_facts:
            before_facts(self)
        build_facts(self.con, s, as_of)
        res = evaluate(self.con, s, as_of)

        def write(home: Path):
            return write_evidence(self.con, s, as_of, home, res.gx_results, "<html>report</html>\n", {},
                                  generated_at="2026-11-26T01:00:00Z")
        return write

    def next_day(self, settings=None, before_facts=None, between=None):
        """D+1 carried over (in this home) and from scratch (another home): both results."""
        write = self.day(1, (N, N + NEW), settings, before_facts)
        if between:
            between(self)
        carried = write(self.home)
        scratch = write(self.home / "scratch")
        return carried, scratch

    def sql(self, query: str, params=None):
        return self.con.execute(query, params or []).fetchall()


@pytest.fixture
def world(tmp_path):
    return World(tmp_path)


def _first(world: World):
    return world.day(0)(world.home)


def _carried(res, folder: str) -> bool:
    """Whether every file of ``folder`` in the D+1 result is D's file itself (a hard link)."""
    d1 = Path(res.directory) / "changes" / folder
    d0 = Path(res.directory).parent / "2026-11-25" / "changes" / folder
    names = sorted(os.listdir(d1))
    return bool(names) and all(os.path.exists(d0 / n) and os.path.samefile(d1 / n, d0 / n) for n in names)


def _same(carried, scratch) -> None:
    assert Path(carried.archive).read_bytes() == Path(scratch.archive).read_bytes()
    assert (Path(carried.directory) / "manifest.json").read_bytes() == (Path(scratch.directory) / "manifest.json").read_bytes()


def _run(world: World, **kw):
    first = _first(world)
    assert first.carried == 0 and first.written > 0
    carried, scratch = world.next_day(**kw)
    _same(carried, scratch)
    assert scratch.carried == 0
    return carried


def test_a_night_that_moved_nothing_of_a_change_carries_its_folder(world):
    res = _run(world)
    assert res.carried > N // 2 and res.written >= NEW
    counts = json.loads((Path(res.directory) / "manifest.json").read_text(encoding="utf-8"))["counts"]
    assert res.carried + res.written == counts["changes"]
    assert _carried(res, FOLDER)
    before = {p.name for p in (Path(res.directory).parent / "2026-11-25" / "changes").iterdir()}
    new = [p.name for p in (Path(res.directory) / "changes").iterdir() if p.name not in before]
    assert new and not any(_carried(res, f) for f in new)


def _mutate(query: str, *params):
    return lambda w: w.con.execute(query, list(params))


@pytest.mark.parametrize("move", [
    # a PR fetched again with a new review
    _mutate("UPDATE raw_payloads SET payload = json_merge_patch(payload, '{\"reviews\": {\"nodes\": []}}'), "
            "fetched_at = fetched_at + INTERVAL 1 DAY WHERE kind = 'gql_pull' AND natural_key = ?", PR),
    # the same PR's payload rewritten under the same fetch time (a pinned clock): the payload counts
    _mutate("UPDATE raw_payloads SET payload = json_merge_patch(payload, '{\"body\": \"edited\"}') "
            "WHERE kind = 'gql_pull' AND natural_key = ?", PR),
    # a piece the GraphQL node could not hold, fetched by REST: a record the folder looked for and did not find
    _mutate("INSERT INTO raw_payloads VALUES ('github', 'reviews', ?, 'https://api.github.com/x', "
            "TIMESTAMP '2026-11-26 00:00:00', NULL, 200, '[]')", PR),
    # the ticket's changelog moved
    _mutate("UPDATE raw_payloads SET payload = '[]', fetched_at = fetched_at + INTERVAL 1 DAY "
            "WHERE source = 'jira' AND kind = 'changelog' AND natural_key = 'PAY-0'"),
], ids=["review", "same_time_payload", "rest_piece", "changelog"])
def test_a_change_whose_records_moved_is_written_anew(world, move):
    res = _run(world, before_facts=move)
    assert not _carried(res, FOLDER)
    assert _carried(res, "acme__r0__pr-3") or _carried(res, "acme__r0__pr-6")


def test_a_fact_that_moved_without_its_records_rewrites_the_folder(world):
    """A change's facts come from the normalised tables (here its title edited there, its raw node not):
    change.json shows them, so the folder is written anew."""
    res = _run(world, before_facts=_mutate("UPDATE pull_requests SET title = title || ' (edited)' "
                                           "WHERE repo = 'acme/r0' AND number = 0"))
    assert not _carried(res, FOLDER)
    change = json.loads((Path(res.directory) / "changes" / FOLDER / "change.json").read_text(encoding="utf-8"))
    assert change["facts"]["title"].endswith("(edited)")


def _deployed(world: World) -> tuple[str, str, int]:
    """Date D written; a change of it that a deployment carries: its repository, folder and that deployment's id."""
    _first(world)
    (cid, dep), = world.sql("SELECT change_id, deployment_id FROM change_deployments ORDER BY change_id, ord LIMIT 1")
    return cid.split("#")[0], cid.replace("/", "__").replace("#", "__pr-"), int(dep)


def test_a_deployment_status_that_moved_rewrites_the_changes_it_carries(world):
    repo, folder, dep = _deployed(world)

    def move(w: World):
        w.sql("UPDATE raw_payloads SET payload = '[{\"state\": \"failure\"}]' WHERE kind = 'deployment_statuses' "
              "AND natural_key = ?", [f"{repo}/deployments/{dep}"])
    carried, scratch = world.next_day(before_facts=move)
    _same(carried, scratch)
    assert not _carried(carried, folder)


def test_an_item_of_the_deployments_list_that_moved_rewrites_the_changes_it_carries(world):
    repo, folder, dep = _deployed(world)

    def move(w: World):
        # after LISTS wrote tonight's lists: the deployment's item says another creator
        for key, payload in w.sql("SELECT natural_key, payload FROM raw_payloads WHERE kind = 'deployments' "
                                  "AND natural_key LIKE ?", [f"{repo}:%"]):
            items = json.loads(payload)
            for it in items:
                if it.get("id") == dep:
                    it["creator"] = {"login": "mallory"}
            w.sql("UPDATE raw_payloads SET payload = ? WHERE kind = 'deployments' AND natural_key = ?",
                  [json.dumps(items), key])
    carried, scratch = world.next_day(between=move)
    _same(carried, scratch)
    assert not _carried(carried, folder)


def test_a_renamed_jira_field_rewrites_every_folder_with_a_ticket(world):
    def move(w: World):
        w.sql("UPDATE raw_payloads SET payload = replace(CAST(payload AS VARCHAR), 'Business Justification', "
              "'Justification')::JSON WHERE source = 'jira' AND kind = 'fields'")
    res = _run(world, between=move)
    assert res.carried == 0


def test_a_settings_snapshot_before_the_merges_rewrites_that_repositorys_folders(world):
    def move(w: World):
        w.sql("INSERT INTO settings_history (as_of, repo, kind, natural_key, url, observed_at, status_code, payload, "
              "sha256) VALUES (TIMESTAMP '2026-08-01', 'acme/r0', 'branch_protection', 'acme/r0:main', 'https://x', "
              "TIMESTAMP '2026-08-01 02:00:00', 200, '{}', 'x')")
    res = _run(world, between=move)
    assert not _carried(res, FOLDER)
    others = [f.name for f in (Path(res.directory) / "changes").iterdir() if f.name.startswith("acme__r1__pr-")]
    assert others and all(_carried(res, f) for f in others if int(f.rsplit("-", 1)[1]) < N)


def test_a_config_change_of_a_repository_rewrites_its_folders(world):
    from ccwatch.settings import RepoConfig

    s = world.settings
    repos = tuple(dataclasses.replace(rc, staging_environments=("staging", "qa")) if rc.repo == "acme/r0" else rc
                  for rc in s.github.repositories)
    changed = dataclasses.replace(s, github=dataclasses.replace(s.github, repositories=repos))
    assert isinstance(repos[0], RepoConfig)
    res = _run(world, settings=changed)
    assert not _carried(res, FOLDER)


def test_a_tampered_file_of_the_previous_date_is_not_carried(world, caplog):
    first = _first(world)
    path = Path(first.directory) / "changes" / FOLDER / "ticket.json"
    path.write_bytes(path.read_bytes().replace(b"PAY-0", b"PAY-9", 1))
    with caplog.at_level(logging.WARNING, logger="ccwatch"):
        carried, scratch = world.next_day()
    _same(carried, scratch)
    assert not _carried(carried, FOLDER) and carried.carried > 0
    assert any("ticket.json does not match the manifest of 2026-11-25" in r.getMessage() for r in caplog.records)
    assert b"PAY-9" not in (Path(carried.directory) / "changes" / FOLDER / "ticket.json").read_bytes()


def test_a_previous_manifest_the_ledger_does_not_know_carries_nothing(world, caplog):
    first = _first(world)
    manifest = Path(first.directory) / "manifest.json"
    manifest.write_bytes(manifest.read_bytes() + b" ")
    with caplog.at_level(logging.WARNING, logger="ccwatch"):
        carried, scratch = world.next_day()
    assert carried.carried == 0 and carried.written > N
    assert any("does not have the SHA-256 the ledger recorded" in r.getMessage() for r in caplog.records)


def test_lost_keys_carry_nothing(world):
    _first(world)
    world.sql("DELETE FROM evidence_folder_keys")
    carried, scratch = world.next_day()
    assert carried.carried == 0
    _same(carried, scratch)


def test_a_pruned_previous_folder_carries_nothing(world):
    import shutil

    first = _first(world)
    shutil.rmtree(first.directory)
    carried, scratch = world.next_day()
    assert carried.carried == 0
    _same(carried, scratch)


def test_keys_are_kept_for_the_latest_two_dates_and_a_rerun_carries_from_the_date_before(world):
    _first(world)
    carried, _ = world.next_day()
    dates = [str(d) for (d,) in world.sql("SELECT DISTINCT evidence_date FROM evidence_folder_keys ORDER BY 1")]
    assert dates == ["2026-11-25", "2026-11-26"]
    write = world.day(1)  # a rerun of D+1: carried from D again (its keys are kept)
    again = write(world.home)
    assert again.numbered and again.carried == carried.carried
    write2 = world.day(2)
    write2(world.home)
    dates = [str(d) for (d,) in world.sql("SELECT DISTINCT evidence_date FROM evidence_folder_keys ORDER BY 1")]
    assert dates == ["2026-11-26", "2026-11-27"]
    assert world.sql("SELECT count(*) FROM evidence_folder_inputs WHERE evidence_date < DATE '2026-11-26'") == [(0,)]


def test_without_the_evidence_codes_sources_nothing_is_carried(world, monkeypatch):
    """The keys hold the source of the modules that write a change folder (a changed format never carries a
    folder written the old way); installed without those sources, no key can match and every folder is written."""
    from ccwatch.publish.evidence import carry

    _first(world)
    carry.code_digest.cache_clear()
    monkeypatch.setattr(carry, "_PACKAGE", Path("/nonexistent"))
    try:
        carried, scratch = world.next_day()
    finally:
        carry.code_digest.cache_clear()
    assert carried.carried == 0
    _same(carried, scratch)
