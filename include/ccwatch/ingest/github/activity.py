"""(r2) The production branch's activity log: when each commit reached the branch, and who pushed it.

``GET /repos/{o}/{r}/activity?ref=<branch>&per_page=100`` (API-NOTES.md, "Repository activity
log"; response schema: the ``Activity`` items of GitHub's published OpenAPI description:
``id``, ``node_id``, ``before``, ``after``, ``ref`` = ``refs/heads/<branch>``, ``timestamp``,
``activity_type`` in push, force_push, branch_deletion, branch_creation, pr_merge,
merge_queue_merge, and ``actor``, a nullable simple user).  Newest first, paged with opaque
``before``/``after`` cursors in the ``Link`` header; the connector follows ``rel="next"`` and stops
once a page is older than its lower bound: the window start minus the ingest overlap on a full
plan, the plan's ``since`` on an incremental one whose stored log is whole (else the full bound
again).  Entries older than the bound are dropped (a deterministic list whatever the page size);
the load merges the list with the stored one by ``id`` (``warehouse/raw_lists.py`` ACCUMULATING).

Page 1 is a conditional request (a 304 keeps the stored list).  403 and 404 are kept as evidence
with their status code, like branch protection: the log is then *unreadable* and CC8.1-14 fails
saying so; direct pushes fall back to the earliest ccwatch run that saw them.  Anything else
(401, 422, 5xx and rate limits after the retries) fails the fetch as every other endpoint does.
The token needs the repository permission "Contents: read" (GitHub's list of the permissions each
endpoint needs for fine-grained tokens).

The log also bounds the single commits the fetch adds to the listing (``history.complete_line``):
the walk down the first-parent line stops being completed at the branch's state at the window
start (:func:`boundary`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ccwatch.common.times import parse_ts
from ccwatch.ingest.http.paging import is_before, sorted_past

NULL_SHA = "0" * 40
KIND = "activity"  # raw kind; natural key "owner/repo:branch"
EVIDENCE_STATUSES = (403, 404)


def activity_params(branch: str) -> dict[str, Any]:
    return {"ref": branch}


def fetch_activity(r: Any, repo: str, branch: str, lo: datetime) -> tuple[Any, list[dict[str, Any]] | None]:
    """(the raw record, the entries of the branch since ``lo`` or None when the answer was a 304 or
    the log is unreadable)."""
    status, items, url, etag = r.get_listing("/activity", activity_params(branch), data_statuses=EVIDENCE_STATUSES,
                                             stop=lambda page: sorted_past(page, "timestamp", lo), conditional=True)
    key = f"{repo}:{branch}"
    if status == 304:
        return r.record(KIND, key, url, None, 304, etag), None
    if status != 200:
        return r.record(KIND, key, url, items, status), None
    entries = [e for e in items if not is_before(e.get("timestamp"), lo)]
    return r.record(KIND, key, url, entries, etag=etag), entries


def _sha(value: Any) -> str | None:
    return value if isinstance(value, str) and value and value != NULL_SHA else None


def boundary(entries: list[dict[str, Any]], window_start: datetime) -> set[str]:
    """Shas the branch held at or before the window start, as the log shows them: the ``before``
    and ``after`` of every entry older than the window start, and the ``before`` of the earliest
    entry fetched (the state before the first entry the log gave)."""
    out: set[str] = set()
    dated = [(parse_ts(e.get("timestamp")), int(e.get("id") or 0), e) for e in entries if isinstance(e, dict)]
    dated = [d for d in dated if d[0] is not None]
    for at, _, e in dated:
        if at < window_start:
            out.update(s for s in (_sha(e.get("before")), _sha(e.get("after"))) if s)
    if dated:
        earliest = min(dated, key=lambda d: (d[0], d[1]))[2]
        if (b := _sha(earliest.get("before"))) is not None:
            out.add(b)
    return out


def state_at(entries: list[dict[str, Any]], window_start: datetime) -> str | None:
    """The branch's tip at the window start as the log shows it: the ``after`` of the latest entry
    older than the window start, else the ``before`` of the earliest entry (None: unknown)."""
    dated = sorted(((parse_ts(e.get("timestamp")), int(e.get("id") or 0), e) for e in entries
                    if isinstance(e, dict) and parse_ts(e.get("timestamp")) is not None), key=lambda d: (d[0], d[1]))
    older = [d for d in dated if d[0] < window_start]
    if older:
        return _sha(older[-1][2].get("after"))
    return _sha(dated[0][2].get("before")) if dated else None
