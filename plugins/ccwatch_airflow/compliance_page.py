"""The Compliance page in the Airflow UI: the FastAPI app the api-server mounts at ``/compliance``
(registered by ``plugins/ccwatch_plugin.py``; the data and the HTML are the core's
``ccwatch.publish.dashboard``).

Airflow mounts a plugin's FastAPI app as it is (``airflow/api_fastapi/app.py`` ``init_plugins``):
none of the core API's authentication applies to it. So every route here, present and future,
is guarded by the app-level dependency :func:`require_reader`:

- **authentication** is Airflow's own ``get_user`` (``airflow/api_fastapi/core_api/security.py``,
  the function behind the core API's ``GetUserDep``): an ``Authorization: Bearer`` header if
  present, else the ``_token`` cookie the UI's login left (or the user ``JWTRefreshMiddleware``
  already validated from it); the token is checked by the configured auth manager's
  ``get_user_from_token`` (signature, algorithm, expiry, audience, revocation). ccwatch never
  decodes a token itself. Airflow answers 403 for a forged token and 401 for a missing or expired
  one; here both are 401, and a browser navigation without a Bearer header is sent to the auth
  manager's login page instead, which brings it back afterwards.
- **authorization**: the auth manager's ``is_authorized_dag(GET, ccwatch_nightly)``: whoever may
  read the DAG that produces the evidence may read its results; others get 403.

The app is read-only: GET routes only, no ``/docs``, ``/redoc`` or ``/openapi.json`` (those would
escape the app-level dependency), the warehouse opened ``read_only`` (503 with ``Retry-After``
while the nightly run writes it), and only the evidence folder's files served. The pages are framed
by the Airflow UI (same origin), so their Content-Security-Policy allows no script at all.

This module imports the api-server's internals: only the api-server (and ``airflow plugins``)
import it, through the plugin's lazy ``fastapi_apps``.
"""

from __future__ import annotations

from airflow.api_fastapi.app import get_auth_manager
from airflow.api_fastapi.auth.managers.models.resource_details import DagDetails
from airflow.api_fastapi.core_api.security import bearer_scheme, get_user
from ccwatch.publish import dashboard
from ccwatch.settings import ccwatch_home
from fastapi import Depends, FastAPI, HTTPException, Query, Request, status
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse

#: readers of this DAG (it writes control_results and the evidence) may read the page
EVIDENCE_DAG_ID = "ccwatch_nightly"

_MEDIA_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".csv": "text/csv; charset=utf-8",
    ".json": "application/json",
    ".md": "text/plain; charset=utf-8",
    ".txt": "text/plain; charset=utf-8",
}
#: nothing may load or run: one inline style block (by hash), forms to this origin, framed by this origin
PAGE_CSP = (f"default-src 'none'; style-src {dashboard.style_hash()}; form-action 'self'; base-uri 'none'; "
            "frame-ancestors 'self'")
#: an evidence file (the report's inline CSS and SVG) in a sandbox: an opaque origin without scripts
FILE_CSP = "sandbox; default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'self'"
DEFAULT_CSP = "default-src 'none'; frame-ancestors 'self'"

CHECKS = dashboard.ArchiveChecks()  # archive digests and verify results of this api-server process


class LoginRequired(Exception):
    def __init__(self, location: str):
        super().__init__(location)
        self.location = location


def _navigation(request: Request) -> bool:
    return "text/html" in request.headers.get("accept", "")


async def require_reader(request: Request, bearer=Depends(bearer_scheme)):  # noqa: B008 - FastAPI's idiom
    """The Airflow user of this request, when the configured auth manager accepts its token and
    lets it read ``ccwatch_nightly``; 401 / a login redirect / 403 otherwise (never data)."""
    try:
        user = await get_user(request=request, _oauth_token=None, bearer_credentials=bearer)
    except HTTPException as exc:
        if exc.status_code not in (status.HTTP_401_UNAUTHORIZED, status.HTTP_403_FORBIDDEN):
            raise
        if bearer is None and _navigation(request):
            here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            raise LoginRequired(get_auth_manager().get_url_login(next_url=here)) from None
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, f"Not authenticated ({exc.detail})",
                            headers={"WWW-Authenticate": "Bearer"}) from None
    if not get_auth_manager().is_authorized_dag(method="GET", details=DagDetails(id=EVIDENCE_DAG_ID), user=user):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "Forbidden")
    return user


app = FastAPI(
    title="ccwatch compliance page",
    docs_url=None,
    redoc_url=None,
    openapi_url=None,
    dependencies=[Depends(require_reader)],
)


@app.exception_handler(LoginRequired)
async def _to_login(request: Request, exc: LoginRequired):
    return RedirectResponse(exc.location, status_code=status.HTTP_303_SEE_OTHER)


@app.middleware("http")
async def _headers(request: Request, call_next):
    response = await call_next(request)
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers.setdefault("Content-Security-Policy", DEFAULT_CSP)
    return response


def _day(text: str | None):
    if text is None:
        return None
    try:
        return dashboard.parse_day(text)
    except ValueError:  # the input is not echoed
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "date must be an evidence date, YYYY-MM-DD") from None


def _read(day) -> dashboard.DashboardData:
    try:
        with dashboard.open_warehouse(ccwatch_home()) as con:
            return dashboard.read_dashboard(con, day)
    except dashboard.WarehouseUnavailable as exc:
        headers = {"Retry-After": str(exc.retry_after)} if exc.retry_after else None
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, str(exc), headers=headers) from None
    except dashboard.UnknownDate as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None


@app.get("/", response_class=HTMLResponse)
def page(date: str | None = Query(None), user=Depends(require_reader)) -> HTMLResponse:  # noqa: B008
    """The page for one evidence date (default: the newest)."""
    data = _read(_day(date))
    files = dashboard.evidence_files(ccwatch_home(), data.day)
    html = dashboard.render_dashboard(data, files, CHECKS, user=user.get_name())
    return HTMLResponse(html, headers={"Content-Security-Policy": PAGE_CSP})


@app.get("/summary.json")
def summary(date: str | None = Query(None)) -> JSONResponse:  # noqa: B008
    """The page's numbers for scripts: per-control counts, totals, evidence files, verifications run."""
    data = _read(_day(date))
    return JSONResponse(dashboard.dashboard_json(data, dashboard.evidence_files(ccwatch_home(), data.day), CHECKS))


@app.get("/evidence/{day}/{name}")
def folder_file(day: str, name: str) -> FileResponse:
    """One of the dated evidence folder's top-level files (dashboard.FOLDER_FILES)."""
    path = dashboard.evidence_file(ccwatch_home(), day, name)
    if path is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such evidence file")
    return FileResponse(path, media_type=_MEDIA_TYPES.get(path.suffix, "text/plain; charset=utf-8"),
                        headers={"Content-Security-Policy": FILE_CSP})


@app.get("/evidence/{name}")
def archive(name: str) -> FileResponse:
    """An evidence archive, as a download."""
    path = dashboard.archive_file(ccwatch_home(), name)
    if path is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such evidence archive")
    return FileResponse(path, media_type="application/gzip", filename=path.name)


@app.get("/verify/{name}", response_class=HTMLResponse)
def verify(name: str) -> HTMLResponse:
    """``python -m ccwatch verify`` of one archive, run on demand and remembered per digest."""
    path = dashboard.archive_file(ccwatch_home(), name)
    if path is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such evidence archive")
    result = CHECKS.verify(path)
    html = dashboard.render_verification(path.name, dashboard.archive_day(path.name), result)
    return HTMLResponse(html, headers={"Content-Security-Policy": PAGE_CSP})
