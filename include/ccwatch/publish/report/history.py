"""The report's history: pass-rate charts over the run dates (inline SVG, no script) and what
changed since the previous run date (newly failing, newly resolved, left the population).

Charts place run dates on a calendar axis: a date without a run is a gap (no point, and the line
is broken there), never a pass or a fail.  Every point carries a ``<title>`` (date and rate: a
tooltip without script) and ``data-date`` / ``data-rate`` attributes.
"""

from __future__ import annotations

from datetime import date

from ccwatch.controls.catalogue import control_name, control_sort_key
from ccwatch.publish.report.links import ChangeLinks
from ccwatch.publish.report.markup import day, e, more, pct, status, table
from ccwatch.publish.results import pass_rate

BLUE = "#0969da"


def overall_rates(hist: list[tuple[date, dict]]) -> list[tuple[date, float | None]]:
    """Per run date, the pass rate over every control."""
    out = []
    for d, per_control in hist:
        total: dict[str, int] = {}
        for counts in per_control.values():
            for k, n in counts.items():
                total[k] = total.get(k, 0) + n
        out.append((d, pass_rate(total)))
    return out


def control_rates(hist: list[tuple[date, dict]], control_id: str) -> list[tuple[date, float | None]]:
    return [(d, pass_rate(per.get(control_id, {}))) for d, per in hist]


def _segments(points: list[tuple[date, float, float, float]]) -> list[list[tuple[float, float]]]:
    """Consecutive calendar days joined; a gap (a date without a run, or nothing judged) breaks the line."""
    segs: list[list[tuple[float, float]]] = []
    prev = None
    for d, _r, x, y in points:
        if prev is None or (d - prev).days != 1:
            segs.append([])
        segs[-1].append((x, y))
        prev = d
    return segs


def _points(series: list[tuple[date, float | None]], x0: float, x1: float, y0: float, y1: float):
    """(date, rate, x, y) of the judged dates, x by calendar day between x0 and x1, y from y0 (100%) to y1 (0%)."""
    if not series:
        return []
    first, last = series[0][0], series[-1][0]
    span = max((last - first).days, 1)
    out = []
    for d, r in series:
        if r is None:
            continue
        x = x0 + (x1 - x0) * ((d - first).days / span if last != first else 1.0)
        out.append((d, r, x, y0 + (1 - r) * (y1 - y0)))
    return out


def _dots(points, radius: float) -> str:
    return "".join(
        f'<circle class="pt" cx="{x:.1f}" cy="{y:.1f}" r="{radius}" fill="{BLUE}" data-date="{d.isoformat()}" '
        f'data-rate="{r:.4f}"><title>{d.isoformat()}: {pct(r)}</title></circle>' for d, r, x, y in points)


def _lines(points, width: float) -> str:
    return "".join(f'<polyline fill="none" stroke="{BLUE}" stroke-width="{width}" points="'
                   + " ".join(f"{x:.1f},{y:.1f}" for x, y in seg) + '"/>'
                   for seg in _segments(points) if len(seg) > 1)


def sparkline(series: list[tuple[date, float | None]], control_id: str, width: int = 150, height: int = 30) -> str:
    """One control's pass rate per run date: a point per judged date, 0-100% top to bottom."""
    pts = _points(series, 4, width - 4, 4, height - 4)
    if not pts:
        return '<span class="muted">nothing judged</span>'
    label = f"{control_id} pass rate per run date: " + ", ".join(f"{d.isoformat()} {pct(r)}" for d, r, _x, _y in pts)
    return (f'<svg class="spark" data-control="{e(control_id)}" width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}" role="img" aria-label="{e(label)}">'
            f'<rect x="0.5" y="0.5" width="{width - 1}" height="{height - 1}" fill="none" stroke="#eaeef2"/>'
            f"{_lines(pts, 1.5)}{_dots(pts, 2.5)}</svg>")


def _label_dates(series: list[tuple[date, float | None]], most: int = 7) -> list[date]:
    """The dates that get an axis label: all when few, else evenly spaced including the first and the last."""
    dates = [d for d, _ in series]
    if len(dates) <= most:
        return dates
    step = (len(dates) - 1) / (most - 1)
    return sorted({dates[round(i * step)] for i in range(most)})


