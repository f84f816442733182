"""The Compliance page's Airflow glue, in-process: the real Airflow api-server app
(``create_app(apps="core")``, which loads the plugins folder, mounts the plugin's FastAPI app and the
SimpleAuthManager with its ``/auth`` login) driven by FastAPI's TestClient. No server, no port.

Proves, route by route: anonymous -> 401 (API client) or a redirect to the login page (browser);
every forged, expired or revoked token -> 401; a user the auth manager accepts -> the page, whose
numbers are control_results'; a user it does not authorize -> 403; GET only, no API docs; the
evidence files only, path-safe; 503 + Retry-After while the nightly run writes the warehouse.
tests/system/test_compliance_page.py runs the same page on a real api-server in Chromium.
"""

from __future__ import annotations

import base64
import inspect
import json
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import jwt  # PyJWT (an Airflow dependency), here only to FORGE tokens
import pytest
from ccwatch.common.paths import warehouse_path

from tests.helpers import outputs_world as D
from tests.helpers.paths import ROOT

JWT_SECRET = "ccwatch-unit-test-jwt-secret-" + "0123456789abcdef" * 3  # 77 bytes: HS512 wants >= 64
USERS = {"admin": ("admin", "admin-pass-1"), "vera": ("viewer", "viewer-pass-1")}
ARCHIVE = "ccwatch-evidence-2026-11-25.tar.gz"
ROUTES = ["/compliance/", "/compliance/?date=2026-11-24", "/compliance/summary.json",
          "/compliance/evidence/2026-11-25/report.html", f"/compliance/evidence/{ARCHIVE}",
          f"/compliance/verify/{ARCHIVE}"]
MARKS = ("CC8.1-", "acme/", "<html>report</html>", "\x1f\x8b")  # any of these in a body would be data


def no_data(response) -> bool:
    body = response.content.decode("latin-1")
    return not any(m in body for m in MARKS)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """The Airflow app over the outputs world's CCWATCH_HOME, with the repository's plugins folder."""
    import os

    from airflow import plugins_manager, settings

    tmp = tmp_path_factory.mktemp("compliance_page")
    home = D.build_home(tmp / "ccwatch_home")
    passwords = tmp / "passwords.json"
    passwords.write_text(json.dumps({u: pw for u, (_role, pw) in USERS.items()}))
    env = {
        "AIRFLOW__CORE__AUTH_MANAGER": "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": ",".join(f"{u}:{r}" for u, (r, _pw) in USERS.items()),
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "False",
        "AIRFLOW__API_AUTH__JWT_SECRET": JWT_SECRET,
        "AIRFLOW__API__SECRET_KEY": "ccwatch-unit-test-secret-key",
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "CCWATCH_HOME": str(home),
    }
    # the metadata DB of this session's AIRFLOW_HOME (tests/conftest.py): token revocation lives there
    migrate = subprocess.run([str(Path(sys.executable).with_name("airflow")), "db", "migrate"],
                             env={**os.environ, **env}, capture_output=True, text=True, timeout=300)
    assert migrate.returncode == 0, migrate.stdout[-2000:] + migrate.stderr[-2000:]
    with pytest.MonkeyPatch.context() as mp:
        for key, value in env.items():
            mp.setenv(key, value)
        mp.setattr(settings, "PLUGINS_FOLDER", str(ROOT / "plugins"))
        caches = [f for f in vars(plugins_manager).values() if hasattr(f, "cache_clear")]
        from airflow.api_fastapi.app import create_app, get_auth_manager, purge_cached_app
        from fastapi.testclient import TestClient

        for f in caches:
            f.cache_clear()
        purge_cached_app()
        try:
            with TestClient(create_app(apps="core")) as client:
                yield {"client": client, "home": home, "auth_manager": get_auth_manager()}
        finally:
            for f in caches:
                f.cache_clear()
            purge_cached_app()


@pytest.fixture
def client(world):
    world["client"].cookies.clear()
    return world["client"]


