"""The daily HTML report: one self-contained page (inline CSS and SVG, no script, no external
resource), deterministic for the same warehouse contents, as-of time and GX results.

Every value that comes from the data (titles, details, logins, URLs) is HTML-escaped; links
are emitted only for plain http(s) URLs.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from html import escape
from typing import Any

import duckdb

from ccwatch import __version__
from ccwatch.common.text import clip
from ccwatch.common.times import evidence_date, iso, naive_utc
from ccwatch.controls.catalogue import CONTROL_NAMES, REPO_CONTROLS, STATUSES, control_name, control_sort_key
from ccwatch.publish import results
from ccwatch.publish.report.gx import render_gx
from ccwatch.publish.results import pass_rate, safe_url
from ccwatch.settings import Settings

_CSS = """
body{font:14px/1.45 -apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:24px;color:#1f2328;max-width:1200px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:18px;margin:28px 0 8px;border-bottom:1px solid #d0d7de}
h3{font-size:15px;margin:18px 0 6px}.muted{color:#59636e}table{border-collapse:collapse;width:100%;margin:6px 0}
th,td{border:1px solid #d0d7de;padding:4px 8px;text-align:left;vertical-align:top}th{background:#f6f8fa}
td.num{text-align:right;white-space:nowrap}.detail{font-size:13px;color:#343a40;word-break:break-word}
.st{display:inline-block;padding:0 6px;border-radius:8px;font-size:12px;font-weight:600}
.pass{background:#dafbe1;color:#116329}.fail{background:#ffebe9;color:#a40e26}
.pending{background:#fff8c5;color:#7d4e00}.not_applicable{background:#eaeef2;color:#59636e}
.kpi{display:inline-block;margin:0 18px 8px 0}.kpi b{font-size:20px;display:block}
code{font-size:12px}svg{vertical-align:middle}
"""


def _e(value: Any) -> str:
    return escape("" if value is None else str(value), quote=True)


def _link(url: Any, text: Any) -> str:
    u = safe_url(url)
    return f'<a href="{_e(u)}">{_e(text)}</a>' if u else _e(text)


def _status(status: str) -> str:
    return f'<span class="st {_e(status)}">{_e(status)}</span>'


def _pct(rate: float | None) -> str:
    return "—" if rate is None else f"{rate * 100:.1f}%"


def _sparkline(points: list[float | None], width: int = 120, height: int = 24) -> str:
    """A tiny inline SVG polyline of pass rates (0..1); gaps where a date judged nothing."""
    vals = [(i, p) for i, p in enumerate(points) if p is not None]
    if not vals:
        return '<span class="muted">no data</span>'
    step = width / max(len(points) - 1, 1)
    coords = " ".join(f"{i * step:.1f},{(1 - p) * (height - 4) + 2:.1f}" for i, p in vals)
    last_x, last_p = vals[-1]
    return (
        f'<svg width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="pass-rate trend"><polyline fill="none" stroke="#0969da" stroke-width="1.5" '
        f'points="{coords}"/><circle cx="{last_x * step:.1f}" cy="{(1 - last_p) * (height - 4) + 2:.1f}" '
        f'r="2.5" fill="#0969da"/></svg>'
    )


def _trend_chart(hist: list) -> str:
    """Overall pass rate per run date, with a 0-100% axis; inline SVG."""
    if not hist:
        return ""
    w, h, left, bottom = 640, 160, 40, 24
    rates = []
    for _d, per_control in hist:
        total: dict[str, int] = {}
        for counts in per_control.values():
            for k, n in counts.items():
                total[k] = total.get(k, 0) + n
        rates.append(pass_rate(total))
    n = len(hist)
    step = (w - left - 10) / max(n - 1, 1)

    def xy(i: int, r: float) -> tuple[float, float]:
        return left + i * step, 8 + (1 - r) * (h - bottom - 8)

    parts = [f'<svg width="{w}" height="{h}" viewBox="0 0 {w} {h}" role="img" aria-label="overall pass rate per run">']
    for frac in (0, 0.5, 1):
        _, y = xy(0, frac)
        parts.append(f'<line x1="{left}" y1="{y:.1f}" x2="{w - 10}" y2="{y:.1f}" stroke="#d0d7de"/>'
                     f'<text x="2" y="{y + 4:.1f}" font-size="10" fill="#59636e">{int(frac * 100)}%</text>')
    pts = [xy(i, r) for i, r in enumerate(rates) if r is not None]
    if pts:
        parts.append('<polyline fill="none" stroke="#0969da" stroke-width="2" points="'
                     + " ".join(f"{x:.1f},{y:.1f}" for x, y in pts) + '"/>')
        parts += [f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="#0969da"/>' for x, y in pts]
    for i in sorted({0, n - 1}):
        x, _ = xy(i, 0)
        parts.append(f'<text x="{x:.1f}" y="{h - 6}" font-size="10" fill="#59636e" text-anchor="middle">'
                     f"{_e(hist[i][0].isoformat())}</text>")
    parts.append("</svg>")
    return "".join(parts)


def _due(control_id: str, change: dict | None, s: Settings) -> str:
    """The date a pending row turns into pass or fail, where the facts let us derive it."""
    if not change:
        return ""
    merged, deployed, w = change.get("merged_at"), change.get("deployed_at"), s.windows
    if isinstance(merged, datetime) and control_id in ("CC8.1-06", "CC8.1-07") and not deployed:
        return iso(naive_utc(merged) + timedelta(hours=w.deploy_grace_hours))
    if control_id == "CC8.1-08":
        if isinstance(deployed, datetime):
            return iso(naive_utc(deployed) + timedelta(days=w.pir_days))
        return f"{w.pir_days} days after the production deployment"
    if control_id == "CC8.1-09" and isinstance(merged, datetime):
        due = [f"approval by {iso(naive_utc(merged) + timedelta(days=w.emergency_retro_days))}"]
        if isinstance(deployed, datetime):
            due.append(f"post-mortem by {iso(naive_utc(deployed) + timedelta(days=w.postmortem_days))}")
        else:
            due.append(f"post-mortem {w.postmortem_days} days after the deployment")
        return "; ".join(due)
    if control_id == "CC8.1-13":
        return "at the production deployment"
    return ""


def _change_cells(row: dict, change: dict | None, commit_links: dict) -> str:
    cid = row["change_id"]
    title = clip(change.get("title") or "") if change else ""
    ticket = ""
    if change and change.get("ticket_key"):
        ticket = _link(change.get("ticket_url"), change["ticket_key"])
    author = _e(change.get("author")) if change else ""
    return (f"<td>{_link(results.change_link(change, commit_links), cid)}<div class=\"detail\">{_e(title)}</div></td>"
            f"<td>{author}</td><td>{ticket}</td>")


#: at most this many failing (and pending) rows per control are listed; the counts are always complete
TOP_N = 100


def _more(shown: int, total: int, what: str) -> str:
    if total <= shown:
        return ""
    return (f'<p class="muted">Showing the first {shown} of {total} {what} (by change id); '
            "control_results.csv in the evidence folder lists every row.</p>")


def _trust_line(settings: Settings, signing_key) -> str:
    """Signed or unsigned, time-stamped or not (CONTROLS.md r2: without a key the evidence says so)."""
    from ccwatch.publish.evidence import signing, timestamp

    if signing_key is not None:
        sig = (f"Evidence manifest signed (Ed25519, public key "
               f"<code>{_e(signing.public_key_fingerprint(signing_key))}</code>)")
    else:
        sig = "Evidence manifest <b>unsigned</b> (evidence.signing_conn_id is not set)"
    url = settings.evidence.timestamp_url
    ts = (f"time-stamped by <code>{_e(timestamp.redact_url(url))}</code> (RFC 3161)" if url
          else "not time-stamped (evidence.timestamp_url is not set)")
    return f"{sig} · {ts} · verify: <code>python -m ccwatch verify</code> (README.txt)"


def render_report(con: duckdb.DuckDBPyConnection, settings: Settings, as_of: datetime, gx_results: list[dict],
                  *, top_n: int = TOP_N, signing_key=None) -> str:
    """The report page.  Counts are aggregated in SQL; at most ``top_n`` failing and ``top_n``
    pending rows per control are listed, so the page stays small at any number of changes.
    ``signing_key``: the key that will sign the manifest (its fingerprint is shown), None: unsigned."""
    counts: dict[str, dict[str, int]] = {cid: {} for cid in CONTROL_NAMES}
    counts.update(results.status_counts(con, as_of))
    change_ids = tuple(c for c in counts if c not in REPO_CONTROLS)
    failing = results.top_results(con, as_of, "fail", top_n, change_ids) if change_ids else []
    pending = results.top_results(con, as_of, "pending", top_n, change_ids) if change_ids else []
    repo_rows = [r for status in STATUSES
                 for r in results.top_results(con, as_of, status, 1 << 40, tuple(REPO_CONTROLS))]
    facts = results.changes_by_id(con, [r["change_id"] for r in failing + pending])
    repo_urls = {r["change_id"]: r.get("html_url") for r in results.repos(con)}
    commit_links = results.commit_urls(con, [(c.get("repo"), c.get("sha")) for c in facts.values()])
    hist = results.history(con, as_of)
    day = evidence_date(as_of)
    has_rows = any(counts.values())

    control_ids = sorted(counts, key=control_sort_key)
    totals: dict[str, int] = {}
    for c in counts.values():
        for k, n in c.items():
            totals[k] = totals.get(k, 0) + n

    kinds = results.change_kind_counts(con)
    n_changes = sum(kinds.values())
    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>ccwatch CC8.1 report {_e(day.isoformat())}</title>",
        f"<style>{_CSS}</style></head><body>",
        "<h1>SOC 2 CC8.1 change management report</h1>",
        f'<p class="muted">As of {_e(iso(naive_utc(as_of)))} · lookback {settings.lookback_days} days · '
        f"ccwatch {_e(__version__)} · configuration SHA-256 <code>{_e(settings.sha256 or 'unknown')}</code></p>",
        f'<p class="muted" id="evidence-trust">{_trust_line(settings, signing_key)}</p>',
        "<div>",
        f'<span class="kpi"><b>{n_changes}</b>changes in window '
        f"({kinds.get('pr', 0)} pull requests, {kinds.get('direct_push', 0)} direct pushes)</span>",
        f'<span class="kpi"><b>{len(settings.github.repositories)}</b>repositories</span>',
        f'<span class="kpi"><b>{_pct(pass_rate(totals))}</b>overall pass rate</span>',
        f'<span class="kpi"><b>{totals.get("fail", 0)}</b>failing results</span>',
        f'<span class="kpi"><b>{totals.get("pending", 0)}</b>pending</span>',
        "</div>",
    ]
    if not has_rows:
        out.append('<p class="st fail">No control results exist for this date: nothing here is an all-clear.</p>')

    out += ["<h2>Pass rate per control</h2>",
            f'<p class="muted">Pass rate = pass / (pass + fail). Trend over the last {len(hist)} run date(s).</p>',
            _trend_chart(hist),
            "<table><thead><tr><th>control</th><th>name</th><th>pass rate</th><th>pass</th><th>fail</th>"
            "<th>pending</th><th>n/a</th><th>trend</th></tr></thead><tbody>"]
    for cid in control_ids:
        c = counts[cid]
        spark = _sparkline([pass_rate(per.get(cid, {})) for _d, per in hist])
        target = "repo-findings" if cid in REPO_CONTROLS else f"fail-{cid}"
        anchor = f'<a href="#{_e(target)}">{_e(cid)}</a>' if c.get("fail") else _e(cid)
        out.append(
            f"<tr><td>{anchor}</td><td>{_e(control_name(cid))}</td><td class=\"num\">{_pct(pass_rate(c))}</td>"
            + "".join(f'<td class="num">{c.get(k, 0)}</td>' for k in STATUSES)
            + f"<td>{spark}</td></tr>"
        )
    out.append("</tbody></table>")

    n_failing = sum(counts[cid].get("fail", 0) for cid in change_ids)
    out.append(f"<h2>Failing changes ({n_failing})</h2>")
    if not n_failing:
        out.append("<p>No change fails a control on this date.</p>" if has_rows else "")
    for cid in control_ids:
        group = [r for r in failing if r["control_id"] == cid]
        if not group:
            continue
        total = counts[cid].get("fail", 0)
        out.append(f'<h3 id="fail-{_e(cid)}">{_e(cid)} {_e(control_name(cid))} ({total})</h3>')
        out += [m for m in [_more(len(group), total, "failing changes")] if m]
        out.append("<table><thead><tr><th>change</th><th>author</th><th>ticket</th><th>detail</th></tr></thead><tbody>")
        for r in group:
            out.append(f"<tr>{_change_cells(r, facts.get(r['change_id']), commit_links)}"
                       f"<td class=\"detail\">{_e(r['detail'])}</td></tr>")
        out.append("</tbody></table>")

    n_pending = sum(counts[cid].get("pending", 0) for cid in change_ids)
    out.append(f"<h2>Pending ({n_pending})</h2>")
    if pending:
        out += [m for cid in control_ids if (m := _more(sum(1 for r in pending if r["control_id"] == cid),
                                                       counts[cid].get("pending", 0), f"pending {cid} rows"))]
        out.append("<table><thead><tr><th>control</th><th>change</th><th>author</th><th>ticket</th>"
                   "<th>due</th><th>detail</th></tr></thead><tbody>")
        for r in sorted(pending, key=lambda r: (control_sort_key(r["control_id"]), r["change_id"])):
            change = facts.get(r["change_id"])
            out.append(f"<tr><td>{_e(r['control_id'])}</td>{_change_cells(r, change, commit_links)}"
                       f"<td>{_e(_due(r['control_id'], change, settings))}</td>"
                       f"<td class=\"detail\">{_e(r['detail'])}</td></tr>")
        out.append("</tbody></table>")
    else:
        out.append("<p>Nothing is pending.</p>")

    repo_rows = sorted(repo_rows, key=lambda r: (r["change_id"], control_sort_key(r["control_id"])))
    out.append(f'<h2 id="repo-findings">Repository findings ({_e(", ".join(REPO_CONTROLS))})</h2>')
    if repo_rows:
        out.append("<table><thead><tr><th>repository</th><th>control</th><th>status</th><th>detail</th></tr></thead><tbody>")
        for r in repo_rows:
            out.append(f"<tr><td>{_link(repo_urls.get(r['change_id']), r['change_id'])}</td>"
                       f"<td>{_e(r['control_id'])} {_e(control_name(r['control_id']))}</td>"
                       f"<td>{_status(r['status'])}</td><td class=\"detail\">{_e(r['detail'])}</td></tr>")
        out.append("</tbody></table>")
    else:
        out.append("<p>No repository-level results for this date.</p>")

    out += ["<h2>Great Expectations validation</h2>", render_gx(gx_results or [])]
    out.append(f'<p class="muted">Generated by ccwatch {_e(__version__)} for {_e(day.isoformat())}. '
               "The evidence folder holds control_results.csv, population.csv and the raw API payloads.</p>")
    out.append("</body></html>\n")
    return "\n".join(out)
