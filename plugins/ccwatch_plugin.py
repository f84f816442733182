"""ccwatch's Airflow plugin: the Compliance page, under Browse -> Compliance in the Airflow UI.

- ``fastapi_apps``: the read-only app of ``ccwatch_airflow.compliance_page``, mounted by the
  api-server at ``/compliance``; it authenticates and authorizes every request through the
  configured auth manager (see that module).
- ``external_views``: the nav entry. With ``url_route`` the UI shows ``href`` inside its own page
  (an iframe at ``/plugin/compliance``, same origin, so the login cookie goes along). ``href`` is
  relative to the UI's base URL (so a sub-path deployment works) and keeps its trailing slash
  (``compliance`` without it is not the app but the UI's catch-all).

This is the plugins folder's only plugin module: ``plugins/.airflowignore`` keeps Airflow's
plugin loader out of ``ccwatch_airflow/`` (imported as a package from PYTHONPATH instead of file
by file as top-level modules). Airflow imports plugin modules in every component (scheduler,
dag-processor, workers, task runner); the FastAPI app and the api-server internals it needs are
imported only when ``fastapi_apps`` is read, i.e. by the api-server and ``airflow plugins``.
"""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

URL_PREFIX = "/compliance"


class CcwatchPlugin(AirflowPlugin):
    name = "ccwatch"
    external_views = [
        {
            "name": "Compliance",
            "href": URL_PREFIX.lstrip("/") + "/",
            "url_route": "compliance",
            "destination": "nav",
            "category": "browse",
        }
    ]

    @property
    def fastapi_apps(self) -> list[dict]:  # type: ignore[override] - read by the api-server only
        from ccwatch_airflow.compliance_page import app

        return [{"app": app, "url_prefix": URL_PREFIX, "name": "ccwatch compliance page"}]
