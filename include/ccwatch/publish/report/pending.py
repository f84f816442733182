"""The report's pending items: when each turns into pass or fail, soonest first.

``due`` derives the moment from the change's facts and the config's windows (CC8.1-06/07: merge +
``deploy_grace_hours`` while not deployed; CC8.1-08: deployment + ``pir_days``; CC8.1-09: merge +
``emergency_retro_days`` for the approval and deployment + ``postmortem_days`` for the
post-mortem; CC8.1-13: at the production deployment, not a time).  The list puts the items due
within the next 48 hours first (by due time), then the other dated ones (by due time), then
those without a derivable time (by control and change id).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from ccwatch.common.times import iso, naive_utc
from ccwatch.controls.catalogue import control_sort_key
from ccwatch.publish.report.links import ChangeLinks
from ccwatch.publish.report.markup import e, table
from ccwatch.settings import Settings

#: pending items due within this long after the as-of time are listed first and marked
SOON = timedelta(hours=48)


@dataclass(frozen=True)
class Due:
    """When a pending row turns into pass or fail: ``at`` (naive UTC, the earliest known deadline;
    None when the facts do not give one yet) and ``text`` (what the report prints)."""

    at: datetime | None
    text: str


def due(control_id: str, change: dict | None, s: Settings) -> Due:
    """The deadline of a pending row of ``control_id`` for this change (its population row)."""
    if change is None:
        return Due(None, "")
    merged, deployed, w = change.get("merged_at"), change.get("deployed_at"), s.windows
    merged = naive_utc(merged) if isinstance(merged, datetime) else None
    deployed = naive_utc(deployed) if isinstance(deployed, datetime) else None
    if merged and control_id in ("CC8.1-06", "CC8.1-07") and not deployed:
        at = merged + timedelta(hours=w.deploy_grace_hours)
        return Due(at, iso(at))
    if control_id == "CC8.1-08":
        if deployed:
            at = deployed + timedelta(days=w.pir_days)
            return Due(at, iso(at))
        return Due(None, f"{w.pir_days} days after the production deployment")
    if control_id == "CC8.1-09" and merged:
        approval = merged + timedelta(days=w.emergency_retro_days)
        parts, times = [f"approval by {iso(approval)}"], [approval]
        if deployed:
            postmortem = deployed + timedelta(days=w.postmortem_days)
            parts.append(f"post-mortem by {iso(postmortem)}")
            times.append(postmortem)
        else:
            parts.append(f"post-mortem {w.postmortem_days} days after the deployment")
        return Due(min(times), "; ".join(parts))
    if control_id == "CC8.1-13":
        return Due(None, "at the production deployment")
    return Due(None, "")


def in_words(delta: timedelta) -> str:
    """``timedelta(hours=31)`` -> 'in 1 d 7 h'; a past deadline -> 'overdue by ...'."""
    secs = int(delta.total_seconds())
    d, rest = divmod(abs(secs), 86400)
    h = rest // 3600
    text = f"{d} d {h} h" if d else f"{h} h" if h else "under 1 h"
    return f"in {text}" if secs >= 0 else f"overdue by {text}"


def ordered(rows: list[dict], links: ChangeLinks, s: Settings, as_of: datetime, per_control: int
            ) -> list[tuple[dict, Due]]:
    """The pending rows with their deadlines: at most ``per_control`` per control (the soonest),
    due within 48 h first, then by due time, then undated."""
    now = naive_utc(as_of)
    keyed = []
    for r in rows:
        d = due(r["control_id"], links.change(r["change_id"]), s)
        group = 2 if d.at is None else 0 if d.at - now <= SOON else 1
        keyed.append(((group, d.at or now, control_sort_key(r["control_id"]), r["change_id"]), r, d))
    keyed.sort(key=lambda k: k[0])
    taken: dict[str, int] = {}
    out = []
    for _k, r, d in keyed:
        taken[r["control_id"]] = taken.get(r["control_id"], 0) + 1
        if taken[r["control_id"]] <= per_control:
            out.append((r, d))
    return out


def render_pending(items: list[tuple[dict, Due]], as_of: datetime, links: ChangeLinks) -> str:
    now = naive_utc(as_of)
    body = []
    for r, d in items:
        soon = d.at is not None and d.at - now <= SOON
        when = f'<div class="muted">{e(in_words(d.at - now))}</div>' if d.at else ""
        mark = ' <span class="st soon">due within 48 h</span>' if soon else ""
        cls = ' class="due-soon"' if soon else ""
        body.append(f'<tr data-control="{e(r["control_id"])}" data-change="{e(r["change_id"])}"'
                    f'{cls}><td class="id">{e(r["control_id"])}</td>'
                    f'{links.change_cells(r["change_id"])}'
                    f'<td data-due="{e(iso(d.at) if d.at else "")}">{e(d.text)}{mark}{when}</td>'
                    f'<td class="detail">{e(r["detail"])}</td></tr>')
    return table(["control", "change", "author", "ticket", "evidence", "due", "detail"], body, "t-pending", [8, 20, 8, 7, 11, 18, 28])
