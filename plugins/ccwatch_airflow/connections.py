"""Resolve Airflow connections into ccwatch endpoints.

Accepted shapes (all usable as ``AIRFLOW_CONN_<ID>`` environment variables):

- GitHub (``github`` type): host = API base URL (``https://api.github.com`` or a GitHub
  Enterprise ``https://ghe.example/api/v3``), password = token.
- Jira (``jira`` type): host = base URL, login = user, password = API token.
- Slack (``slack`` type): password = bot token; the API base URL comes from the extra
  ``base_url`` (as in Airflow's Slack provider), else from host, else ``https://slack.com/api/``.

A host without a scheme (the URI form ``github://:tok@ghe.example/api/v3`` gives host
``ghe.example``) gets ``https://`` - or ``http://`` for loopback hosts - plus port and
path (the URI's "schema" part).  An extra ``base_url`` always wins.
"""

from __future__ import annotations

from airflow.sdk import BaseHook

from ccwatch.endpoints import Endpoint

DEFAULT_BASE = {
    "github": "https://api.github.com",
    "jira": None,
    "slack": "https://slack.com/api/",
}

_LOOPBACK = {"localhost", "127.0.0.1", "::1", "[::1]"}


class ConnectionConfigError(ValueError):
    pass


def base_url_from(host: str | None, port: int | None, schema: str | None, extra: dict, default: str | None) -> str:
    if extra.get("base_url"):
        return str(extra["base_url"])
    if not host:
        if default is None:
            raise ConnectionConfigError("has no host (the service's base URL)")
        return default
    if "://" in host:
        url = host.rstrip("/")
        if port and url.count(":") < 2:
            scheme, rest = url.split("://", 1)
            hostpart, _, path = rest.partition("/")
            url = f"{scheme}://{hostpart}:{port}" + (f"/{path}" if path else "")
    else:
        scheme = extra.get("scheme") or ("http" if host in _LOOPBACK else "https")
        url = f"{scheme}://{host}" + (f":{port}" if port else "")
    if schema and "://" not in host:
        url += "/" + schema.strip("/")
    return url


def endpoint_for(conn_id: str, service: str) -> Endpoint:
    """The endpoint of ``service`` ('github' | 'jira' | 'slack') from Airflow connection ``conn_id``."""
    try:
        conn = BaseHook.get_connection(conn_id)
    except Exception as exc:  # AirflowNotFoundException and friends
        raise ConnectionConfigError(
            f"Airflow connection '{conn_id}' ({service}) is not defined: create it in the UI or set "
            f"AIRFLOW_CONN_{conn_id.upper()} (see .env.example)"
        ) from exc
    extra = conn.extra_dejson or {}
    try:
        base = base_url_from(conn.host, conn.port, conn.schema, extra, DEFAULT_BASE[service])
    except ConnectionConfigError as exc:
        raise ConnectionConfigError(f"Airflow connection '{conn_id}' ({service}) {exc}") from None
    if service == "slack" and not base.endswith("/"):
        base += "/"
    token = conn.password or extra.get("token")
    if not token:
        raise ConnectionConfigError(f"Airflow connection '{conn_id}' ({service}) has no password/token")
    verify = extra.get("verify", True) not in (False, "false", "False", "0")
    return Endpoint(base_url=base, login=conn.login, token=token, verify_tls=verify)
