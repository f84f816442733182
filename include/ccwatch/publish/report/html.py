"""The daily HTML report: the page's assembly.  One self-contained page (inline CSS and SVG, no
script, no external resource: it reads the same with JavaScript disabled), deterministic for the
same warehouse contents, as-of time and GX results.

The sections render themselves (``history``: charts and the change since the previous run date;
``failing``: open failures with their age, and excepted failures; ``pending``: deadlines;
``views``: by repository and by author; ``gx``: the Great Expectations results in words) from
what ``publish/results.py`` reads; ``links`` gives every listed change its PR, ticket and
evidence-folder links; ``markup`` escapes every value that comes from the data.
"""

from __future__ import annotations

from datetime import datetime

import duckdb

from ccwatch import __version__
from ccwatch.common.times import evidence_date, iso, naive_utc
from ccwatch.controls.catalogue import CONTROL_NAMES, REPO_CONTROLS, STATUSES, control_name, control_sort_key
from ccwatch.publish import results, results_history
from ccwatch.publish.report import failing, history, pending, views
from ccwatch.publish.report.exceptions import render_invalid_exceptions
from ccwatch.publish.report.gx import named_ids, render_gx
from ccwatch.publish.report.links import ChangeLinks
from ccwatch.publish.report.markup import e, link, local_link, pct, status
from ccwatch.publish.results import pass_rate
from ccwatch.settings import Settings

_CSS = """
body{font:14px/1.45 -apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:24px;color:#1f2328;max-width:1200px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:18px;margin:28px 0 8px;border-bottom:1px solid #d0d7de}
h3{font-size:15px;margin:18px 0 6px}.muted{color:#59636e}table{border-collapse:collapse;width:100%;margin:6px 0}
th,td{border:1px solid #d0d7de;padding:4px 8px;text-align:left;vertical-align:top}th{background:#f6f8fa}
td.num,th.num{text-align:right;white-space:nowrap}.detail{font-size:13px;color:#343a40;word-break:break-word}
.st{display:inline-block;padding:0 6px;border-radius:8px;font-size:12px;font-weight:600}
.pass{background:#dafbe1;color:#116329}.fail{background:#ffebe9;color:#a40e26}
.pending{background:#fff8c5;color:#7d4e00}.not_applicable{background:#eaeef2;color:#59636e}
.new{background:#ffebe9;color:#a40e26}.soon{background:#fff1e5;color:#953800}.excepted{background:#ddf4ff;color:#0a3069}
tr.due-soon td{background:#fffaf0}td.bad{background:#ffebe9;color:#a40e26;font-weight:600}
.up{color:#116329;font-weight:600}.down{color:#a40e26;font-weight:600}
.kpi{display:inline-block;margin:0 18px 8px 0}.kpi b{font-size:20px;display:block}
nav{margin:10px 0;font-size:13px}nav a{margin-right:12px}td.links{white-space:nowrap;font-size:13px}
ul.offenders{margin:0;padding-left:18px}details{font-size:12px;color:#59636e}
code{font-size:12px}svg{vertical-align:middle}table.fixed{table-layout:fixed}td.id,td.date{white-space:nowrap}
table.fixed td{overflow-wrap:anywhere}
"""

#: at most this many failing (and pending, and changed) rows per control are listed; counts are always complete
TOP_N = 100


def _nav(has_exceptions: bool) -> str:
    items = [("since", "Since the previous run"), ("rates", "Pass rates"), ("failing", "Failing changes")]
    items += [("excepted", "Excepted failures")] if has_exceptions else []
    items += [("pending", "Pending"), ("by-repo", "By repository"), ("by-author", "By author"),
              ("repo-findings", "Repository findings"), ("gx", "Great Expectations")]
    return "<nav>" + "".join(f'<a href="#{a}">{e(t)}</a>' for a, t in items) + "</nav>"


