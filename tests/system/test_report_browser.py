"""The daily report of three consecutive demo dates, in headless Chromium.

The demo pipeline runs in-process (tests/helpers/harness.py against the API double serving
include/demo/scenario.json) for 2026-11-23, -24 and -25; the third date's report.html is opened
from its evidence folder over the DevTools protocol (tests/helpers/chromium.py). Checked against
SQL on the warehouse: a chart point per control and run date, the newly failing and newly resolved
lists, and the first-failed date and days open of every open failure; and: no console message or
exception, no request other than the file itself, the same document with JavaScript disabled (the
page has no script), and every evidence link opens a file of the unpacked archive.

Screenshots go to the test's tmp folder, and to $CCWATCH_SCREENSHOT_DIR when set
(``CCWATCH_SCREENSHOT_DIR=docs/images`` refreshes docs/images/report.png). Without Chromium the
test skips locally and fails on CI (.ci/run installs it).
"""

from __future__ import annotations

import asyncio
import base64
import copy
import json
import os
import shutil
import tarfile
import time
from datetime import date
from pathlib import Path

import duckdb
import pytest
from ccwatch.common.paths import warehouse_path
from ccwatch.common.times import parse_as_of
from ccwatch.demo_env import DEMO_AUTH
from ccwatch.sandbox import SandboxServer
from ccwatch.settings import load_settings

from tests.helpers.chromium import Chromium, require_chromium
from tests.helpers.harness import run_pipeline
from tests.helpers.outputs_world import streaks_by_walking
from tests.helpers.paths import CONFIG, DEMO_SCENARIO

DATES = ("2026-11-23", "2026-11-24", "2026-11-25")
DAY = DATES[-1]
SHOT = "report.png"

PAGE_FACTS = """(() => {
  const rows = sel => [...document.querySelectorAll(sel)];
  return {
    points: Object.fromEntries(rows('svg.spark').map(s => [s.dataset.control, s.querySelectorAll('circle.pt').length])),
    trend: rows('svg.trend circle.pt').map(c => c.dataset.date),
    changed: rows('tr[data-kind]').map(tr => [tr.dataset.kind, tr.dataset.control, tr.dataset.change]),
    failing: rows('table.t-failing tbody tr').map(tr => [tr.dataset.control, tr.dataset.change,
      tr.querySelector('[data-first-failed]').dataset.firstFailed, Number(tr.querySelector('[data-days-open]').dataset.daysOpen)]),
    evidence: rows('a.ev').map(a => a.getAttribute('href')),
    views: rows('table.view').map(t => t.dataset.view),
    text: document.body.innerText,
  };
})()"""


@pytest.fixture(scope="module")
def three_days(tmp_path_factory):
    home = tmp_path_factory.mktemp("report_home")
    settings = load_settings(CONFIG)
    scenario = json.loads(DEMO_SCENARIO.read_text(encoding="utf-8"))
    scenario["auth"] = dict(DEMO_AUTH)
    t = time.monotonic()
    with SandboxServer(copy.deepcopy(scenario)) as server:
        for day in DATES:
            run = run_pipeline(settings, server, parse_as_of(day), home, github_workers=2)
            assert run.failed_stage is None, f"{day}: {run.failed_stage}: {run.error}"
    print(f"three demo dates in {time.monotonic() - t:.1f} s")
    return home


def warehouse(home: Path):
    return duckdb.connect(str(warehouse_path(home)), read_only=True)


def truth(home: Path) -> dict:
    """What the warehouse says, in SQL written here (not the product's readers)."""
    day = date.fromisoformat(DAY)
    con = warehouse(home)
    try:
        points = dict(con.execute(
            "SELECT control_id, count(DISTINCT CAST(as_of AS DATE)) FROM control_results "
            "WHERE status IN ('pass', 'fail') AND CAST(as_of AS DATE) <= ? GROUP BY ALL", [day]).fetchall())
        changed = con.execute("""
            WITH c AS (SELECT change_id, control_id, status FROM control_results WHERE CAST(as_of AS DATE) = ?),
                 p AS (SELECT change_id, control_id, status FROM control_results WHERE CAST(as_of AS DATE) = ?)
            SELECT 'newly_failing', c.control_id, c.change_id FROM c LEFT JOIN p USING (change_id, control_id)
              WHERE c.status = 'fail' AND (p.status IS NULL OR p.status <> 'fail')
            UNION ALL
            SELECT CASE WHEN c.status IS NULL THEN 'left' ELSE 'resolved' END, p.control_id, p.change_id
              FROM p LEFT JOIN c USING (change_id, control_id) WHERE p.status = 'fail'
              AND (c.status IS NULL OR c.status <> 'fail')""", [day, date.fromisoformat(DATES[1])]).fetchall()
        # a repository's row (change_id "owner/repo": no "#N" or "@sha") is a repository finding, listed apart
        failing = {(k, c): (first.isoformat(), (day - first).days)
                   for (c, k), (first, _n) in streaks_by_walking(con, day).items() if "#" in c or "@" in c}
    finally:
        con.close()
    return {"points": points, "changed": sorted(tuple(r) for r in changed), "failing": failing}


