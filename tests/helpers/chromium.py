"""Headless Debian Chromium for the browser tests, driven over the DevTools protocol with the
``websockets`` package Airflow already installs (no selenium, no playwright, no driver binary).

``require_chromium()`` skips a test where Chromium is not installed, and fails it on CI (``CI``
set: .ci/run installs Debian's ``chromium``). ``Chromium`` starts one browser with a throw-away
profile; every ``new_page()`` is a fresh browser context (its own cookie jar).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import shutil
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

#: the flags every browser test runs Chromium with (offline-friendly, no first-run noise, no sandbox: CI runs as root)
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync")


def find_chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def require_chromium() -> str:
    """The Chromium binary; skip without one, except on CI where the test must run."""
    binary = find_chromium()
    if binary is None:
        if os.environ.get("CI"):
            pytest.fail("CI must install Debian's chromium (see .ci/run) for the browser tests")
        pytest.skip("chromium not installed (apt-get install chromium)")
    return binary


class Page:
    """One page target in its own browser context: navigate, evaluate, type, screenshot."""

    def __init__(self, ws, browser: Chromium, context_id: str):
        self.ws, self.browser, self.context_id = ws, browser, context_id
        self.n, self.pending, self.events = 0, {}, []
        self.reader = asyncio.create_task(self._read())

    async def _read(self):
        with contextlib.suppress(Exception):
            async for raw in self.ws:
                msg = json.loads(raw)
                if "id" in msg and msg["id"] in self.pending:
                    self.pending.pop(msg["id"]).set_result(msg)
                elif "method" in msg:
                    self.events.append(msg)

    async def send(self, method: str, **params):
        self.n += 1
        future = asyncio.get_running_loop().create_future()
        self.pending[self.n] = future
        await self.ws.send(json.dumps({"id": self.n, "method": method, "params": params}))
        msg = await asyncio.wait_for(future, 30)
        if "error" in msg:
            raise RuntimeError(f"{method}: {msg['error']}")
        return msg["result"]

    async def js(self, expression: str):
        r = await self.send("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in r:
            raise RuntimeError(f"{expression[:80]}: {r['exceptionDetails'].get('text')}")
        return r["result"].get("value")

    async def wait_for(self, expression: str, timeout: float = 30.0):
        """The first truthy value of ``expression`` (evaluated every 0.1 s; navigations tolerated)."""
        end = time.monotonic() + timeout
        last = None
        while time.monotonic() < end:
            try:
                value = await self.js(expression)
                if value:
                    return value
            except RuntimeError as exc:  # the context was destroyed by a navigation
                last = exc
            await asyncio.sleep(0.1)
        url = await self.js("location.href")
        raise TimeoutError(f"{expression} not true after {timeout:.0f} s at {url} ({last})")

    async def goto(self, url: str) -> None:
        await self.send("Page.navigate", url=url)

    async def type_into(self, selector: str, text: str) -> None:
        """Focus and type (Input.insertText updates React's controlled inputs as a user would)."""
        await self.js(f"document.querySelector({json.dumps(selector)}).focus()")
        await self.send("Input.insertText", text=text)

    async def screenshot(self, path: Path) -> Path:
        shot = await self.send("Page.captureScreenshot", format="png")
        path.write_bytes(base64.b64decode(shot["data"]))
        return path

    def event_names(self) -> list[str]:
        return [e["method"] for e in self.events]

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self.ws.close()
        with contextlib.suppress(Exception):
            await self.browser.cdp.send("Target.disposeBrowserContext", browserContextId=self.context_id)


class Chromium:
    """``async with Chromium(binary, log_dir) as browser: page = await browser.new_page()``."""

    def __init__(self, binary: str, log_dir: Path, size: tuple[int, int] = (1400, 900)):
        self.binary, self.log_dir, self.size = binary, Path(log_dir), size
        self.proc: subprocess.Popen | None = None
        self.profile = ""
        self.port = 0
        self.cdp: Page | None = None

    async def __aenter__(self) -> Chromium:
        import websockets

        self.profile = tempfile.mkdtemp(prefix="ccwatch-chromium-")
        self.log_dir.mkdir(parents=True, exist_ok=True)
        with open(self.log_dir / "chromium.log", "ab") as log:
            self.proc = subprocess.Popen(
                [self.binary, *FLAGS, f"--user-data-dir={self.profile}", "--remote-debugging-address=127.0.0.1",
                 "--remote-debugging-port=0", f"--window-size={self.size[0]},{self.size[1]}", "about:blank"],
                stdout=subprocess.DEVNULL, stderr=log, start_new_session=True)
        port_file = Path(self.profile) / "DevToolsActivePort"
        end = time.monotonic() + 30
        while not (port_file.is_file() and port_file.read_text().strip()):
            if time.monotonic() > end or self.proc.poll() is not None:
                raise RuntimeError(f"Chromium did not start (see {self.log_dir / 'chromium.log'})")
            await asyncio.sleep(0.05)
        self.port = int(port_file.read_text().split()[0])
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/json/version", timeout=10) as resp:
            url = json.load(resp)["webSocketDebuggerUrl"]
        self.cdp = Page(await websockets.connect(url, max_size=None), self, "")
        return self

    async def new_page(self) -> Page:
        import websockets

        context = (await self.cdp.send("Target.createBrowserContext"))["browserContextId"]
        target = (await self.cdp.send("Target.createTarget", url="about:blank", browserContextId=context))["targetId"]
        ws = await websockets.connect(f"ws://127.0.0.1:{self.port}/devtools/page/{target}", max_size=None)
        page = Page(ws, self, context)
        for domain in ("Page", "Network", "Runtime", "Log"):
            await page.send(f"{domain}.enable")
        return page

    async def __aexit__(self, *exc) -> None:
        if self.cdp is not None:
            with contextlib.suppress(Exception):
                await self.cdp.ws.close()
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, 15)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, 9)
                self.proc.wait(10)
        for _ in range(20):  # helper processes may still write for a moment
            shutil.rmtree(self.profile, ignore_errors=True)
            if not os.path.exists(self.profile):
                break
            time.sleep(0.25)
