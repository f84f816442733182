"""The Compliance page as HTML (and as JSON for scripts), from its data and evidence files."""

from __future__ import annotations

import base64
import hashlib
from datetime import date
from html import escape
from typing import Any

from ccwatch import __version__
from ccwatch.common.times import iso
from ccwatch.controls.catalogue import REPO_CONTROLS, STATUSES, control_name, control_sort_key
from ccwatch.publish import results
from ccwatch.publish.dashboard.data import DashboardData
from ccwatch.publish.dashboard.files import ArchiveChecks, EvidenceFiles, Verification
from ccwatch.publish.evidence.archive import MANIFEST
from ccwatch.publish.results import pass_rate, safe_url

#: a title longer than this is cut on the page (the evidence folder keeps it whole)
TITLE_CHARS = 300


def dashboard_json(data: DashboardData, files: EvidenceFiles, checks: ArchiveChecks | None = None) -> dict[str, Any]:
    """The page's numbers for scripts (``summary.json``): counts, the evidence files and the
    verifications already run; no change details."""
    archives = []
    for a in files.archives:
        entry: dict[str, Any] = {"name": a.name, "size": a.size, "current": a.current}
        if checks is not None:
            entry["sha256"] = checks.digest(a.path)
            v = checks.verified(entry["sha256"])
            entry["verify"] = None if v is None else {"ok": v.ok, "problems": list(v.problems)}
        archives.append(entry)
    return {
        "evidence_date": data.day.isoformat() if data.day else None,
        "as_of": iso(data.as_of) if data.as_of else None,
        "evidence_dates": [d.isoformat() for d in data.dates],
        "run": {"stage": data.run_stage, "detail": data.run_detail},
        "counts": {c: {s: per.get(s, 0) for s in STATUSES} for c, per in data.counts.items()},
        "totals": data.totals,
        "files": list(files.folder_files),
        "archives": archives,
    }




DASHBOARD_CSS = """
body{font:14px/1.45 -apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:16px 20px;color:#1f2328}
h1{font-size:20px;margin:0 0 4px}h2{font-size:16px;margin:22px 0 6px;border-bottom:1px solid #d0d7de}
h3{font-size:14px;margin:14px 0 4px}.muted{color:#59636e}table{border-collapse:collapse;margin:6px 0}
th,td{border:1px solid #d0d7de;padding:3px 8px;text-align:left;vertical-align:top}th{background:#f6f8fa}
td.num{text-align:right;white-space:nowrap}.detail{font-size:13px;color:#343a40;word-break:break-word}
.st{display:inline-block;padding:0 6px;border-radius:8px;font-size:12px;font-weight:600}
.pass{background:#dafbe1;color:#116329}.fail{background:#ffebe9;color:#a40e26}
.pending{background:#fff8c5;color:#7d4e00}.not_applicable{background:#eaeef2;color:#59636e}
.warn{border:1px solid #d4a72c;background:#fff8c5;padding:6px 10px;margin:8px 0}
.bad{border:1px solid #cf222e;background:#ffebe9;padding:6px 10px;margin:8px 0}
.kpi{display:inline-block;margin:0 18px 6px 0}.kpi b{font-size:18px;display:block}
code{font-size:12px;word-break:break-all}form{display:inline}
"""


def style_hash() -> str:
    """The CSP source (``'sha256-...'``) of the page's one inline style block."""
    return "'sha256-" + base64.b64encode(hashlib.sha256(DASHBOARD_CSS.encode("utf-8")).digest()).decode() + "'"


def _e(value: Any) -> str:
    return escape("" if value is None else str(value), quote=True)


def _link(url: Any, text: Any) -> str:
    u = safe_url(url)
    return f'<a href="{_e(u)}">{_e(text)}</a>' if u else _e(text)


def _title(text: Any) -> str:
    t = "" if text is None else str(text)
    return t if len(t) <= TITLE_CHARS else t[:TITLE_CHARS] + "…"


def _pct(rate: float | None) -> str:
    return "—" if rate is None else f"{rate * 100:.1f}%"


def _size(n: int) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def _verification(v: Verification | None, name: str) -> str:
    href = f"verify/{_e(name)}"
    if v is None:
        return f'<a href="{href}">run verify</a>'
    if v.ok:
        return f'<span class="st pass">verified</span> <span class="muted">every file matches {MANIFEST}</span>'
    return (f'<span class="st fail">{len(v.problems)} problem(s)</span> <a href="{href}">details</a>')


