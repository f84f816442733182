"""The Compliance page on a real Airflow api-server, in headless Chromium.

A demo warehouse and its evidence are made in-process (tests/helpers/harness.py against the API
double: 2026-11-24 on the hostile org of tests/helpers/hostile.py, whose PR titles carry script
and markup, 2026-11-25 on the demo org), while ``airflow db migrate`` runs; then ``airflow
api-server`` starts on a free loopback port with the repository's plugins folder, the
SimpleAuthManager (deterministic passwords, as in the Celery test: scripts/celery_stack.py) and
one JWT secret. Checked:

- over HTTP: anonymous and forged, expired or wrong-algorithm tokens get 401 (or the login page),
  never data; the plugin and its nav entry are registered without import errors;
- in Chromium: an anonymous visit of the page or of the UI route lands on the login page, so does
  one with a forged ``_token`` cookie; a user who logs in on the login page sees the page inside
  the Airflow UI (Browse -> Compliance) with exactly control_results' counts for each date, can
  switch dates and run ``verify``; hostile titles are shown as text and nothing executes.

Screenshots go to the test's tmp folder (printed), and to $CCWATCH_SCREENSHOT_DIR when set
(``CCWATCH_SCREENSHOT_DIR=docs/images`` refreshes the README's picture). Without Chromium the
browser tests skip locally and fail on CI (.ci/run installs it).
"""

from __future__ import annotations

import asyncio
import base64
import copy
import json
import os
import shutil
import time
from pathlib import Path
from urllib.parse import quote

import httpx
import jwt  # PyJWT (an Airflow dependency), here only to FORGE tokens
import pytest
from ccwatch.common.paths import state_path
from ccwatch.common.times import parse_as_of
from ccwatch.controls.catalogue import CONTROL_IDS, STATUSES
from ccwatch.demo_env import DEMO_AUTH
from ccwatch.sandbox import SandboxServer
from ccwatch.settings import load_settings

from tests.helpers import hostile
from tests.helpers.airflow_stack import stack_module
from tests.helpers.chromium import Chromium, require_chromium
from tests.helpers.harness import query, run_pipeline
from tests.helpers.paths import CONFIG, DEMO_SCENARIO, ROOT

USERS = {"admin": ("admin", "compliance-admin-pw"), "vera": ("viewer", "compliance-viewer-pw")}
CLEAN, HOSTILE = "2026-11-25", "2026-11-24"
README_SHOT = "compliance-page.png"
DATA_MARK = "CC8.1-0"  # in every page that shows results, in no login page or error
IFRAME_TABLE = ("(() => { const f = document.querySelector('iframe'); return !!(f && f.contentDocument && "
                "f.contentDocument.querySelector('#counts')); })()")
COUNTS_JS = """(doc => { const out = {};
  for (const tr of doc.querySelectorAll('#counts tbody tr')) { const per = {};
    for (const td of tr.querySelectorAll('td[data-status]')) per[td.dataset.status] = Number(td.textContent);
    out[tr.dataset.control] = per; }
  return out; })(%s)"""


