"""Views by repository and by author: worst first, a column per control."""

from __future__ import annotations

import re

from ccwatch.publish import results_history
from ccwatch.publish.report import views
from ccwatch.publish.report.links import ChangeLinks

from tests.helpers import outputs_world as D


def group(changes, **per_control):
    return {"changes": changes, "counts": per_control}


def test_worst_first_most_failures_then_lowest_pass_rate_then_name():
    groups = {"b": group(1, x={"pass": 1, "fail": 1}), "a": group(1, x={"pass": 3, "fail": 1}),
              "c": group(1, x={"fail": 2}), "d": group(1, x={"pass": 1}), None: group(1, x={"pass": 1}),
              "e": group(1, x={"pending": 1})}
    assert [k for k, _g, _t in views.worst_first(groups)] == ["c", "b", "a", "d", None, "e"]


def test_render_view_cells_and_cut():
    groups = {f"dev{i}": group(1, **{"CC8.1-01": {"fail": i, "pass": 1}}) for i in range(5)}
    groups["dev0"]["counts"]["CC8.1-02"] = {"not_applicable": 1}
    html = views.render_view(groups, "author", ["CC8.1-01", "CC8.1-02"], limit=3)
    assert re.findall(r'data-key="([^"]+)"', html) == ["dev4", "dev3", "dev2"]
    assert '<td class="num bad" data-control="CC8.1-01" title="CC8.1-01: 4 failing of 5 judged">4</td>' in html
    assert "Showing the 3 worst of 5 author groups" in html
    assert views.render_view({}, "author", []) == "<p>No results to group by author on this date.</p>"
    zero = views.render_view(groups, "author", ["CC8.1-01", "CC8.1-02"])
    row0 = re.search(r'<tr data-key="dev0">.*?</tr>', zero).group(0)
    assert 'title="CC8.1-01: 0 failing of 1 judged">0</td>' in row0
    assert 'title="CC8.1-02: 0 failing of 0 judged"></td>' in row0  # only n/a: nothing judged, empty cell


def test_repository_view_links_the_repository_folder_and_escapes():
    con = D.build_three()
    try:
        links = ChangeLinks(con, D.AS_OF, [], ["acme/payments-api", "acme/web-frontend"])
        repo = views.render_view(results_history.counts_by(con, D.AS_OF, "repo"), "repository",
                                 [f"CC8.1-{i:02d}" for i in range(1, 14)], links)
        author = views.render_view(results_history.counts_by(con, D.AS_OF, "author"), "author", ["CC8.1-01"])
    finally:
        con.close()
    assert 'href="changes/acme__payments-api/"' in repo and 'href="changes/acme__web-frontend/"' in repo
    assert "mallory&lt;b&gt;" in author and "mallory<b>" not in author
