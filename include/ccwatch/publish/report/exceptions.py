"""The report's section on the exceptions register (CONTROLS.md "Exceptions (r2)"): the entries that
do not apply on the date, with the rule each breaks.  Excepted failures themselves are listed by the
failing-changes section; this one says which accepted risks were *not* accepted on this date, so
nobody reads a failure as covered when its exception expired or was never validly approved.

``render_invalid_exceptions(rows)`` takes ``results.exception_entries(con, as_of)`` and returns an
HTML fragment (a heading, a sentence, a table), every value escaped, or "" when the run had no
register entries.
"""

from __future__ import annotations

from html import escape
from typing import Any

from ccwatch.common.times import iso

HEAD = ("id", "names", "control", "approved by", "approved at", "expires", "reason", "detail")


def _e(value: Any) -> str:
    return escape("" if value is None else iso(value), quote=True)


def render_invalid_exceptions(rows: list[dict]) -> str:
    if not rows:
        return ""
    bad = [r for r in rows if r.get("status") != "valid"]
    out = [f'<h2 id="exceptions-invalid">Exception entries that do not apply ({len(bad)})</h2>']
    if not bad:
        applied = sum(1 for r in rows if r.get("applied"))
        n = len(rows)
        out.append(f"<p>All {n} entr{'ies' if n != 1 else 'y'} of the exceptions register appl"
                   f"{'y' if n != 1 else 'ies'} on this date ({applied} cover{'s' if applied == 1 else ''} a "
                   "failing row).</p>")
        return "\n".join(out)
    out.append("<p>These entries of the exceptions register do not apply on this date (an expired, "
               "not yet approved, self-approved or otherwise invalid acceptance), so the rows they name are "
               "reported as they are: a failure they name is <b>still a failure</b> and is not excepted. "
               "exceptions.csv in the evidence folder lists every entry with its verdict.</p>")
    body = []
    for r in bad:
        body.append(
            f'<tr data-exception="{_e(r.get("id"))}"><td><code>{_e(r.get("id"))}</code></td>'
            f"<td>{_e(r.get('change_id') or r.get('repo'))}</td><td>{_e(r.get('control_id'))}</td>"
            f"<td>{_e(r.get('approved_by'))}</td><td>{_e(r.get('approved_at'))}</td><td>{_e(r.get('expires'))}</td>"
            f'<td><span class="st fail">{_e(r.get("reason"))}</span></td>'
            f'<td class="detail">{_e(r.get("detail"))}</td></tr>')
    head = "".join(f"<th>{escape(h)}</th>" for h in HEAD)
    out.append(f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>")
    return "\n".join(out)