def _demo_warehouse(home: Path) -> float:
    """Two nightly runs in-process: the hostile org for 2026-11-24, the demo org for 2026-11-25
    (the ingest state is dropped in between, so the second run fetches the clean org in full)."""
    t = time.monotonic()
    settings = load_settings(CONFIG)
    clean = json.loads(DEMO_SCENARIO.read_text(encoding="utf-8"))
    clean["auth"] = dict(DEMO_AUTH)
    for day, scenario in ((HOSTILE, hostile.hostile_scenario()), (CLEAN, clean)):
        state_path(home).unlink(missing_ok=True)
        with SandboxServer(copy.deepcopy(scenario)) as server:
            run = run_pipeline(settings, server, parse_as_of(day), home, github_workers=4)
        assert run.failed_stage is None, f"{day}: {run.failed_stage}: {run.error}"
    return time.monotonic() - t


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    cs = stack_module()
    cs.LABEL = "compliance-page"
    tmp = tmp_path_factory.mktemp("compliance_page")
    logs, home, airflow_home = tmp / "logs", tmp / "ccwatch_home", tmp / "airflow_home"
    for d in (logs, home, airflow_home):
        d.mkdir()
    secrets_env = cs.shared_secrets()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "CCWATCH_", "PYTHONPATH"))},
        "AIRFLOW_HOME": str(airflow_home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{airflow_home}/airflow.db",
        "AIRFLOW__API__EXPOSE_CONFIG": "False",
        **secrets_env,
        **cs.simple_auth_env(airflow_home / "passwords.json", USERS),
        "PYTHONPATH": os.pathsep.join([str(ROOT / "include"), str(ROOT / "plugins")]),
        "CCWATCH_HOME": str(home),
        "CCWATCH_CONFIG": str(CONFIG),
    }
    stack = cs.Stack(logs)
    timings = {}
    t0 = time.monotonic()
    try:
        migration = cs.migrate_db(stack, env, tmp, wait=False)
        timings["pipeline_two_dates_s"] = round(_demo_warehouse(home), 1)
        cs.finish_migration(stack, migration)
        timings["pipeline_and_migrate_s"] = round(time.monotonic() - t0, 1)
        t = time.monotonic()
        base = cs.start_api_server(stack, env, cs.free_port())
        cs.wait_api_server(stack, base)
        timings["api_server_start_s"] = round(time.monotonic() - t, 1)
        yield {"base": base, "home": home, "tmp": tmp, "logs": logs, "timings": timings,
               "jwt_secret": secrets_env["AIRFLOW__API_AUTH__JWT_SECRET"]}
    except BaseException:
        for log in sorted(logs.glob("*.log")):
            print(f"----- {log.name} -----\n" + log.read_text(errors="replace")[-3000:])
        raise
    finally:
        stack.stop()
        timings["total_s"] = round(time.monotonic() - t0, 1)
        print("COMPLIANCE_PAGE_TIMINGS " + json.dumps(timings, sort_keys=True))


def control_results_counts(home: Path, day: str) -> dict[str, dict[str, int]]:
    rows = query(home, "SELECT control_id, status, count(*) FROM control_results "
                       "WHERE CAST(as_of AS DATE) = ? GROUP BY ALL", [day])
    out = {c: dict.fromkeys(STATUSES, 0) for c in CONTROL_IDS}
    for control, status, n in rows:
        out.setdefault(control, dict.fromkeys(STATUSES, 0))[status] = n
    return out


def token(base: str, user: str = "admin") -> str:
    r = httpx.post(f"{base}/auth/token", json={"username": user, "password": USERS[user][1]}, timeout=30)
    assert r.status_code == 201, r.text
    return r.json()["access_token"]


def _b64(obj) -> str:
    return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()


def forged_tokens(base: str, secret: str) -> dict[str, str]:
    real = token(base)
    claims = jwt.decode(real, options={"verify_signature": False})
    now = int(time.time())
    return {
        "wrong key": jwt.encode(claims, "not-the-secret-" * 5, algorithm="HS512"),
        "alg none": f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(claims)}.",
        "HS256 with the real secret": jwt.encode(claims, secret, algorithm="HS256"),
        "tampered payload": ".".join([real.split(".")[0], _b64({**claims, "sub": "someone"}), real.split(".")[2]]),
        "expired": jwt.encode({**claims, "iat": now - 7200, "nbf": now - 7200, "exp": now - 3600}, secret,
                              algorithm="HS512"),
        "garbage": "abc.def.ghi",
    }


def save_shot(path: Path) -> None:
    target = os.environ.get("CCWATCH_SCREENSHOT_DIR")
    if target:
        Path(target).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(target) / path.name)


# --- over HTTP ------------------------------------------------------------------------------------------


