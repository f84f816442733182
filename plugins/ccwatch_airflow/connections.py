"""Resolve Airflow connections into ccwatch endpoints.

Accepted shapes (all usable as ``AIRFLOW_CONN_<ID>`` environment variables, JSON or URI):

- GitHub (``github`` type): host = API base URL (``https://api.github.com`` or a GitHub
  Enterprise ``https://ghe.example/api/v3``), password = token.
- Jira (``jira`` type): host = base URL, login = user, password = API token.
- Slack (``slack`` type): password = bot token; the API base URL comes from the extra
  ``base_url`` (as in Airflow's Slack provider), else from host, else ``https://slack.com/api/``.

A host without a scheme (the URI form ``github://:tok@ghe.example/api/v3`` gives host
``ghe.example``) gets ``https://`` - or ``http://`` for loopback hosts - plus port and
path (the URI's "schema" part; a schema of ``http``/``https``, the HTTP provider's
convention, is taken as the scheme instead).  An extra ``base_url`` always wins.
GitHub and Jira base URLs carry no trailing slash; the Slack one always ends with one.

- Evidence signing key (``evidence.signing_conn_id``, any type, e.g. ``generic``): password = the
  Ed25519 private key as PEM (``openssl genpkey -algorithm ed25519``), however an environment
  variable or the UI mangled its newlines (``ccwatch.publish.evidence.signing``).  The key object is
  handed to the stage and never logged, stored or put in an error message.

Outside a running task (a plain Python process, pytest) Airflow's task SDK resolves
connections through its fallback chain, which reads ``AIRFLOW_CONN_*`` on every call.
"""

from __future__ import annotations

import os
from urllib.parse import urlsplit, urlunsplit

from airflow.sdk import BaseHook
from ccwatch.common.endpoints import Endpoint
from ccwatch.publish.evidence.signing import SigningKeyError, load_ed25519_private_key

DEFAULT_BASE = {
    "github": "https://api.github.com",
    "jira": None,
    "slack": "https://slack.com/api/",
}

_LOOPBACK = {"localhost", "127.0.0.1", "::1", "[::1]"}


class ConnectionConfigError(ValueError):
    pass


def _netloc(host: str, port: int | None) -> str:
    if ":" in host and not host.startswith("["):  # a bare IPv6 address
        host = f"[{host}]"
    return host + (f":{port}" if port else "")


def base_url_from(
    host: str | None, port: int | None, schema: str | None, extra: dict, default: str | None
) -> str:
    if extra.get("base_url"):
        url = str(extra["base_url"])
    elif not host:
        if default is None:
            raise ConnectionConfigError("has no host (the service's base URL)")
        return default
    elif "://" in host:
        parts = urlsplit(host.rstrip("/"))
        netloc = parts.netloc
        if port and parts.port is None:
            netloc += f":{port}"
        url = urlunsplit((parts.scheme, netloc, parts.path, parts.query, ""))
    else:
        path = (schema or "").strip("/")
        scheme = extra.get("scheme")
        if path.lower() in ("http", "https"):
            scheme, path = scheme or path.lower(), ""
        scheme = scheme or ("http" if host in _LOOPBACK else "https")
        url = f"{scheme}://{_netloc(host, port)}" + (f"/{path}" if path else "")
    parts = urlsplit(url)
    if parts.username is not None or parts.password is not None:
        # Never let a credential ride in the URL: it would reach logs and the evidence folder.
        raise ConnectionConfigError(
            "has a base URL with user:password@ in it; put the token in the password field"
        )
    return url


def _origin(config_key: str | None, config_file: str | None) -> str:
    """Where the connection id was configured, e.g. " (named by github.conn_id in ccwatch.yaml)"."""
    if not config_key:
        return ""
    return f" (named by {config_key}" + (f" in {config_file}" if config_file else "") + ")"


