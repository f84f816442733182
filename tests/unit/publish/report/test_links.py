"""Links of listed changes: PR or commit, ticket, and the evidence folder the writer really writes
(case-insensitive collisions get the writer's ``-2``), relative so they work in the unpacked archive."""

from __future__ import annotations

import re
import tarfile
from pathlib import Path

import pytest
from ccwatch.common.changes import change_folder
from ccwatch.publish import results_history
from ccwatch.publish.evidence.folder import folder_names
from ccwatch.publish.evidence.write import write_evidence
from ccwatch.publish.report.html import render_report
from ccwatch.publish.report.links import ChangeLinks
from ccwatch.warehouse.population import store_population

from tests.helpers import outputs_world as D

TWIN = "acme/Payments-api#12"  # differs from acme/payments-api#12 only by case: the same folder on macOS/Windows


def with_twin(con):
    con.execute("INSERT INTO change_facts (change_id, repo, change_kind, number, sha, title, author, merged_at) "
                "SELECT ?, repo, change_kind, number, sha, 'twin', author, merged_at FROM change_facts "
                "WHERE change_id = 'acme/payments-api#12'", [TWIN])
    con.execute("INSERT INTO control_results (as_of, change_id, repo, control_id, status, detail) SELECT as_of, ?, repo, control_id, status, detail FROM control_results "
                "WHERE change_id = 'acme/payments-api#12' AND CAST(as_of AS DATE) = '2026-11-25'", [TWIN])
    return con


@pytest.fixture
def con():
    con = with_twin(D.build_three())
    yield con
    con.close()


def test_folder_names_are_the_writers_including_collisions(con):
    assert results_history.evidence_folders_may_collide(con)
    links = ChangeLinks(con, D.AS_OF, ["acme/payments-api#12", TWIN])
    ids = [c["change_id"] for c in D.change_rows()] + [TWIN, "acme/payments-api", "acme/web-frontend"]
    assert links.folders == folder_names(ids)
    assert links.evidence(TWIN) == "changes/acme__Payments-api__pr-12/"
    assert links.evidence("acme/payments-api#12", "change.json") == "changes/acme__payments-api__pr-12-2/change.json"
    assert links.evidence("acme/payments-api") == "changes/acme__payments-api/"
    assert links.evidence("not/a#1") is None and "no folder" in links.evidence_cell("not/a#1")


def test_without_a_possible_collision_only_the_linked_ids_are_named():
    con = D.build_three()
    try:
        assert not results_history.evidence_folders_may_collide(con)
        links = ChangeLinks(con, D.AS_OF, ["acme/payments-api#12", "not/in#7"], ["acme/web-frontend"])
        assert links.folders == {"acme/payments-api#12": "acme__payments-api__pr-12",
                                 "acme/web-frontend": "acme__web-frontend"}
        every = folder_names(results_history.evidence_unit_ids(con))
        assert all(every[i] == f for i, f in links.folders.items())
    finally:
        con.close()


# ids whose folder names meet only through case, dots, unsafe characters, non-ASCII letters, '#'/'@'
TRICKY = ["o/r#1", "O/R#1", "o/r@ab", "o/R@AB", ".o/r#2", "o/r#2", "o/r#2-2", "o/rİ#3", "o/ri#3", "o/r_#3", "o/r#3",
          "o/r K#4", "o/rk#4", "o/r#5#", "o/r#5_", "o/r/x#6", "o/r__x#6", "o/r#pr-7", "o/r##7", "é/r#8", "_/r#8"]


def test_the_sql_folder_key_is_shared_by_every_pair_the_writer_tells_apart_by_case():
    """The proof behind the fast path: change folders equal but for case => equal SQL keys."""
    import duckdb

    con = duckdb.connect()
    try:
        keys = dict(con.execute(f"SELECT change_id, {results_history.FOLDER_KEY_SQL} FROM (SELECT unnest(?) AS change_id)",
                                [TRICKY]).fetchall())
    finally:
        con.close()
    for a in TRICKY:
        for b in TRICKY:
            if change_folder(a).lower() == change_folder(b).lower():
                assert keys[a] == keys[b], (a, b)
    # and when no key is shared, the writer gives every id its plain folder
    distinct = {}
    for i in TRICKY:
        distinct.setdefault(keys[i], i)
    plain = list(distinct.values())
    assert folder_names(plain) == {i: change_folder(i) for i in plain}


def test_change_cells_link_pr_ticket_and_evidence(con):
    links = ChangeLinks(con, D.AS_OF, ["acme/payments-api#12", "acme/payments-api#13", f"acme/web-frontend@{D.PUSH}"])
    cells = links.change_cells("acme/payments-api#12")
    assert cells.startswith('<td><a href="https://github.com/acme/payments-api/pull/12">acme/payments-api#12</a>')
    assert '<a href="https://acme.atlassian.net/browse/PAY-7">PAY-7</a>' in cells
    assert '<a class="ev" href="changes/acme__payments-api__pr-12-2/change.json"' in cells
    hostile = links.change_cells("acme/payments-api#13")
    assert "javascript:" not in hostile and ">PAY-8<" in hostile and "mallory&lt;b&gt;" in hostile
    push = links.change_cells(f"acme/web-frontend@{D.PUSH}")
    assert f'href="https://github.com/acme/web-frontend/commit/{D.PUSH}"' in push


def test_every_evidence_link_of_the_report_opens_a_file_the_writer_wrote(con, tmp_path: Path):
    store_population(con, D.AS_OF)
    html = render_report(con, D.settings(), D.AS_OF, D.gx_results())
    res = write_evidence(con, D.settings(), D.AS_OF, tmp_path, D.gx_results(), html, D.ENDPOINTS)
    hrefs = sorted(set(re.findall(r'href="(changes/[^"]*)"', html)))
    assert "changes/acme__payments-api__pr-12-2/change.json" in hrefs and "changes/acme__payments-api/" in hrefs
    folder = Path(res.directory)
    for href in hrefs:
        assert (folder / href).exists(), href
    with tarfile.open(res.archive) as tar:
        names = set(tar.getnames())
    top = folder.name
    for href in hrefs:
        assert f"{top}/{href.rstrip('/')}" in names, href
