"""Paged listings stop early only on a page that really is newest-first and past the window."""

from __future__ import annotations

from datetime import datetime

import pytest
from ccwatch.ingest.http.paging import sorted_past


@pytest.mark.parametrize(
    ("stamps", "stops"),
    [
        (["2026-11-20T00:00:00Z", "2026-08-01T00:00:00Z"], True),   # newest first and past the window
        (["2026-11-20T00:00:00Z", "2026-10-01T00:00:00Z"], False),  # still inside the window
        (["2026-08-01T00:00:00Z", "2026-11-20T00:00:00Z"], False),  # server ignored the sort: keep paging
        (["2026-11-20T00:00:00Z", None], False),                     # a missing time never ends paging
        ([], False),
    ],
)
def test_paging_stops_early_only_on_a_sorted_page_past_the_window(stamps, stops):
    page = [{"updated_at": s} for s in stamps]
    assert sorted_past(page, "updated_at", datetime(2026, 8, 27)) is stops