def _lookup(conn_id: str, service: str, origin: str = ""):
    env_var = f"AIRFLOW_CONN_{conn_id.upper()}"
    try:
        return BaseHook.get_connection(conn_id)
    except Exception as exc:  # AirflowNotFoundException and friends
        if os.environ.get(env_var):
            # Airflow swallows a parse error and reports "not defined": say what really happened.
            raise ConnectionConfigError(
                f"Airflow connection '{conn_id}' ({service}){origin}: {env_var} is set but is not a valid "
                f"connection (a JSON object or a URI such as {service}://:TOKEN@host/path)"
            ) from exc
        raise ConnectionConfigError(
            f"Airflow connection '{conn_id}' ({service}){origin} is not defined: create it in the UI or set "
            f"{env_var} (see .env.example), or change the id in the config file"
        ) from exc


def endpoint_for(conn_id: str, service: str, *, config_key: str | None = None,
                 config_file: str | None = None) -> Endpoint:
    """The endpoint of ``service`` ('github' | 'jira' | 'slack') from Airflow connection ``conn_id``.

    ``config_key``/``config_file`` (e.g. ``github.conn_id``, the ccwatch.yaml path): where the id
    came from, named in the error when the connection is missing or unusable."""
    if service not in DEFAULT_BASE:
        raise ValueError(f"unknown service {service!r} (expected one of {', '.join(DEFAULT_BASE)})")
    origin = _origin(config_key, config_file)
    conn = _lookup(conn_id, service, origin)
    extra = conn.extra_dejson or {}
    try:
        base = base_url_from(conn.host, conn.port, conn.schema, extra, DEFAULT_BASE[service])
    except ConnectionConfigError as exc:
        raise ConnectionConfigError(f"Airflow connection '{conn_id}' ({service}){origin} {exc}") from None
    base = base.rstrip("/") + ("/" if service == "slack" else "")
    token = conn.password or extra.get("token")
    if not token:
        raise ConnectionConfigError(f"Airflow connection '{conn_id}' ({service}){origin} has no password/token")
    verify = extra.get("verify", True) not in (False, "false", "False", "0")
    return Endpoint(base_url=base, login=conn.login or None, token=token, verify_tls=verify)


def configured_endpoint(settings, service: str) -> Endpoint:
    """The endpoint of ``service`` through the connection id the config names (``<service>.conn_id``);
    a missing connection's error names that config key and file too."""
    conn_id = getattr(settings, service).conn_id
    return endpoint_for(conn_id, service, config_key=f"{service}.conn_id", config_file=settings.source_path)


def fallback_alert_endpoint() -> tuple[Endpoint, str]:
    """(Slack endpoint, channel) for an alert when the config file does not load: the connection and
    channel the file names when they can still be read from it, else the defaults
    (``settings.alert_target``)."""
    from ccwatch.settings import alert_target, config_path

    conn_id, channel = alert_target()
    return endpoint_for(conn_id, "slack", config_key="slack.conn_id", config_file=str(config_path())), channel


def configured_signing_key(settings):
    """The Ed25519 private key of ``evidence.signing_conn_id``, or None when that key is not set.

    A missing connection, an empty password or a key that is not an unencrypted Ed25519 key stops
    the task with a message naming the connection and the config key, never the key material."""
    conn_id = settings.evidence.signing_conn_id
    if not conn_id:
        return None
    origin = _origin("evidence.signing_conn_id", settings.source_path)
    conn = _lookup(conn_id, "signing key", origin)
    text = conn.password or (conn.extra_dejson or {}).get("private_key")
    if not text:
        raise ConnectionConfigError(f"Airflow connection '{conn_id}' (signing key){origin} has no password: put the "
                                    "Ed25519 private key (PEM) there (docs/DEPLOYMENT.md)")
    try:
        return load_ed25519_private_key(text)
    except SigningKeyError as exc:
        raise ConnectionConfigError(f"Airflow connection '{conn_id}' (signing key){origin}: {exc}") from None
