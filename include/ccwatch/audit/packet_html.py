"""HTML of the auditor's evidence packet: one self-contained page per sampled change, and
the packet's index page.

Inline CSS only; no script, no image, no stylesheet or font, and no link to anything but the
packet's own files (relative paths).  URLs of the pull request and the ticket are shown as
text, never as links.  Every value that comes from the data is HTML-escaped.
"""

from __future__ import annotations

from html import escape
from typing import Any

from ccwatch import __version__
from ccwatch.audit.questions import ANSWER_WORDS, QUESTIONS, answer, category_procedure
from ccwatch.common.times import iso
from ccwatch.controls.catalogue import REPO_CONTROLS, control_name

CSS = """
body{font:14px/1.45 -apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:24px;color:#1f2328;max-width:1100px}
h1{font-size:21px;margin:0 0 4px;word-break:break-word}h2{font-size:17px;margin:24px 0 8px;border-bottom:1px solid #d0d7de}
.muted{color:#59636e}table{border-collapse:collapse;width:100%;margin:6px 0}
th,td{border:1px solid #d0d7de;padding:4px 8px;text-align:left;vertical-align:top;overflow-wrap:anywhere}
th{background:#f6f8fa}.facts th{width:22%}.q{margin:10px 0 14px}.q p{margin:2px 0}.q ul{margin:4px 0 0 18px;padding:0}
.st{display:inline-block;padding:0 6px;border-radius:8px;font-size:12px;font-weight:600;white-space:nowrap}
td.s,th.s{overflow-wrap:normal;white-space:nowrap}
.pass,.yes{background:#dafbe1;color:#116329}.fail,.no{background:#ffebe9;color:#a40e26}
.pending{background:#fff8c5;color:#7d4e00}.not_applicable,.none{background:#eaeef2;color:#59636e}
code{font-size:12px}
"""


def e(value: Any) -> str:
    return escape("" if value is None else (iso(value) if hasattr(value, "isoformat") else str(value)), quote=True)


def badge(word: str | None, text: str | None = None) -> str:
    cls = word if word in ("pass", "fail", "pending", "not_applicable", "yes", "no") else "none"
    return f'<span class="st {cls}">{e(text or word or "no result")}</span>'


def html_document(title: str, body: str, footer: str = "auditor evidence packet") -> str:
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width,initial-scale=1">'
            f'<title>{e(title)}</title><style>{CSS}</style></head><body>\n{body}\n'
            f'<p class="muted">ccwatch {e(__version__)}: {e(footer)}</p></body></html>\n')


def _row(label: str, value: Any) -> str:
    return f"<tr><th>{e(label)}</th><td>{e(value) if value not in (None, '') else '—'}</td></tr>"


def _facts_lines(key: str, c: dict) -> list[str]:
    """Plain-word facts from the population row that frame a question's answer."""
    if key == "ticket":
        return [f"Ticket: {c.get('ticket_key') or 'none named in the title'}"
                + (f" ({c['ticket_url']})" if c.get("ticket_url") else "")]
    if key == "deployment":
        if c.get("deployed_at"):
            return [f"Deployed to production at {iso(c['deployed_at'])} by {c.get('deployer') or 'unknown'}."]
        return ["No successful production deployment as of the results used."]
    if key == "segregation":
        return [f"Author {c.get('author') or 'unknown'}; merged by {c.get('merged_by') or 'unknown'}; "
                f"deployed by {c.get('deployer') or 'not deployed'}."]
    if key == "category":
        return [f"Category: {c.get('category') or 'unknown'}."]
    return []


