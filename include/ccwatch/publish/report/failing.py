"""The report's open failures: per control, each failing change with the date its current failing
streak began and how many days it has been open, its links (PR or commit, ticket, evidence
files) and the detail line; and the failures an exception covers, listed apart.

"First failed" is the earliest run date of the uninterrupted run of ``fail`` results of that
change and control that reaches this date (``results_history.open_failures``): a run date on which the
pair passed, was pending, not applicable or not evaluated ends the streak; a date without any run
is a gap and does not.  Days open = this date - first failed, in calendar days (0: new today).
"""

from __future__ import annotations

from datetime import date

from ccwatch.controls.catalogue import control_name
from ccwatch.publish.report.links import ChangeLinks
from ccwatch.publish.report.markup import day, e, more, table

HEAD = ["change", "author", "ticket", "evidence", "first failed", "days open", "detail"]
WIDTHS = [24, 9, 7, 12, 9, 6, 33]
ORDER = "longest open first, then by change id"


def age_cells(row: dict, today: date) -> str:
    first = row["first_failed"]
    days = (today - first).days
    runs = row.get("runs")
    title = f' title="failing on {runs} run date(s) in a row"' if runs else ""
    badge = ' <span class="st new">new</span>' if days == 0 else ""
    return (f'<td class="date" data-first-failed="{day(first)}">{day(first)}</td>'
            f'<td class="num" data-days-open="{days}"{title}>{days}{badge}</td>')


def _row(r: dict, today: date, links: ChangeLinks, extra: str = "") -> str:
    return (f'<tr data-control="{e(r["control_id"])}" data-change="{e(r["change_id"])}">'
            f'{links.change_cells(r["change_id"])}{age_cells(r, today)}'
            f'<td class="detail">{e(r["detail"])}{extra}</td></tr>')


def render_failing(rows: list[dict], counts: dict[str, dict[str, int]], excepted: dict[str, int],
                   control_ids: list[str], today: date, links: ChangeLinks) -> str:
    """Per control (in ``control_ids`` order) its open failures not covered by an exception."""
    out = []
    for cid in control_ids:
        group = [r for r in rows if r["control_id"] == cid]
        total = counts.get(cid, {}).get("fail", 0) - excepted.get(cid, 0)
        if not group:
            continue
        note = f", {excepted[cid]} more excepted" if excepted.get(cid) else ""
        out.append(f'<h3 id="fail-{e(cid)}">{e(cid)} {e(control_name(cid))} ({total}{e(note)})</h3>')
        out += [m for m in [more(len(group), total, "failing changes", ORDER)] if m]
        out.append(table(HEAD, [_row(r, today, links) for r in group], "t-failing", WIDTHS))
    return "\n".join(out)


def render_excepted(rows: list[dict], excepted: dict[str, int], today: date, links: ChangeLinks) -> str:
    """Failing rows whose ``exception`` column names an exception of the register (they stay
    ``fail``; the exception is an accepted risk, not a pass)."""
    total = sum(excepted.values())
    out = [f'<h2 id="excepted">Excepted failures ({total})</h2>',
           "<p>These changes fail a control and an entry of the exceptions register accepts the risk. "
           "They stay <b>fail</b> in control_results (the evidence is not rewritten) and are listed here "
           "apart from the open failures.</p>"]
    if not rows:
        out.append("<p>No failure is covered by an exception on this date.</p>")
        return "\n".join(out)
    shown: dict[str, int] = {}
    for r in rows:
        shown[r["control_id"]] = shown.get(r["control_id"], 0) + 1
    out += [m for cid, n in shown.items() if (m := more(n, excepted.get(cid, 0), f"excepted {cid} rows", ORDER))]
    body = [(f'<tr data-control="{e(r["control_id"])}" data-change="{e(r["change_id"])}">'
             f'<td class="id">{e(r["control_id"])}</td><td><code>{e(r["exception"])}</code></td>'
             f'{links.change_cells(r["change_id"])}{age_cells(r, today)}<td class="detail">{e(r["detail"])}</td></tr>')
            for r in rows]
    out.append(table(["control", "exception", *HEAD], body, "t-excepted", [8, 9] + [round(w * 0.83) for w in WIDTHS]))
    return "\n".join(out)