async def _load(page, url: str, timeout: float = 30.0) -> None:
    await page.goto(url)
    end = time.monotonic() + timeout
    while "Page.loadEventFired" not in page.event_names():
        assert time.monotonic() < end, f"{url} did not load"
        await asyncio.sleep(0.05)


async def _document(page) -> str:
    root = await page.send("DOM.getDocument", depth=-1)
    return (await page.send("DOM.getOuterHTML", nodeId=root["root"]["nodeId"]))["outerHTML"]


def save_shot(path: Path) -> None:
    target = os.environ.get("CCWATCH_SCREENSHOT_DIR")
    if target:
        Path(target).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(target) / path.name)


def test_three_day_report_in_chromium_matches_the_warehouse(three_days, tmp_path):
    binary = require_chromium()
    folder = three_days / "evidence" / DAY
    report = folder / "report.html"
    url = report.as_uri()
    want = truth(three_days)

    async def scenario():
        async with Chromium(binary, tmp_path / "logs", size=(1300, 1500)) as browser:
            page = await browser.new_page()
            await page.send("DOM.enable")
            await _load(page, url)
            facts = await page.js(PAGE_FACTS)
            with_js = await _document(page)
            shot = await page.send("Page.captureScreenshot", format="png", captureBeyondViewport=True,
                                   clip={"x": 0, "y": 0, "width": 1300, "height": 1500, "scale": 1})
            (tmp_path / SHOT).write_bytes(base64.b64decode(shot["data"]))
            await asyncio.sleep(0.3)
            events = list(page.events)
            await page.close()

            off = await browser.new_page()
            await off.send("DOM.enable")
            await off.send("Emulation.setScriptExecutionDisabled", value=True)
            await _load(off, url)
            without_js = await _document(off)
            off_events = list(off.events)
            await off.close()
        return facts, with_js, without_js, events, off_events

    facts, with_js, without_js, events, off_events = asyncio.run(scenario())
    save_shot(tmp_path / SHOT)
    print(f"screenshot: {tmp_path / SHOT}")

    # history: a point per control and run date, as many as the warehouse has judged dates (three here)
    assert facts["trend"] == list(DATES)
    assert facts["points"] == want["points"]
    assert set(facts["points"].values()) == {3}, facts["points"]
    # what changed since 2026-11-24
    assert sorted(tuple(r) for r in facts["changed"]) == want["changed"]
    assert any(kind == "newly_failing" for kind, *_ in want["changed"]), "the demo must show a new failure"
    # every open failure with its first failing date and days open
    got = {(c, k): (first, days) for c, k, first, days in facts["failing"]}
    assert got == want["failing"]
    assert {days for _f, days in got.values()} >= {0, 2}, "ages from the first date and new ones today"
    assert facts["views"] == ["repository", "author"]

    # no console output or exception, no request but the file itself
    noise = [e for e in events + off_events
             if e["method"] in ("Runtime.consoleAPICalled", "Runtime.exceptionThrown", "Log.entryAdded")]
    assert not noise, json.dumps(noise)[:2000]
    requests = [e["params"]["request"]["url"] for e in events + off_events if e["method"] == "Network.requestWillBeSent"]
    assert requests == [url, url], requests
    # the page has no script: the same document with JavaScript disabled
    assert "<script" not in with_js.lower()
    assert without_js == with_js

    # every evidence link opens a file (or folder) of the dated folder and of the unpacked archive
    assert facts["evidence"] and all(h.startswith("changes/") for h in facts["evidence"])
    unpacked = tmp_path / "unpacked"
    with tarfile.open(three_days / "evidence" / f"ccwatch-evidence-{DAY}.tar.gz") as tar:
        tar.extractall(unpacked, filter="data")
    for href in set(facts["evidence"]):
        assert (folder / href).exists(), href
        assert (unpacked / DAY / href).exists(), href