def _change_cells(r: dict, commit_links: dict) -> str:
    change = r.get("change") or {}
    ticket = _link(change.get("ticket_url"), change["ticket_key"]) if change.get("ticket_key") else ""
    return (f"<td>{_link(results.change_link(change, commit_links), r['change_id'])}"
            f"<div class=\"detail\">{_e(_title(change.get('title')))}</div></td>"
            f"<td>{_e(change.get('author'))}</td><td>{ticket}</td>")


def _notices(data: DashboardData, files: EvidenceFiles) -> list[str]:
    """What must not be missed: no results, a failed or unfinished latest run, a date without archive."""
    out = []
    if data.day is None:
        out.append('<p class="bad">No control results in the warehouse yet: nothing here is an all-clear.</p>')
    newest = data.latest_run
    if newest and (newest["stage"] == "failed" or data.dates and newest["as_of"].date() > data.dates[0]):
        what = ("failed" if newest["stage"] == "failed"
                else f"is at stage '{newest['stage']}': its results are not in yet")
        detail = f" ({_e(newest['detail'])})" if newest.get("detail") and newest["stage"] == "failed" else ""
        out.append(f'<p class="bad">The latest run, as of {_e(iso(newest["as_of"]))}, {_e(what)}{detail}.</p>')
    if data.day is not None and not files.archives:
        out.append(f'<p class="warn">No evidence archive for {_e(data.day.isoformat())} '
                   f"(run stage: {_e(data.run_stage or 'unknown')}).</p>")
    return out


def render_dashboard(data: DashboardData, files: EvidenceFiles, checks: ArchiveChecks, *, user: str | None = None) -> str:
    """The page (links relative to the page's own URL, the app's root)."""
    day = data.day.isoformat() if data.day else ""
    totals = data.totals
    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8"><meta name="referrer" content="same-origin">',
        f"<title>ccwatch compliance {_e(day)}</title>",
        f"<style>{DASHBOARD_CSS}</style></head><body>",
        f'<h1>SOC 2 CC8.1 compliance <span id="day">{_e(day)}</span></h1>',
        '<p class="muted">Read-only view of the ccwatch warehouse'
        + (f" · as of {_e(iso(data.as_of))}" if data.as_of else "")
        + (f' · signed in as <b id="who">{_e(user)}</b>' if user else "")
        + f" · ccwatch {_e(__version__)}</p>",
    ]
    if data.dates:
        options = "".join(f'<option value="{_e(d.isoformat())}"{" selected" if d == data.day else ""}>'
                          f"{_e(d.isoformat())}</option>" for d in data.dates)
        out.append('<form method="get" action="" id="pick"><label>Evidence date <select name="date">'
                   f"{options}</select></label> <button type=\"submit\">Show</button></form>")
    out += _notices(data, files)
    if data.day is None:
        out.append("</body></html>\n")
        return "\n".join(out)

    change_controls = [c for c in data.counts if c not in REPO_CONTROLS]
    out += [
        "<div>",
        f'<span class="kpi"><b>{_pct(pass_rate(totals))}</b>overall pass rate</span>',
        f'<span class="kpi"><b id="total-fail">{totals.get("fail", 0)}</b>failing results</span>',
        f'<span class="kpi"><b id="total-pending">{totals.get("pending", 0)}</b>pending</span>',
        f'<span class="kpi"><b>{_e(data.run_stage or "unknown")}</b>run stage</span>',
        "</div>",
        "<h2>Evidence</h2>",
    ]
    links = [f'<a href="evidence/{_e(day)}/{_e(n)}">{_e(n)}</a>' for n in files.folder_files]
    out.append(f'<p id="files">{" · ".join(links) if links else "No evidence folder for this date."}</p>')
    if files.archives:
        out.append('<table id="archives"><thead><tr><th>archive</th><th>size</th><th>SHA-256</th>'
                   "<th>verify</th></tr></thead><tbody>")
        for a in files.archives:
            digest = checks.digest(a.path)
            current = "" if a.current else ' <span class="muted">(superseded by a rerun)</span>'
            out.append(f'<tr><td><a href="evidence/{_e(a.name)}">{_e(a.name)}</a>{current}</td>'
                       f'<td class="num">{_e(_size(a.size))}</td><td><code>{_e(digest)}</code></td>'
                       f"<td>{_verification(checks.verified(digest), a.name)}</td></tr>")
        out.append("</tbody></table>")

    out += ["<h2>Per control</h2>",
            '<table id="counts"><thead><tr><th>control</th><th>name</th><th>pass rate</th><th>pass</th>'
            "<th>fail</th><th>pending</th><th>n/a</th></tr></thead><tbody>"]
    for cid, per in data.counts.items():
        out.append(f'<tr data-control="{_e(cid)}"><td>{_e(cid)}</td><td>{_e(control_name(cid))}</td>'
                   f'<td class="num">{_pct(pass_rate(per))}</td>'
                   + "".join(f'<td class="num" data-status="{s}">{per.get(s, 0)}</td>' for s in STATUSES)
                   + "</tr>")
    out.append("</tbody></table>")

    n_failing = data.count("fail", change_controls)
    out.append(f'<h2 id="failing">Failing changes ({n_failing})</h2>')
    if not n_failing:
        out.append("<p>No change fails a control on this date.</p>")
    for cid in change_controls:
        group = [r for r in data.failing if r["control_id"] == cid]
        total = data.counts[cid].get("fail", 0)
        if not total:
            continue
        out.append(f"<h3>{_e(cid)} {_e(control_name(cid))} ({total})</h3>")
        if total > len(group):
            out.append(f'<p class="muted">The first {len(group)} of {total} (by change id); control_results.csv '
                       "lists every row.</p>")
        if group:
            out.append(f'<table class="failing" data-control="{_e(cid)}"><thead><tr><th>change</th>'
                       "<th>author</th><th>ticket</th><th>detail</th></tr></thead><tbody>")
            out += [f"<tr>{_change_cells(r, data.commit_links)}<td class=\"detail\">{_e(r['detail'])}</td></tr>"
                    for r in group]
            out.append("</tbody></table>")

    n_pending = data.count("pending", change_controls)
    out.append(f'<h2 id="pending">Pending ({n_pending})</h2>')
    shown = {c: sum(1 for r in data.pending if r["control_id"] == c) for c in change_controls}
    cut = [c for c in change_controls if data.counts[c].get("pending", 0) > shown[c]]
    if cut:
        out.append(f'<p class="muted">At most {data.top_n} rows per control are listed ({_e(", ".join(cut))} '
                   "have more); control_results.csv lists every row.</p>")
    if data.pending:
        out.append('<table id="pending-rows"><thead><tr><th>control</th><th>change</th><th>author</th><th>ticket</th>'
                   "<th>detail</th></tr></thead><tbody>")
        for r in sorted(data.pending, key=lambda r: (control_sort_key(r["control_id"]), r["change_id"])):
            out.append(f"<tr><td>{_e(r['control_id'])}</td>{_change_cells(r, data.commit_links)}"
                       f"<td class=\"detail\">{_e(r['detail'])}</td></tr>")
        out.append("</tbody></table>")
    elif not n_pending:
        out.append("<p>Nothing is pending.</p>")

    out.append(f'<h2 id="repo-findings">Repository findings ({", ".join(REPO_CONTROLS)})</h2>')
    if data.repo_rows:
        out.append('<table id="repo-rows"><thead><tr><th>repository</th><th>control</th><th>status</th>'
                   "<th>detail</th></tr></thead><tbody>")
        for r in data.repo_rows:
            out.append(f"<tr><td>{_link(r.get('html_url'), r['change_id'])}</td>"
                       f"<td>{_e(r['control_id'])} {_e(control_name(r['control_id']))}</td>"
                       f"<td><span class=\"st {_e(r['status'])}\">{_e(r['status'])}</span></td>"
                       f"<td class=\"detail\">{_e(r['detail'])}</td></tr>")
        out.append("</tbody></table>")
    else:
        out.append("<p>No repository-level results for this date.</p>")
    out.append("</body></html>\n")
    return "\n".join(out)


