"""Great Expectations validation results (GX 1.x ``to_json_dict()`` shape) as HTML for the report.

Each expectation is stated as a rule (its description when it has one, else its type in
words and its kwargs), with success and the unexpected count.  Volatile metadata (run
times, ids) is not rendered, so the report stays deterministic for the same results.
"""

from __future__ import annotations

import json
from html import escape
from typing import Any

_HIDDEN_KWARGS = {"batch_id", "result_format", "catch_exceptions", "include_config", "meta", "rendered_content"}
_MAX_SAMPLE = 5


def _e(value: Any) -> str:
    return escape("" if value is None else str(value), quote=True)


def _short(value: Any, limit: int = 300) -> str:
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def rule_text(config: dict) -> str:
    """``expect_column_values_to_be_in_set`` + {column: status, value_set: [..]} ->
    'column values to be in set: column=status, value_set=[...]' (plain text, not escaped)."""
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


def _samples(result: dict) -> list:
    res = result.get("result") or {}
    if res.get("partial_unexpected_list"):
        return list(res["partial_unexpected_list"])[:_MAX_SAMPLE]
    rows = (res.get("details") or {}).get("unexpected_rows")
    if isinstance(rows, list):
        return rows[:_MAX_SAMPLE]
    return []


def _ok(flag: Any) -> str:
    if flag is True:
        return '<span class="st pass">success</span>'
    if flag is False:
        return '<span class="st fail">failed</span>'
    return '<span class="st pending">unknown</span>'


def render_gx(gx_results: list[dict]) -> str:
    if not gx_results:
        return "<p>No Great Expectations validation results were produced for this run.</p>"
    suites = sorted(gx_results, key=lambda r: str(r.get("suite_name") or ""))
    out = []
    total = sum(1 for r in suites if r.get("success") is True)
    out.append(f"<p>{total} of {len(suites)} suite(s) succeeded. A failed expectation is a control "
               "finding (its rows are the failing changes above), or a data-quality problem of the run.</p>")
    for suite in suites:
        stats = suite.get("statistics") or {}
        name = suite.get("suite_name") or "(unnamed suite)"
        out.append(f'<h3 id="gx-{_e(name)}">{_e(name)} {_ok(suite.get("success"))}</h3>')
        out.append(
            f'<p class="muted">{_e(stats.get("successful_expectations", "?"))} of '
            f'{_e(stats.get("evaluated_expectations", "?"))} expectations met</p>'
        )
        out.append('<table><thead><tr><th>rule</th><th>result</th><th>unexpected</th>'
                   "<th>sample of unexpected values</th></tr></thead><tbody>")
        for res in suite.get("results") or []:
            config = res.get("expectation_config") or {}
            n = unexpected_count(res, config)
            exc = (res.get("exception_info") or {})
            note = ""
            if exc.get("raised_exception"):
                note = f'<div class="detail">exception: {_e(_short(exc.get("exception_message") or "", 500))}</div>'
            sample = ", ".join(_e(_short(v, 200)) for v in _samples(res))
            out.append(
                f"<tr><td><code>{_e(rule_text(config))}</code>{note}</td><td>{_ok(res.get('success'))}</td>"
                f"<td class=\"num\">{'' if n is None else n}</td><td class=\"detail\">{sample}</td></tr>"
            )
        out.append("</tbody></table>")
    return "\n".join(out)