def login(client, user="admin") -> str:
    r = client.post("/auth/token", json={"username": user, "password": USERS[user][1]})
    assert r.status_code == 201, r.text
    return r.json()["access_token"]


def b64(obj) -> str:
    return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()


def forged_tokens(client) -> dict[str, str]:
    real = login(client)
    viewer = login(client, "vera")
    header = jwt.get_unverified_header(real)
    claims = jwt.decode(real, options={"verify_signature": False})
    now = int(time.time())
    vh, vp, vs = viewer.split(".")
    return {
        "wrong key": jwt.encode(claims, "not-the-secret-" * 5, algorithm=header["alg"]),
        "alg none": f"{b64({'alg': 'none', 'typ': 'JWT'})}.{b64(claims)}.",
        "alg none without signature part": f"{b64({'alg': 'none', 'typ': 'JWT'})}.{b64(claims)}",
        "HS256 with the real secret": jwt.encode(claims, JWT_SECRET, algorithm="HS256"),
        "viewer's token claiming admin": f"{vh}.{b64({**jwt.decode(viewer, options={'verify_signature': False}), 'sub': 'admin', 'role': 'ADMIN'})}.{vs}",
        "garbage": "abc.def.ghi",
        "wrong audience": jwt.encode({**claims, "aud": "someone-else"}, JWT_SECRET, algorithm=header["alg"]),
        "expired": jwt.encode({**claims, "iat": now - 7200, "nbf": now - 7200, "exp": now - 3600, "jti": "old"},
                              JWT_SECRET, algorithm=header["alg"]),
    }


def sql_counts(home: Path, day: str) -> dict:
    con = duckdb.connect(str(warehouse_path(home)), read_only=True)
    try:
        rows = con.execute("SELECT control_id, status, count(*) FROM control_results "
                           "WHERE CAST(as_of AS DATE) = ? GROUP BY ALL", [day]).fetchall()
    finally:
        con.close()
    out: dict = {}
    for control, status, n in rows:
        out.setdefault(control, {})[status] = n
    return out


# --- nothing without a token the auth manager accepts ---------------------------------------------


@pytest.mark.parametrize("route", ROUTES)
def test_anonymous_api_client_gets_401_and_no_data(client, route):
    r = client.get(route, follow_redirects=False)
    assert r.status_code == 401 and no_data(r), (r.status_code, r.text[:200])
    assert r.headers["www-authenticate"] == "Bearer"
    assert r.headers["cache-control"] == "no-store"


@pytest.mark.parametrize("route", ROUTES)
def test_anonymous_browser_is_sent_to_the_login_page(client, route):
    r = client.get(route, headers={"Accept": "text/html"}, follow_redirects=False)
    assert r.status_code == 303 and no_data(r)
    from urllib.parse import quote

    assert r.headers["location"] == "/auth/login?next=" + quote(route, safe="")


def test_every_forged_expired_or_malformed_token_gets_401(client):
    for name, token in forged_tokens(client).items():
        for how in ({"headers": {"Authorization": f"Bearer {token}"}}, {"cookies": {"_token": token}}):
            client.cookies.clear()
            for route in ROUTES:
                r = client.get(route, follow_redirects=False, **how)
                assert r.status_code == 401 and no_data(r), (name, how.keys(), route, r.status_code, r.text[:200])
        client.cookies.clear()
        r = client.get("/compliance/", cookies={"_token": token}, headers={"Accept": "text/html"},
                       follow_redirects=False)
        assert r.status_code == 303 and no_data(r), name
    # control: a token signed with the same secret and valid times is accepted, so the rejections
    # above are the signature's, algorithm's, audience's and expiry's
    claims = jwt.decode(login(client), options={"verify_signature": False})
    now = int(time.time())
    good = jwt.encode({**claims, "iat": now, "nbf": now, "exp": now + 600, "jti": "fresh"}, JWT_SECRET,
                      algorithm="HS512")
    assert client.get("/compliance/", headers={"Authorization": f"Bearer {good}"}).status_code == 200