def trend_chart(hist: list[tuple[date, dict]]) -> str:
    """The overall pass rate per run date with a 0-100% axis and readable date labels (the first
    label anchored at its start, the last at its end, so neither is cut off)."""
    series = overall_rates(hist)
    if not series:
        return ""
    w, h, left, right, top, bottom = 720, 180, 44, 16, 10, 30
    x0, x1, y0, y1 = left, w - right, top, h - bottom
    pts = _points(series, x0, x1, y0, y1)
    label = "overall pass rate per run date: " + ", ".join(f"{d.isoformat()} {pct(r)}" for d, r, _x, _y in pts)
    parts = [f'<svg class="trend" width="{w}" height="{h}" viewBox="0 0 {w} {h}" role="img" aria-label="{e(label)}">']
    for frac in (0, 0.5, 1):
        y = y0 + (1 - frac) * (y1 - y0)
        parts.append(f'<line x1="{x0}" y1="{y:.1f}" x2="{x1}" y2="{y:.1f}" stroke="#d0d7de"/>'
                     f'<text x="{x0 - 6}" y="{y + 4:.1f}" font-size="11" fill="#59636e" text-anchor="end">'
                     f"{int(frac * 100)}%</text>")
    parts.append(_lines(pts, 2) + _dots(pts, 3.5))
    if len(pts) <= 10:  # few points: each value printed above its point
        for i, (_d, r, x, y) in enumerate(pts):
            anchor = "start" if i == 0 and len(pts) > 1 else "end" if i == len(pts) - 1 else "middle"
            parts.append(f'<text x="{x:.1f}" y="{max(y - 8, 10):.1f}" font-size="11" fill="#1f2328" '
                         f'text-anchor="{anchor}">{pct(r)}</text>')
    first, last = series[0][0], series[-1][0]
    span = max((last - first).days, 1)
    for d in _label_dates(series):
        x = x0 + (x1 - x0) * ((d - first).days / span if last != first else 1.0)
        anchor = "start" if d == first and last != first else "end" if d == last else "middle"
        parts.append(f'<line x1="{x:.1f}" y1="{y1}" x2="{x:.1f}" y2="{y1 + 4}" stroke="#8c959f"/>'
                     f'<text x="{x:.1f}" y="{h - 10}" font-size="11" fill="#59636e" text-anchor="{anchor}">'
                     f"{d.isoformat()}</text>")
    parts.append("</svg>")
    return "".join(parts)


def rate_change(hist: list[tuple[date, dict]], control_id: str | None = None) -> str:
    """The pass rate's change against the previous run date, in percentage points ("" when either is unknown)."""
    series = control_rates(hist, control_id) if control_id else overall_rates(hist)
    if len(series) < 2 or series[-1][1] is None or series[-2][1] is None:
        return ""
    delta = (series[-1][1] - series[-2][1]) * 100
    if abs(delta) < 0.05:
        return '<span class="muted">±0.0</span>'
    cls = "up" if delta > 0 else "down"
    return f'<span class="{cls}">{delta:+.1f}</span>'


def render_day_over_day(dod: dict, today: date, links: ChangeLinks) -> str:
    """The "since the previous run date" section: per control counts, then the lists."""
    prev = dod["previous"]
    if prev is None:
        return ("<p>This is the first run date in the warehouse: there is no earlier run to compare with, "
                "so every failure below is new today.</p>")
    gap = (today - prev).days
    note = "" if gap == 1 else f" ({gap} days earlier: no run on the {gap - 1} date(s) between, which are skipped)"
    out = [f"<p>Compared with the previous run date, <b>{day(prev)}</b>{e(note)}. A change is <b>newly failing</b> "
           "when it fails a control today and did not on that date; <b>resolved</b> when it failed then and "
           "does not now; <b>left the population</b> when it failed then and is no longer evaluated (e.g. it "
           "is now older than the lookback window): that is not a resolution.</p>"]
    counts = dod["counts"]
    if not counts:
        out.append("<p>No control changed between failing and not failing since then.</p>")
        return "\n".join(out)
    rows = [f'<tr><td class="id">{e(cid)}</td><td>{e(control_name(cid))}</td>'
            + "".join(f'<td class="num">{counts[cid].get(k, 0)}</td>' for k in ("newly_failing", "resolved", "left"))
            + "</tr>" for cid in sorted(counts, key=control_sort_key)]
    out.append(table(["control", "name", "newly failing", "resolved", "left the population"], rows, "t-dod"))

    def listing(kind: str, title: str, extra_head: list[str], extra) -> None:
        items = dod["rows"][kind]
        total = sum(c.get(kind, 0) for c in counts.values())
        out.append(f'<h3 id="{kind}">{e(title)} ({total})</h3>')
        if not items:
            out.append("<p>None.</p>")
            return
        shown = {}
        for r in items:
            shown[r["control_id"]] = shown.get(r["control_id"], 0) + 1
        out.extend(m for cid in sorted(shown, key=control_sort_key)
                   if (m := more(shown[cid], counts[cid].get(kind, 0), f"{cid} rows")))
        body = [f'<tr data-kind="{kind}" data-control="{e(r["control_id"])}" data-change="{e(r["change_id"])}">'
                f'<td class="id">{e(r["control_id"])}</td>{links.change_cells(r["change_id"])}{extra(r)}</tr>' for r in items]
        widths = [8, 22, 8, 7, 11] + ([9, 35] if len(extra_head) == 2 else [44])
        out.append(table(["control", "change", "author", "ticket", "evidence", *extra_head], body, "t-list", widths))

    def exc(r: dict) -> str:
        return f' <span class="st excepted">excepted: {e(r["exception"])}</span>' if r.get("exception") else ""

    listing("newly_failing", "Newly failing", ["was", "detail"],
            lambda r: f'<td>{status(r["previous_status"]) if r["previous_status"] else "not evaluated"}</td>'
                      f'<td class="detail">{e(r["detail"])}{exc(r)}</td>')
    listing("resolved", "Newly resolved", ["now", "failure it had"],
            lambda r: f'<td>{status(r["status"])}</td><td class="detail">{e(r["previous_detail"])}</td>')
    listing("left", "Left the population", ["failure it had"],
            lambda r: f'<td class="detail">{e(r["previous_detail"])}</td>')
    return "\n".join(out)
