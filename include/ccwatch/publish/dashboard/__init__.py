"""The Compliance page (the Airflow UI's Browse -> Compliance, docs/DEPLOYMENT.md): one evidence
date's per-control counts, failing and pending changes, repository findings and evidence files,
as data, as JSON and as HTML.

Read-only by construction: the warehouse is opened ``read_only`` (:func:`open_warehouse`), only for
the queries (the page is rendered after the connection is closed, so the nightly writer is held up
for milliseconds at most); files are only ever read, and only the dated folder's top-level files
in :data:`FOLDER_FILES` and the archives named like ``ccwatch-evidence-<date>[.<n>].tar.gz``
directly under ``<home>/evidence`` (:func:`evidence_file`, :func:`archive_file`). Nothing here
fetches, evaluates or writes.

The counts are :func:`ccwatch.publish.results.status_counts`, the same query as the daily report
and ``python -m ccwatch summary``. Every value that comes from the data (titles, logins, details,
URLs) is HTML-escaped and links are emitted only for plain http(s) URLs: the page runs inside the
Airflow UI's origin, where a script would reach the user's session.
"""


from ccwatch.publish.dashboard.data import (  # noqa: F401  (the page's public interface)
    RETRY_AFTER,
    TOP_N,
    DashboardData,
    UnknownDate,
    WarehouseUnavailable,
    open_warehouse,
    parse_day,
    read_dashboard,
)
from ccwatch.publish.dashboard.files import (  # noqa: F401
    FOLDER_FILES,
    ArchiveChecks,
    ArchiveFile,
    EvidenceFiles,
    Verification,
    archive_day,
    archive_file,
    evidence_file,
    evidence_files,
)
from ccwatch.publish.dashboard.page import (  # noqa: F401
    DASHBOARD_CSS,
    TITLE_CHARS,
    dashboard_json,
    render_dashboard,
    render_verification,
    style_hash,
)