def change_page(c: dict, n: int, total: int, meta: dict, repo_results: dict, files: list[str],
                not_found: list[str], windows=None) -> str:
    """The page answering the auditor's questions about one sampled change ``c``."""
    results = c["results"]
    head = (f"<h1>{e(c['change_id'])}</h1><p>{e(c.get('title'))}</p>"
            f'<p class="muted">Sampled change {n} of {total} &middot; period {e(meta["from"])} to {e(meta["to"])} '
            f'&middot; seed {e(meta["seed"])} &middot; results as of {e(iso(c["as_of"]))} '
            f'&middot; <a href="../../index.html">packet index</a></p>')
    pending = [cid for cid, (s, _) in results.items() if s == "pending"]
    if pending:
        head += (f'<p class="st pending">Still pending in the run used: {e(", ".join(pending))}: a window was '
                 f"open at {e(iso(c['as_of']))}, so this change's verdict is not final.</p>")
    facts = "".join([
        _row("Repository", c.get("repo")), _row("Kind", "pull request" if c.get("change_kind") == "pr" else
                                               "direct push" if c.get("change_kind") == "direct_push" else
                                               c.get("change_kind")),
        _row("Pull request", c.get("pr_url") or (f"#{c['number']}" if c.get("number") else None)),
        _row("Commit", c.get("sha")), _row("Author", c.get("author")),
        _row("Merged", f"{iso(c.get('merged_at'))} by {c.get('merged_by') or 'unknown'}"),
        _row("Ticket", c.get("ticket_key")), _row("Ticket URL", c.get("ticket_url")),
        _row("Production deployment", f"{iso(c['deployed_at'])} by {c.get('deployer') or 'unknown'}"
             if c.get("deployed_at") else None),
        _row("Category", c.get("category")),
    ])
    qs = []
    for q in QUESTIONS:
        a = answer(q, results)
        lines = "".join(f"<p>{e(line)}</p>" for line in _facts_lines(q.key, c))
        if q.key == "category":
            lines += f"<p>{e(category_procedure(c.get('category'), c.get('change_kind'), windows))}</p>"
        items = []
        for cid in q.controls:
            status, detail = results.get(cid) or (None, "no result recorded for this control")
            items.append(f"<li>{badge(status)} <b>{e(cid)} {e(control_name(cid))}</b>: {e(detail)}</li>")
        qs.append(f'<div class="q"><p><b>{e(q.text)}</b></p><p>{badge(a, ANSWER_WORDS[a])}</p>'
                  f'{lines}<ul>{"".join(items)}</ul></div>')
    table = "".join(f"<tr><td>{e(cid)}</td><td>{e(control_name(cid))}</td><td>{badge(s)}</td><td>{e(d)}</td></tr>"
                    for cid, (s, d) in results.items())
    repo_rows = "".join(
        f"<tr><td>{e(cid)}</td><td>{e(control_name(cid))}</td><td>{badge(s)}</td><td>{e(d)}</td></tr>"
        for cid, (s, d) in repo_results.items() if cid in REPO_CONTROLS)
    file_items = "".join(f'<li><a href="{e(f)}">{e(f)}</a></li>' for f in files)
    missing = "".join(f"<li>{e(m)}</li>" for m in not_found)
    body = (
        f"{head}<h2>The change</h2><table class=\"facts\">{facts}</table>"
        f"<h2>The auditor's questions</h2>{''.join(qs)}"
        f"<h2>Every control</h2><table><tr><th>Control</th><th>Name</th><th>Status</th><th>Detail</th></tr>"
        f"{table or '<tr><td colspan=4>no control results recorded</td></tr>'}</table>"
        f"<h2>Repository controls (context, same run)</h2><table><tr><th>Control</th><th>Name</th>"
        f"<th>Status</th><th>Detail</th></tr>{repo_rows or '<tr><td colspan=4>none recorded</td></tr>'}</table>"
        f"<h2>Raw evidence attached</h2><p class=\"muted\">Each file is the API payload as fetched, with its "
        f"source URL and fetch time; SHA-256 of every file in the packet's manifest.json.</p>"
        f"<ul>{file_items}</ul>"
        + (f"<p>Not found:</p><ul>{missing}</ul>" if missing else "")
    )
    return html_document(f"{c['change_id']}: auditor evidence", body)


def index_page(meta: dict, rows: list[dict], controls: tuple[str, ...]) -> str:
    """The packet's index: how the sample was drawn and one line per sampled change."""
    head = "".join(f'<th class="s">{e(cid.replace("CC8.1-", ""))}</th>' for cid in controls)
    lines = []
    for r in rows:
        cells = "".join(f'<td class="s">{badge(r.get(cid) or None, "n/a" if r.get(cid) == "not_applicable" else None)}'
                        "</td>" for cid in controls)
        lines.append(f'<tr><td>{e(r["n"])}</td><td><a href="{e(r["page"])}">{e(r["change_id"])}</a></td>'
                     f"<td>{e(r['title'])}</td><td class=\"s\">{e(r['merged_at'])}</td>{cells}</tr>")
    pop = meta["population"]
    body = (f"<h1>Auditor sample {e(meta['period']['from'])} to {e(meta['period']['to'])}</h1>"
            f"<table class=\"facts\">{_row('Seed', meta['seed'])}{_row('Sample', meta['note'])}"
            f"{_row('Population size', pop['size'])}{_row('Population SHA-256', pop['sha256'])}"
            f"{_row('Results through', meta['results_through'])}"
            f"{_row('Still pending (verdict not final)', ', '.join(meta['pending']['changes']) or 'none')}"
            f"{_row('Runs used (as of)', ', '.join(pop['as_of_dates']))}{_row('Method', meta['method'])}</table>"
            f"<h2>Sampled changes</h2><p class=\"muted\">Columns 01 to 13: the CC8.1 controls of each change "
            f"(status in the run used); the repository controls 11 and 12 are on each change's page.</p>"
            f"<table><tr><th>#</th><th>Change</th><th>Title</th><th>Merged</th>{head}</tr>"
            f"{''.join(lines)}</table>")
    return html_document(f"ccwatch auditor sample {meta['period']['from']} to {meta['period']['to']}", body)
