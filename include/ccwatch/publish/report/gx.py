"""Great Expectations validation results (GX 1.x ``to_json_dict()`` shape) as the report's section.

Per suite (one per control: its ``ccwatch`` block names the control) each expectation is shown
as its description and its rule in words (``gx_words``), how many rows it checked, how many did
not meet it, and which changes those were with their offending values.  The rule's technical
form (type and arguments) stays available in a ``<details>`` element (no script needed).
Volatile metadata (run times, ids) is not rendered, so the report stays deterministic.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from ccwatch.publish.report.gx_words import expectation_sentence, unexpected_by_change
from ccwatch.publish.report.markup import e, local_link

_HIDDEN_KWARGS = {"batch_id", "result_format", "catch_exceptions", "include_config", "meta", "rendered_content"}
#: at most this many unexpected rows are named per expectation (GX samples up to 20)
MAX_SAMPLE = 10


def _short(value: Any, limit: int = 300) -> str:
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def rule_text(config: dict) -> str:
    """The technical form: ``expect_column_values_to_be_in_set`` + {column: status, value_set: [..]}
    -> 'column values to be in set: column=status, value_set=[...]' (plain text, not escaped)."""
    kind = str(config.get("type") or config.get("expectation_type") or "unknown expectation")
    words = kind[len("expect_"):] if kind.startswith("expect_") else kind
    words = words.replace("_", " ")
    kwargs = config.get("kwargs") or {}
    args = ", ".join(f"{k}={_short(v)}" for k, v in sorted(kwargs.items()) if k not in _HIDDEN_KWARGS)
    text = f"{words}: {args}" if args else words
    desc = config.get("description")
    return f"{desc} ({text})" if desc else text


def unexpected_count(result: dict, config: dict) -> int | None:
    """The number of offending rows: ``unexpected_count``, or for unexpected-rows queries the
    ``observed_value`` (GX reports the row count there)."""
    res = result.get("result") or {}
    if isinstance(res.get("unexpected_count"), int):
        return res["unexpected_count"]
    if "unexpected_rows_query" in (config.get("kwargs") or {}) and isinstance(res.get("observed_value"), int):
        return res["observed_value"]
    return None


def named_ids(gx_results: list[dict]) -> list[str]:
    """The change (or repository) ids the section names as not meeting a rule."""
    out = []
    for suite in gx_results or []:
        for res in suite.get("results") or []:
            pairs = unexpected_by_change(res, res.get("expectation_config") or {})
            out += [key for key, _v in pairs[:MAX_SAMPLE] if key]
    return out


def _ok(flag: Any) -> str:
    if flag is True:
        return '<span class="st pass">met</span>'
    if flag is False:
        return '<span class="st fail">not met</span>'
    return '<span class="st pending">unknown</span>'


def _offenders(res: dict, config: dict, n: int | None, evidence: Callable[[str], str | None]) -> str:
    pairs = unexpected_by_change(res, config)
    if not pairs:
        return ""
    items = []
    for key, values in pairs[:MAX_SAMPLE]:
        who = local_link(evidence(key), key) if key else ""
        items.append(f"<li>{who}{': ' if key and values else ''}{e(values)}</li>" if key
                     else f"<li>{e(values)}</li>")
    rest = (n or 0) - min(len(pairs), MAX_SAMPLE) if all(k for k, _ in pairs) else 0
    tail = f'<li class="muted">and {rest} more (control_results.csv lists every row)</li>' if rest > 0 else ""
    return '<ul class="offenders">' + "".join(items) + tail + "</ul>"


def render_gx(gx_results: list[dict], evidence: Callable[[str], str | None] = lambda _id: None) -> str:
    """The section; ``evidence(change_id)`` gives the relative link of a change's evidence folder."""
    if not gx_results:
        return "<p>No Great Expectations validation results were produced for this run.</p>"
    suites = sorted(gx_results, key=lambda r: str(r.get("suite_name") or ""))
    met = sum(1 for r in suites if r.get("success") is True)
    out = [f"<p>{met} of {len(suites)} rule sets were met by every change they apply to. Each control is "
           "checked by a set of rules (Great Expectations expectations) over the facts of every change; a rule "
           "not met names the changes that fail the control (listed above with their detail), or shows a "
           "data-quality problem of the run.</p>"]
    for suite in suites:
        stats = suite.get("statistics") or {}
        meta = suite.get("ccwatch") if isinstance(suite.get("ccwatch"), dict) else {}
        name = suite.get("suite_name") or "(unnamed suite)"
        title = f"{name} {meta['name']}" if meta.get("name") and meta.get("name") not in str(name) else str(name)
        out.append(f'<h3 id="gx-{e(name)}">{e(title)} {_ok(suite.get("success"))}</h3>')
        out.append(f'<p class="muted">{e(stats.get("successful_expectations", "?"))} of '
                   f'{e(stats.get("evaluated_expectations", "?"))} rules met</p>')
        out.append('<table class="gx fixed"><colgroup><col style="width:44%"><col style="width:9%">'
                   '<col style="width:8%"><col style="width:7%"><col style="width:32%"></colgroup><thead><tr>'
                   "<th>rule</th><th>result</th><th>checked</th><th>not met</th>"
                   "<th>changes that did not meet it</th></tr></thead><tbody>")
        for res in suite.get("results") or []:
            config = res.get("expectation_config") or {}
            n = unexpected_count(res, config)
            checked = (res.get("result") or {}).get("element_count")
            exc = res.get("exception_info") or {}
            note = ""
            if exc.get("raised_exception"):
                note = (f'<div class="detail">the rule could not be evaluated: '
                        f'{e(_short(exc.get("exception_message") or "", 500))}</div>')
            desc = config.get("description")
            head = f"<b>{e(desc)}</b><br>" if desc else ""
            out.append(
                f"<tr><td>{head}{e(expectation_sentence(config, meta.get('scope')))}{note}"
                f'<details><summary>technical form</summary><code>{e(rule_text(config))}</code></details></td>'
                f"<td>{_ok(res.get('success'))}</td>"
                f"<td class=\"num\">{'' if not isinstance(checked, int) else checked}</td>"
                f"<td class=\"num\">{'' if n is None else n}</td>"
                f"<td class=\"detail\">{_offenders(res, config, n, evidence)}</td></tr>")
        out.append("</tbody></table>")
    return "\n".join(out)
