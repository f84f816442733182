"""The report's views by repository and by author: per group the failing results of each control,
worst first (most failing results, then lowest pass rate, then name).  Counts come aggregated
from SQL (``results_history.counts_by``); the by-author view covers the change controls (repository
controls have no author)."""

from __future__ import annotations

from ccwatch.controls.catalogue import control_name
from ccwatch.publish.report.links import ChangeLinks
from ccwatch.publish.report.markup import e, local_link, pct
from ccwatch.publish.results import pass_rate

#: at most this many groups per view are listed (worst first)
VIEW_LIMIT = 50


def _totals(counts: dict[str, dict[str, int]]) -> dict[str, int]:
    out: dict[str, int] = {}
    for per in counts.values():
        for k, n in per.items():
            out[k] = out.get(k, 0) + n
    return out


def worst_first(groups: dict) -> list[tuple[str | None, dict, dict[str, int]]]:
    """(name, group, totals) sorted: most failing results, lowest pass rate (none judged last), name
    (an unknown name last)."""
    rows = [(k, g, _totals(g["counts"])) for k, g in groups.items()]
    rows.sort(key=lambda x: (-x[2].get("fail", 0), 2.0 if pass_rate(x[2]) is None else pass_rate(x[2]),
                             x[0] is None, "" if x[0] is None else str(x[0])))
    return rows


def render_view(groups: dict, what: str, control_ids: list[str], links: ChangeLinks | None = None,
                limit: int = VIEW_LIMIT) -> str:
    """One view: a row per repository (or author), a column per control holding its failing results."""
    if not groups:
        return f"<p>No results to group by {e(what)} on this date.</p>"
    rows = worst_first(groups)
    head = "".join(f'<th class="num" title="{e(cid)} {e(control_name(cid))}">{e(cid[-2:])}</th>' for cid in control_ids)
    out = [f'<table class="view" data-view="{e(what)}"><thead><tr><th>{e(what)}</th><th>changes</th>'
           f"<th>failing results</th><th>pass rate</th>{head}</tr></thead><tbody>"]
    for name, g, tot in rows[:limit]:
        label = e(name) if name is not None else '<span class="muted">(unknown)</span>'
        if links is not None and name is not None:
            label = local_link(links.evidence(name), name, "the repository's evidence folder") \
                if links.evidence(name) else label
        cells = []
        for cid in control_ids:
            c = g["counts"].get(cid, {})
            n = c.get("fail", 0)
            judged = c.get("pass", 0) + n
            title = f"{cid}: {n} failing of {judged} judged" if c else f"{cid}: no results"
            cells.append(f'<td class="num{" bad" if n else ""}" data-control="{e(cid)}" title="{e(title)}">'
                         f'{n if n else ("0" if judged else "")}</td>')
        out.append(f'<tr data-key="{e(name)}"><td>{label}</td><td class="num">{g["changes"]}</td>'
                   f'<td class="num">{tot.get("fail", 0)}</td><td class="num">{pct(pass_rate(tot))}</td>'
                   + "".join(cells) + "</tr>")
    out.append("</tbody></table>")
    if len(rows) > limit:
        out.append(f'<p class="muted">Showing the {limit} worst of {len(rows)} {e(what)} groups; '
                   "control_results.csv and population.csv in the evidence folder hold every row.</p>")
    return "\n".join(out)