def test_anonymous_and_forged_requests_get_nothing(served):
    base = served["base"]
    with httpx.Client(base_url=base, timeout=30, follow_redirects=False) as c:
        for path in ("/compliance/", "/compliance/summary.json", f"/compliance/evidence/{CLEAN}/report.html",
                     f"/compliance/evidence/ccwatch-evidence-{CLEAN}.tar.gz"):
            r = c.get(path)
            assert r.status_code == 401 and DATA_MARK not in r.text, (path, r.status_code)
            r = c.get(path, headers={"Accept": "text/html"})
            assert r.status_code == 303 and r.headers["location"] == "/auth/login?next=" + quote(path, safe="")
        for name, forged in forged_tokens(base, served["jwt_secret"]).items():
            for how in ({"headers": {"Authorization": f"Bearer {forged}"}}, {"cookies": {"_token": forged}}):
                c.cookies.clear()
                r = c.get("/compliance/summary.json", **how)
                assert r.status_code == 401 and DATA_MARK not in r.text, (name, r.status_code, r.text[:200])
        c.cookies.clear()
        for path in ("/compliance/docs", "/compliance/openapi.json"):
            assert c.get(path).status_code == 404
        auth = {"Authorization": f"Bearer {token(base)}"}
        assert c.post("/compliance/", headers=auth).status_code == 405
        plugins = c.get("/api/v2/plugins", headers=auth).json()["plugins"]
        (ours,) = [p for p in plugins if p["name"] == "ccwatch"]
        assert ours["external_views"][0]["href"] == "compliance/" and ours["fastapi_apps"][0]["url_prefix"] == "/compliance"
        assert c.get("/api/v2/plugins/importErrors", headers=auth).json()["total_entries"] == 0
        summary = c.get(f"/compliance/summary.json?date={CLEAN}", headers=auth).json()
        assert summary["counts"] == control_results_counts(served["home"], CLEAN)


# --- in Chromium -----------------------------------------------------------------------------------------


async def _login_page(page, base: str) -> bool:
    await page.wait_for("location.pathname === '/auth/login' && !!document.querySelector('input[type=password]')")
    return DATA_MARK not in await page.js("document.documentElement.outerHTML")


def test_anonymous_and_forged_cookie_visits_land_on_the_login_page(served):
    binary = require_chromium()
    base, tmp = served["base"], served["tmp"]
    forged = forged_tokens(base, served["jwt_secret"])

    async def scenario():
        async with Chromium(binary, served["logs"]) as browser:
            page = await browser.new_page()
            await page.goto(f"{base}/compliance/")
            assert await _login_page(page, base)
            assert await page.js("location.search") == "?next=%2Fcompliance%2F"
            await page.screenshot(tmp / "compliance-anonymous.png")
            await page.goto(f"{base}/plugin/compliance")
            assert await _login_page(page, base)
            for name in ("wrong key", "alg none", "expired"):
                await page.send("Network.setCookie", name="_token", value=forged[name], url=base + "/")
                await page.goto(f"{base}/compliance/?date={CLEAN}")
                assert await _login_page(page, base), name
            await page.close()

    asyncio.run(scenario())