def _rates_table(counts: dict, control_ids: list[str], hist: list) -> list[str]:
    out = ["<table class=\"rates\"><thead><tr><th>control</th><th>name</th><th>pass rate</th>"
           "<th title=\"percentage points since the previous run date\">change (pts)</th><th>pass</th><th>fail</th>"
           "<th>pending</th><th>n/a</th><th>trend (run dates)</th></tr></thead><tbody>"]
    for cid in control_ids:
        c = counts[cid]
        target = "repo-findings" if cid in REPO_CONTROLS else f"fail-{cid}"
        anchor = f'<a href="#{e(target)}">{e(cid)}</a>' if c.get("fail") else e(cid)
        out.append(
            f"<tr><td>{anchor}</td><td>{e(control_name(cid))}</td>"
            f"<td class=\"num\">{pct(pass_rate(c))}</td><td class=\"num\">{history.rate_change(hist, cid)}</td>"
            + "".join(f'<td class="num">{c.get(k, 0)}</td>' for k in STATUSES)
            + f"<td>{history.sparkline(history.control_rates(hist, cid), cid)}</td></tr>")
    out.append("</tbody></table>")
    return out


def _trust_line(settings: Settings, signing_key) -> str:
    """Signed or unsigned, time-stamped or not (CONTROLS.md r2: without a key the evidence says so)."""
    from ccwatch.publish.evidence import signing, timestamp

    if signing_key is not None:
        sig = (f"Evidence manifest signed (Ed25519, public key "
               f"<code>{e(signing.public_key_fingerprint(signing_key))}</code>)")
    else:
        sig = "Evidence manifest <b>unsigned</b> (evidence.signing_conn_id is not set)"
    url = settings.evidence.timestamp_url
    ts = (f"time-stamped by <code>{e(timestamp.redact_url(url))}</code> (RFC 3161)" if url
          else "not time-stamped (evidence.timestamp_url is not set)")
    return f"{sig} · {ts} · verify: <code>python -m ccwatch verify</code> (README.txt)"


def _reconciliation_section(rows: list[dict]) -> list[str]:
    """(r2) The population reconciliation: per repository, GitHub search's count of PRs merged into the
    production branch in the window against the population's PR changes (reconciliation.csv)."""
    out = ['<h2 id="reconciliation">Population reconciliation</h2>',
           '<p class="muted">Per repository, the number of pull requests merged into the production branch in the '
           "window according to GitHub search (an independent query, its issueCount) against the pull-request "
           "changes of the population. Direct pushes are not pull requests: listed apart. A difference fails the "
           "run's reconciliation check. The production branch's first-parent commits of the window, each with its "
           "change and the deployments that carried it, are in branch_history.csv.</p>"]
    if not rows:
        return out + ['<p class="st fail">This run stored no reconciliation: nothing here says the population is '
                      "complete.</p>"]
    out.append("<table><tr><th>repository</th><th>branch</th><th>window</th><th>search count</th>"
               "<th>population (PRs)</th><th>direct pushes</th><th>result</th><th>detail</th></tr>")
    for r in rows:
        st = "pass" if r["match"] else "fail"
        word = "match" if r["match"] else "MISMATCH"
        n = "none" if r["search_count"] is None else r["search_count"]
        out.append(f"<tr><td>{e(r['repo'])}</td><td>{e(r['branch'])}</td><td>{e(r['window'])}</td><td>{e(n)}</td>"
                   f"<td>{e(r['population_count'])}</td><td>{e(r['direct_pushes'])}</td>"
                   f'<td class="st {st}">{word}</td><td>{e(r["detail"])}</td></tr>')
    return out + ["</table>"]