def render_verification(name: str, day: date | None, v: Verification) -> str:
    """The result of ``verify`` on one archive (linked from the page: ``verify/<name>``)."""
    back = f"../?date={_e(day.isoformat())}" if day else "../"
    if v.ok:
        verdict = (f'<p><span class="st pass">OK</span> every file of <code>{_e(name)}</code> matches its '
                   f"{MANIFEST} (checked in {v.seconds:.2f} s).</p>")
    else:
        verdict = (f'<p><span class="st fail">{len(v.problems)} problem(s)</span> in <code>{_e(name)}</code>:</p>'
                   '<ul id="problems">' + "".join(f"<li>{_e(p)}</li>" for p in v.problems) + "</ul>")
    return "\n".join([
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8"><meta name="referrer" content="same-origin">',
        f"<title>verify {_e(name)}</title><style>{DASHBOARD_CSS}</style></head><body>",
        f"<h1>verify {_e(name)}</h1>",
        f"<p>SHA-256 <code>{_e(v.digest)}</code></p>",
        verdict,
        '<p class="muted">The same check as <code>python -m ccwatch verify ARCHIVE</code>: every member is '
        f"re-hashed against {MANIFEST}; nothing is written.</p>",
        f'<p><a href="{back}">Back to the compliance page</a></p>',
        "</body></html>\n",
    ])
