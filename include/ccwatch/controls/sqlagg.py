"""An ordered ``string_agg`` that scales to a million small groups.

DuckDB evaluates ``string_agg(v, sep ORDER BY k)`` with a sorted-aggregate state per group that
buffers and sorts every group apart, and that state cannot spill: over the ~1M changes of a large
window (one to a few rows per change) it was the largest cost of the review and checks facts and
ran out of a 2 GB memory limit.  ``sorted_string_agg`` collects ``(k, v)`` in an unordered
``list`` (an ordinary hash-aggregate state), sorts each small list and joins it: the same text.

Same as ``string_agg(v, sep ORDER BY k...) FILTER (WHERE f)``: NULL values are skipped, no (non-NULL)
value gives NULL, keys sort ascending with NULLs last and byte-wise, as DuckDB's ORDER BY does by
default.  Rows with equal keys: ``string_agg`` leaves their order to the scan, here the values
themselves break the tie (every caller orders by a unique key per group).
"""

from __future__ import annotations


def sorted_string_agg(value: str, sep: str, order: list[str], where: str | None = None) -> str:
    """SQL of ``string_agg(value, sep ORDER BY order) [FILTER (WHERE where)]`` (``sep`` a SQL literal)."""
    keys = ", ".join(f"k{i} := {o}" for i, o in enumerate(order))
    filt = f" FILTER (WHERE {where})" if where else ""
    return (f"list_aggr(list_transform(list_sort(list(struct_pack(o := struct_pack({keys}), v := {value})){filt}, "
            f"'ASC', 'NULLS LAST'), lambda x: x.v), 'string_agg', {sep})")
