"""HTML pieces every section of the report shares: escaping, links, status badges, percentages,
dates and the "showing the first N" note.  Every value that comes from the data goes through
:func:`e`; a URL becomes a link only when ``results.safe_url`` accepts it (plain http(s))."""

from __future__ import annotations

from datetime import date
from html import escape
from typing import Any

from ccwatch.publish.results import safe_url


def e(value: Any) -> str:
    """HTML-escaped text (attribute-safe); None is empty."""
    return escape("" if value is None else str(value), quote=True)


def link(url: Any, text: Any) -> str:
    """``<a>`` to a plain http(s) URL, else the escaped text alone."""
    u = safe_url(url)
    return f'<a href="{e(u)}">{e(text)}</a>' if u else e(text)


def local_link(href: str | None, text: Any, title: str = "") -> str:
    """``<a>`` to a file of the evidence folder (a relative path the report itself made)."""
    if not href:
        return e(text)
    t = f' title="{e(title)}"' if title else ""
    return f'<a class="ev" href="{e(href)}"{t}>{e(text)}</a>'


def status(word: Any) -> str:
    return f'<span class="st {e(word)}">{e(word)}</span>'


def pct(rate: float | None) -> str:
    return "—" if rate is None else f"{rate * 100:.1f}%"


def day(d: date | None) -> str:
    return "" if d is None else d.isoformat()


def more(shown: int, total: int, what: str, order: str = "by change id") -> str:
    """The note under a list cut at ``shown`` of ``total`` rows ("" when nothing was cut)."""
    if total <= shown:
        return ""
    return (f'<p class="muted">Showing the first {shown} of {total} {e(what)} ({e(order)}); '
            "control_results.csv in the evidence folder lists every row.</p>")


def table(headers: list[str], rows: list[str], cls: str = "", widths: list[int] | None = None) -> str:
    """A table of pre-rendered ``<tr>`` rows under escaped headers; ``widths``: column widths in
    percent (a fixed layout, so the tables of one list line up)."""
    c = f' class="{e(cls)}{" fixed" if widths else ""}"' if cls or widths else ""
    cols = "<colgroup>" + "".join(f'<col style="width:{int(w)}%">' for w in widths) + "</colgroup>" if widths else ""
    head = "".join(f"<th>{e(h)}</th>" for h in headers)
    return f"<table{c}>{cols}<thead><tr>{head}</tr></thead><tbody>" + "".join(rows) + "</tbody></table>"
