"""Links of listed changes: PR or commit, ticket, and the evidence folder the writer really writes
(case-insensitive collisions get the writer's ``-2``), relative so they work in the unpacked archive."""

from __future__ import annotations

import re
import tarfile
from pathlib import Path

import pytest
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
    con.execute("INSERT INTO control_results SELECT as_of, ?, repo, control_id, status, detail FROM control_results "
                "WHERE change_id = 'acme/payments-api#12' AND CAST(as_of AS DATE) = '2026-11-25'", [TWIN])
    return con


@pytest.fixture
def con():
    con = with_twin(D.build_three())
    yield con
    con.close()


def test_folder_names_are_the_writers_including_collisions(con):
    links = ChangeLinks(con, D.AS_OF, ["acme/payments-api#12", TWIN])
    ids = [c["change_id"] for c in D.change_rows()] + [TWIN, "acme/payments-api", "acme/web-frontend"]
    assert links.folders == folder_names(ids)
    assert links.evidence(TWIN) == "changes/acme__Payments-api__pr-12/"
    assert links.evidence("acme/payments-api#12", "change.json") == "changes/acme__payments-api__pr-12-2/change.json"
    assert links.evidence("acme/payments-api") == "changes/acme__payments-api/"
    assert links.evidence("not/a#1") is None and "no folder" in links.evidence_cell("not/a#1")


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