def test_basic_auth_and_a_bad_bearer_over_a_good_cookie_get_401(client):
    token = login(client)
    r = client.get("/compliance/", headers={"Authorization": "Basic " + base64.b64encode(b"admin:admin-pass-1").decode()})
    assert r.status_code == 401 and no_data(r)
    client.cookies.set("_token", token)
    r = client.get("/compliance/", headers={"Authorization": "Bearer forged.x.y"})
    assert r.status_code == 401 and no_data(r), "an explicit Bearer header wins over the cookie, as in Airflow"


def test_a_token_revoked_by_logout_gets_401(client):
    token = login(client)
    assert client.get("/compliance/", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    client.get("/api/v2/auth/logout", headers={"Authorization": f"Bearer {token}"}, follow_redirects=False)
    client.cookies.clear()
    r = client.get("/compliance/", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 401 and no_data(r)


def test_a_user_the_auth_manager_does_not_authorize_gets_403(client, world, monkeypatch):
    token = login(client, "vera")
    seen = []

    def deny(*, method, details=None, user, **kw):
        seen.append((method, details.id, user.get_name()))
        return False

    monkeypatch.setattr(world["auth_manager"], "is_authorized_dag", deny)
    for route in ROUTES:
        r = client.get(route, headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 403 and no_data(r), route
    assert seen[0] == ("GET", "ccwatch_nightly", "vera")


# --- a user Airflow accepts sees the page ---------------------------------------------------------------


@pytest.mark.parametrize("user", ["admin", "vera"])
def test_logged_in_users_see_the_page_by_bearer_or_cookie(client, user):
    token = login(client, user)
    r = client.get("/compliance/", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200 and "SOC 2 CC8.1 compliance" in r.text
    assert f'signed in as <b id="who">{user}</b>' in r.text
    client.cookies.set("_token", token)
    assert client.get("/compliance/").status_code == 200


@pytest.mark.parametrize("day", ["2026-11-25", "2026-11-24"])
def test_the_numbers_are_control_results(client, world, day):
    token = login(client)
    got = client.get(f"/compliance/summary.json?date={day}", headers={"Authorization": f"Bearer {token}"}).json()
    want = sql_counts(world["home"], day)
    assert got["evidence_date"] == day and got["evidence_dates"] == ["2026-11-25", "2026-11-24"]
    assert {c: {s: n for s, n in per.items() if n} for c, per in got["counts"].items() if any(per.values())} == want


def test_page_headers_allow_no_script_and_only_framing_by_airflow(client):
    r = client.get("/compliance/", headers={"Authorization": f"Bearer {login(client)}"})
    csp = r.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "frame-ancestors 'self'" in csp and "script-src" not in csp
    assert "'sha256-" in csp and "unsafe-inline" not in csp
    assert r.headers["x-content-type-options"] == "nosniff" and r.headers["cache-control"] == "no-store"


def test_evidence_files_archive_and_verify(client, world):
    auth = {"Authorization": f"Bearer {login(client)}"}
    r = client.get("/compliance/evidence/2026-11-25/report.html", headers=auth)
    assert r.status_code == 200 and r.text == "<html>report</html>\n"
    assert r.headers["content-type"].startswith("text/html")
    assert r.headers["content-security-policy"].startswith("sandbox;")
    r = client.get(f"/compliance/evidence/{ARCHIVE}", headers=auth)
    archive = world["home"] / "evidence" / ARCHIVE
    assert r.status_code == 200 and r.content == archive.read_bytes()
    assert r.headers["content-disposition"] == f'attachment; filename="{ARCHIVE}"'
    r = client.get(f"/compliance/verify/{ARCHIVE}", headers=auth)
    assert r.status_code == 200 and "every file of" in r.text and "matches its manifest.json" in r.text
    page = client.get("/compliance/", headers=auth).text
    assert '<span class="st pass">verified</span>' in page


@pytest.mark.parametrize("path", [
    "/compliance/evidence/2026-11-25/..%2F..%2Fwarehouse.duckdb", "/compliance/evidence/..%2Fwarehouse.duckdb",
    "/compliance/evidence/2026-11-25/SHA256SUMS", "/compliance/evidence/warehouse.duckdb",
    "/compliance/evidence/..%2F..%2F..%2Fetc%2Fpasswd", "/compliance/verify/..%2Fwarehouse.duckdb",
    "/compliance/evidence/2026-11-25/changes%2Facme__payments-api__pr-12%2Fpull.json",
])
def test_only_the_evidence_folders_files_are_served(client, path):
    r = client.get(path, headers={"Authorization": f"Bearer {login(client)}"})
    assert r.status_code == 404 and b"DUCK" not in r.content and b"root:" not in r.content


def test_get_only_and_no_api_docs(client):
    auth = {"Authorization": f"Bearer {login(client)}"}
    for method in ("post", "put", "delete", "patch"):
        assert getattr(client, method)("/compliance/", headers=auth).status_code == 405
    for path in ("docs", "redoc", "openapi.json", "docs/oauth2-redirect"):
        assert client.get(f"/compliance/{path}", headers=auth).status_code == 404, path


def test_bad_and_unknown_dates(client):
    auth = {"Authorization": f"Bearer {login(client)}"}
    r = client.get("/compliance/?date=2026-11-25%3Cscript%3E", headers=auth)
    assert r.status_code == 400 and "<script>" not in r.text
    assert client.get("/compliance/?date=2026-11-23", headers=auth).status_code == 404


def test_503_with_retry_after_while_the_nightly_run_writes(client, world):
    token = login(client)
    writer = subprocess.Popen(
        [sys.executable, "-c", "import duckdb, sys, time\ncon = duckdb.connect(sys.argv[1])\n"
         "print('locked', flush=True)\ntime.sleep(60)", str(warehouse_path(world["home"]))],
        stdout=subprocess.PIPE, text=True)
    try:
        assert writer.stdout.readline().strip() == "locked"
        r = client.get("/compliance/", headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 503 and r.headers["retry-after"] == "30" and no_data(r)
        assert client.get("/compliance/").status_code == 401, "authentication comes first"
    finally:
        writer.kill()
        writer.wait()
    assert client.get("/compliance/", headers={"Authorization": f"Bearer {token}"}).status_code == 200


# --- registration and the Airflow API this relies on -----------------------------------------------


def test_the_plugin_is_registered_with_its_app_and_nav_entry(client):
    auth = {"Authorization": f"Bearer {login(client)}"}
    plugins = client.get("/api/v2/plugins", headers=auth).json()["plugins"]
    (ours,) = [p for p in plugins if p["name"] == "ccwatch"]
    assert ours["fastapi_apps"] == [{"app": "fastapi.applications.FastAPI", "url_prefix": "/compliance",
                                     "name": "ccwatch compliance page"}]
    assert ours["external_views"] == [{"name": "Compliance", "href": "compliance/", "url_route": "compliance",
                                       "destination": "nav", "category": "browse", "icon": None, "nav_top_level": False,
                                       "icon_dark_mode": None}]
    errors = client.get("/api/v2/plugins/importErrors", headers=auth).json()
    assert errors["total_entries"] == 0, errors


def test_airflows_get_user_is_what_the_page_calls():
    """The page delegates to airflow.api_fastapi.core_api.security.get_user (Airflow-internal):
    pin its signature, so an Airflow upgrade that changes it fails here, not silently."""
    from airflow.api_fastapi.core_api.security import get_user

    assert list(inspect.signature(get_user).parameters) == ["request", "_oauth_token", "bearer_credentials"]


def test_the_authorizing_dag_is_the_nightly_dag():
    from ccwatch_airflow.compliance_page import EVIDENCE_DAG_ID

    assert f'dag_id="{EVIDENCE_DAG_ID}"' in (ROOT / "dags" / "ccwatch_nightly.py").read_text(encoding="utf-8")