def render_report(con: duckdb.DuckDBPyConnection, settings: Settings, as_of: datetime, gx_results: list[dict],
                  *, top_n: int = TOP_N, signing_key=None) -> str:
    """The report page.  Counts are aggregated in SQL; at most ``top_n`` rows per control are
    listed in each list (failing, excepted, pending, newly failing, resolved), so the page stays
    small at any number of changes.  ``signing_key``: the key that will sign the manifest (its
    fingerprint is shown), None: unsigned."""
    counts: dict[str, dict[str, int]] = {cid: {} for cid in CONTROL_NAMES}
    counts.update(results.status_counts(con, as_of))
    control_ids = sorted(counts, key=control_sort_key)
    change_ids = tuple(c for c in control_ids if c not in REPO_CONTROLS)
    excepted_n = results_history.excepted_counts(con, as_of)
    # the excepted section when the date's run evaluated a register or a row carries an exception
    has_exceptions = bool(excepted_n) or results.exception_register(con, as_of) is not None
    open_rows = results_history.open_failures(con, as_of, top_n, change_ids, excepted=False) if change_ids else []
    excepted_rows = results_history.open_failures(con, as_of, top_n, change_ids, excepted=True) if has_exceptions else []
    pending_rows = results.top_results(con, as_of, "pending", 1 << 40, change_ids) if change_ids else []
    dod = results_history.day_over_day(con, as_of, top_n)
    repo_rows = [r for st in STATUSES for r in results.top_results(con, as_of, st, 1 << 40, tuple(REPO_CONTROLS))]
    listed = [r["change_id"] for rows in (open_rows, excepted_rows, pending_rows, *dod["rows"].values()) for r in rows]
    repo_urls = {r["change_id"]: r.get("html_url") for r in results.repos(con)}
    links = ChangeLinks(con, as_of, listed, [*repo_urls, *named_ids(gx_results)])
    hist = results.history(con, as_of)
    today = evidence_date(as_of)
    has_rows = any(counts.values())
    totals: dict[str, int] = {}
    for c in counts.values():
        for k, n in c.items():
            totals[k] = totals.get(k, 0) + n
    kinds = results.change_kind_counts(con)
    new_n = sum(c.get("newly_failing", 0) for c in dod["counts"].values())
    resolved_n = sum(c.get("resolved", 0) for c in dod["counts"].values())
    prev = dod["previous"]

    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>ccwatch CC8.1 report {e(today.isoformat())}</title>",
        f"<style>{_CSS}</style></head><body>",
        "<h1>SOC 2 CC8.1 change management report</h1>",
        f'<p class="muted">As of {e(iso(naive_utc(as_of)))} · lookback {settings.lookback_days} days · '
        f"ccwatch {e(__version__)} · configuration SHA-256 <code>{e(settings.sha256 or 'unknown')}</code></p>",
        f'<p class="muted" id="evidence-trust">{_trust_line(settings, signing_key)}</p>',
        "<div>",
        f'<span class="kpi"><b>{sum(kinds.values())}</b>changes in window '
        f"({kinds.get('pr', 0)} pull requests, {kinds.get('direct_push', 0)} direct pushes)</span>",
        f'<span class="kpi"><b>{len(settings.github.repositories)}</b>repositories</span>',
        f'<span class="kpi"><b>{pct(pass_rate(totals))}</b>overall pass rate {history.rate_change(hist)}</span>',
        f'<span class="kpi"><b>{totals.get("fail", 0)}</b>failing results</span>',
        f'<span class="kpi"><b>{totals.get("pending", 0)}</b>pending</span>',
    ]
    if prev is not None:
        out += [f'<span class="kpi"><b>{new_n}</b>newly failing since {e(prev.isoformat())}</span>',
                f'<span class="kpi"><b>{resolved_n}</b>resolved since {e(prev.isoformat())}</span>']
    out += ["</div>"]
    recon = results.reconciliation(con, as_of)
    if results.reconciliation_status(recon) not in ("match", "not_run"):
        bad = [r for r in recon if not r["match"]]
        out.append(f'<p class="st fail" id="reconciliation-alert">Population reconciliation FAILED for '
                   f"{len(bad)} repositor{'y' if len(bad) == 1 else 'ies'} ({e(', '.join(r['repo'] for r in bad))}): "
                   'the population may be incomplete. See <a href="#reconciliation">Population reconciliation</a>.</p>')
    out.append(_nav(has_exceptions))
    if not has_rows:
        out.append('<p class="st fail">No control results exist for this date: nothing here is an all-clear.</p>')

    out += ['<h2 id="since">Since the previous run</h2>', history.render_day_over_day(dod, today, links)]
    out += _reconciliation_section(recon)

    out += ['<h2 id="rates">Pass rate per control</h2>',
            f'<p class="muted">Pass rate = pass / (pass + fail). Trend over the last {len(hist)} run date(s) '
            "up to this date; a date without a run is a gap in the line. Hover a point for its value.</p>",
            history.trend_chart(hist), *_rates_table(counts, control_ids, hist)]

    n_failing = sum(counts[cid].get("fail", 0) for cid in change_ids) - sum(excepted_n.values())
    out.append(f'<h2 id="failing">Failing changes ({n_failing})</h2>')
    if n_failing:
        out.append('<p class="muted">The count is of failing results (change and control): a change failing two '
                   "controls counts twice. Each open failure with the run date its current failing streak began "
                   "(dates without a run do not interrupt it) and the days it has been open; longest open first. "
                   "Evidence links open the change's files in this evidence folder.</p>")
        out.append(failing.render_failing(open_rows, counts, excepted_n, control_ids, today, links))
    elif has_rows:
        out.append("<p>No change fails a control on this date" + (" without an exception" if excepted_n else "")
                   + ".</p>")
    if has_exceptions:
        out.append(failing.render_excepted(excepted_rows, excepted_n, today, links))
        out.append(render_invalid_exceptions(results.exception_entries(con, as_of)))

    n_pending = sum(counts[cid].get("pending", 0) for cid in change_ids)
    out.append(f'<h2 id="pending">Pending ({n_pending})</h2>')
    items = pending.ordered(pending_rows, links, settings, as_of, top_n)
    if items:
        out.append('<p class="muted">Soonest first: the items due within the next 48 hours, then the other dated '
                   "ones, then those whose deadline the facts do not fix yet."
                   + (f" At most {top_n} per control (the soonest).</p>" if len(items) < len(pending_rows) else "</p>"))
        out.append(pending.render_pending(items, as_of, links))
    else:
        out.append("<p>Nothing is pending.</p>")

    out += ['<h2 id="by-repo">By repository</h2>',
            '<p class="muted">Failing results per control (column = control number; hover for its name), '
            "worst first.</p>",
            views.render_view(results_history.counts_by(con, as_of, "repo"), "repository", control_ids, links),
            '<h2 id="by-author">By author</h2>',
            '<p class="muted">Failing results per change control by the change\'s author (GitHub login), '
            "worst first.</p>",
            views.render_view(results_history.counts_by(con, as_of, "author", change_ids), "author", list(change_ids))]

    repo_rows.sort(key=lambda r: (r["change_id"], control_sort_key(r["control_id"])))
    out.append(f'<h2 id="repo-findings">Repository findings ({e(", ".join(REPO_CONTROLS))})</h2>')
    if repo_rows:
        out.append("<table><thead><tr><th>repository</th><th>control</th><th>status</th><th>detail</th>"
                   "<th>evidence</th></tr></thead><tbody>")
        for r in repo_rows:
            ev = links.evidence(r["change_id"])
            out.append(f"<tr><td>{link(repo_urls.get(r['change_id']), r['change_id'])}</td>"
                       f"<td>{e(r['control_id'])} {e(control_name(r['control_id']))}</td>"
                       f"<td>{status(r['status'])}</td><td class=\"detail\">{e(r['detail'])}</td>"
                       f"<td class=\"links\">{local_link(ev, 'folder') if ev else ''}</td></tr>")
        out.append("</tbody></table>")
    else:
        out.append("<p>No repository-level results for this date.</p>")

    out += ['<h2 id="gx">Great Expectations validation</h2>', render_gx(gx_results or [], links.evidence)]
    out.append(f'<p class="muted">Generated by ccwatch {e(__version__)} for {e(today.isoformat())}. '
               "The evidence folder holds control_results.csv, population.csv and the raw API payloads "
               "(changes/&lt;change&gt;/).</p>")
    out.append("</body></html>\n")
    return "\n".join(out)