def test_a_logged_in_user_sees_control_results_in_the_airflow_ui(served):
    binary = require_chromium()
    base, tmp, home = served["base"], served["tmp"], served["home"]
    timings = served["timings"]
    iframe_doc = "document.querySelector('iframe').contentDocument"

    async def scenario():
        async with Chromium(binary, served["logs"]) as browser:
            page = await browser.new_page()
            t = time.monotonic()
            await page.goto(f"{base}/auth/login?next=/plugin/compliance")
            await page.wait_for("!!document.querySelector('input[type=password]')")
            await page.type_into("input:not([type=password])", "vera")
            await page.type_into("input[type=password]", USERS["vera"][1])
            await page.js("document.querySelector('button[type=submit]').click()")
            await page.wait_for("location.pathname === '/plugin/compliance'")
            await page.wait_for(IFRAME_TABLE, timeout=60)
            timings["login_to_page_in_ui_s"] = round(time.monotonic() - t, 1)
            assert await page.js(f"{iframe_doc}.querySelector('#who').textContent") == "vera"
            assert await page.js(f"{iframe_doc}.querySelector('#day').textContent") == CLEAN
            assert await page.js(COUNTS_JS % iframe_doc) == control_results_counts(home, CLEAN)
            assert await page.js("document.querySelector('iframe').getAttribute('src')") == "compliance/"
            await page.screenshot(tmp / "compliance-in-ui.png")
            # the nav entry: Browse -> Compliance (the README's picture shows both)
            await page.js("[...document.querySelectorAll('button')].find(b => b.innerText.trim() === 'Browse')"
                          "?.click()")
            assert await page.wait_for("[...document.querySelectorAll('[role=menuitem], a')]"
                                       ".some(e => e.innerText.trim() === 'Compliance')", timeout=10)
            await asyncio.sleep(0.5)  # the menu's opening animation
            save_shot(await page.screenshot(tmp / README_SHOT))
            await page.send("Input.dispatchKeyEvent", type="keyDown", key="Escape")
            # another date, through the page's own date picker
            await page.js(f"(d => {{ d.querySelector('select[name=date]').value = '{HOSTILE}';"
                          " d.querySelector('#pick').submit(); })(" + iframe_doc + ")")
            await page.wait_for(f"(() => {{ const d = {iframe_doc}; const s = d && d.querySelector('#day');"
                                f" return s && s.textContent === '{HOSTILE}' && !!d.querySelector('#counts'); }})()")
            assert await page.js(COUNTS_JS % iframe_doc) == control_results_counts(home, HOSTILE)
            # verify the archive on demand, then back
            await page.goto(f"{base}/compliance/?date={CLEAN}")
            await page.wait_for("!!document.querySelector('#archives')")
            t = time.monotonic()
            await page.js("[...document.querySelectorAll('#archives a')].find(a => a.textContent === 'run verify')"
                          ".click()")
            await page.wait_for("document.body.innerText.includes('matches its manifest.json')")
            timings["verify_s"] = round(time.monotonic() - t, 2)
            await page.screenshot(tmp / "compliance-verify.png")
            await page.js("[...document.querySelectorAll('a')].find(a => a.textContent.startsWith('Back')).click()")
            await page.wait_for("!!document.querySelector('#archives')")
            assert "verified" in await page.js("document.querySelector('#archives').innerText")
            # the date's report, served by the page (in a CSP sandbox: no script could run in it)
            await page.js("[...document.querySelectorAll('#files a')].find(a => a.textContent === 'report.html')"
                          ".click()")
            await page.wait_for("document.body.innerText.includes('SOC 2 CC8.1 change management report')")
            assert await page.js("location.pathname") == f"/compliance/evidence/{CLEAN}/report.html"
            await page.close()

    asyncio.run(scenario())
    print(f"screenshots in {tmp}")


def test_hostile_titles_render_as_text_and_nothing_executes(served):
    binary = require_chromium()
    base = served["base"]

    async def scenario():
        async with Chromium(binary, served["logs"]) as browser:
            page = await browser.new_page()
            await page.send("Network.setCookie", name="_token", value=token(base), url=base + "/")
            await page.goto(f"{base}/compliance/?date={HOSTILE}")
            await page.wait_for("!!document.querySelector('#counts')")
            text = await page.js("document.body.textContent")
            assert hostile.SCRIPT in text and hostile.IMG in text, "the hostile titles are on the page, as text"
            injected = await page.js("document.querySelectorAll('script, img, svg, iframe, object, embed, "
                                     "[onerror], [onload]').length")
            assert injected == 0
            await asyncio.sleep(0.5)
            assert "Page.javascriptDialogOpening" not in page.event_names()
            messages = [json.dumps(e["params"]) for e in page.events
                        if e["method"] in ("Log.entryAdded", "Runtime.consoleAPICalled", "Runtime.exceptionThrown")]
            assert not [m for m in messages if "Content Security Policy" in m or "alert" in m], messages
            await page.js("document.querySelector('table.failing[data-control=\"CC8.1-03\"]').scrollIntoView()")
            await page.screenshot(served["tmp"] / "compliance-hostile.png")
            await page.close()

    asyncio.run(scenario())


def test_without_chromium_the_browser_tests_skip_locally_and_fail_on_ci(monkeypatch):
    import tests.helpers.chromium as chromium

    monkeypatch.setattr(chromium.shutil, "which", lambda name: None)
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception):
        require_chromium()
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI must install Debian's chromium"):
        require_chromium()
