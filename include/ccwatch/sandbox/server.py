"""The sandbox HTTP server: one stdlib ThreadingHTTPServer serving GitHub, Jira and Slack doubles.

Every request goes through :meth:`SandboxServer._dispatch`: route to the service, then the
service's post-processing (GitHub ETag/304 and rate-limit headers), then the fault modes
(``ccwatch.sandbox.faults``: the scenario's ``faults`` and :meth:`SandboxServer.add_fault`), then an
ad-hoc :attr:`SandboxServer.fault_hook`, then recording. A Slack message is recorded only when its
successful answer is actually sent to a client that is still connected.

The recorded request log never holds an ``Authorization`` header or a token.

``latency_ms`` (CLI ``--latency-ms``) delays every answer by that many milliseconds, in the
request's own handler thread, so concurrent clients are not serialised (benchmarks use 30 ms,
a typical round trip to api.github.com; tests and the demo use 0).
"""

from __future__ import annotations

import copy
import json
import select
import socket
import struct
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from ccwatch.sandbox.http import SandboxRequest, SandboxResponse, graphql_summary, json_response

SCENARIO_KEYS = {"meta", "auth", "github", "jira", "slack", "faults"}
SECRET_PARAMS = {"token", "access_token", "client_secret"}


def load_scenario(scenario: dict | str | Path, *, copy_dict: bool = True) -> dict:
    """Return a private, validated copy of a scenario (a dict, a JSON file path, or JSON text).

    ``copy_dict=False`` serves a dict as given (no deep copy: for 100k-PR benchmark scenarios
    the caller promises not to change it while the server runs)."""
    if isinstance(scenario, dict):
        data = copy.deepcopy(scenario) if copy_dict else scenario
    else:
        text = str(scenario)
        if isinstance(scenario, str) and text.lstrip().startswith("{"):
            data = json.loads(text)
        else:
            data = json.loads(Path(text).read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ValueError("sandbox scenario: top level must be a JSON object")
    unknown = sorted(set(data) - SCENARIO_KEYS)
    if unknown:
        raise ValueError(f"sandbox scenario: unknown top-level key(s) {unknown}; allowed {sorted(SCENARIO_KEYS)}")
    for key in ("meta", "auth", "github", "jira", "slack"):
        if not isinstance(data.get(key) or {}, dict):
            raise ValueError(f"sandbox scenario: {key}: must be an object")
    for name in (data.get("github") or {}).get("repos", {}) or {}:
        if name.count("/") != 1:
            raise ValueError(f"sandbox scenario: github.repos: {name!r} is not 'owner/repo'")
    return data


FaultHook = Callable[[str, SandboxRequest, SandboxResponse], SandboxResponse | None]


def service_of(path: str) -> str:
    if path.startswith("/rest/"):
        return "jira"
    if path.startswith("/api/") and not path.startswith("/api/v3/") and path not in ("/api/v3", "/api/graphql"):
        return "slack"
    return "github"


class SandboxServer:
    """Serve a scenario on 127.0.0.1 from a daemon thread. Use as a context manager or start()/stop()."""

    def __init__(self, scenario: dict | str | Path, port: int = 0, host: str = "127.0.0.1", *,
                 latency_ms: float = 0, copy_scenario: bool = True, hold: PortHold | None = None):
        from ccwatch.sandbox.faults import FaultEngine
        from ccwatch.sandbox.github import GithubApi
        from ccwatch.sandbox.jira import JiraApi
        from ccwatch.sandbox.slack import SlackApi

        self.scenario = load_scenario(scenario, copy_dict=copy_scenario)
        if latency_ms < 0:
            raise ValueError("sandbox: latency_ms must be >= 0")
        self.latency_ms = float(latency_ms)
        self.sleep: Callable[[float], None] = time.sleep  # the latency's wait (tests record it)
        self._faults = FaultEngine(self.scenario.get("faults"), self._route)
        self.faults = self._faults.faults  # the active fault dicts (docs/SANDBOX.md "Fault modes")
        self._hook: FaultHook | None = None
        self._hooks_set: list[FaultHook] = []  # every hook set on this double, and the answers each changed
        self._hook_changes: dict[int, int] = {}
        self._pending = threading.local()  # the Slack message of the request being handled
        if hold is not None and port not in (0, hold.port):
            raise ValueError(f"sandbox: port {port} asked with a hold of port {hold.port}: give one or the other")
        self._bind = (host, port)
        self._hold = hold
        self._lock = threading.Lock()
        self._requests: list[dict] = []
        self._slack_messages: list[dict] = []
        self.github = GithubApi(self.scenario)
        self.jira = JiraApi(self.scenario)
        self.slack = SlackApi(self.scenario, self._record_slack_message)
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ----------------------------------------------------------------- lifecycle
    def start(self) -> SandboxServer:
        if self._httpd is not None:
            return self
        handler = _make_handler(self)
        if self._hold is None:
            self._httpd = _Httpd(self._bind, handler)
        else:  # serve on a duplicate of the held socket: closing it leaves the port held
            self._httpd = _Httpd(self._bind, handler, bind_and_activate=False)
            self._httpd.socket.close()
            self._httpd.socket = self._hold.duplicate()
            self._httpd.server_address = self._httpd.socket.getsockname()
            self._httpd.server_name, self._httpd.server_port = self._httpd.server_address[:2]
        self._httpd.daemon_threads = True
        httpd = self._httpd
        self._thread = threading.Thread(target=lambda: httpd.serve_forever(poll_interval=0.05), name="ccwatch-sandbox", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is None:
            return
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._httpd = None
        self._thread = None

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._httpd is None:
            raise RuntimeError("sandbox server is not started")
        return self._httpd.server_address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # ----------------------------------------------------------------- recordings
    @property
    def requests(self) -> list[dict]:
        with self._lock:
            return copy.deepcopy(self._requests)

    @property
    def slack_messages(self) -> list[dict]:
        with self._lock:
            return copy.deepcopy(self._slack_messages)

    def request_count(self) -> int:
        """How many requests are recorded (cheap: for slicing with :meth:`requests_since`)."""
        with self._lock:
            return len(self._requests)

    def requests_since(self, start: int = 0) -> list[dict]:
        """Shallow copies of the recorded requests from index ``start`` (benchmarks count these)."""
        with self._lock:
            return [dict(r) for r in self._requests[start:]]

    def clear_recordings(self) -> None:
        with self._lock:
            self._requests.clear()
            self._slack_messages.clear()

    def add_fault(self, fault: dict) -> dict:
        """Activate one fault mode (see ``ccwatch.sandbox.faults``); returns the checked fault."""
        return self._faults.add(fault)

    def clear_faults(self) -> None:
        self._faults.clear()

    def unfired_faults(self) -> list[dict]:
        """The faults added to this double (scenario, ``add_fault``; cleared ones too) that changed no answer."""
        return self._faults.unfired()

    @property
    def fault_hook(self) -> FaultHook | None:
        """An ad-hoc fault, applied after the declared ones: ``hook(service, req, resp)`` returns the
        answer to send instead, or None to send ``resp``."""
        return self._hook

    @fault_hook.setter
    def fault_hook(self, hook: FaultHook | None) -> None:
        self._hook = hook
        if hook is not None and all(h is not hook for h in self._hooks_set):
            self._hooks_set.append(hook)

    def unfired_hooks(self) -> list[FaultHook]:
        """The fault hooks set on this double (unset ones too) that changed no answer: each returned
        None, or the answer it was given, every time it was called."""
        with self._lock:
            return [h for h in self._hooks_set if not self._hook_changes.get(id(h))]

    def _record_slack_message(self, payload: dict) -> None:
        # kept until the answer is sent (see _dispatch / on_sent): a client that got a 429 or
        # nothing at all has not posted a message
        self._pending.payload = copy.deepcopy(payload)

    def _store_slack_message(self, payload: dict) -> None:
        with self._lock:
            self._slack_messages.append(payload)

    # ----------------------------------------------------------------- dispatch
    def _dispatch(self, req: SandboxRequest) -> SandboxResponse:
        if req.path.startswith("/_sandbox/"):
            return self._introspect(req)
        service = service_of(req.path)
        self._pending.payload = None
        resp = self._route(service, req)
        if service == "github":
            resp = self.github.finish(req, resp)
        payload = self._pending.payload
        self._pending.payload = None
        if payload is not None and resp.status == 200:
            resp.on_sent = lambda: self._store_slack_message(payload)
        resp = self._faults.apply(service, req, resp)
        hook = self._hook
        if hook is not None:
            changed = hook(service, req, resp)
            if changed is not None and changed is not resp:
                with self._lock:
                    self._hook_changes[id(hook)] = self._hook_changes.get(id(hook), 0) + 1
                resp = changed
        query = {k: (v[-1] if len(v) == 1 else list(v)) for k, v in req.query.items() if k not in SECRET_PARAMS}
        record = {"method": req.method, "path": req.path, "query": query, "status": resp.status, "service": service}
        if req.method == "POST" and req.path.endswith("/graphql"):
            record["graphql"] = graphql_summary(req.body)
        with self._lock:
            self._requests.append(record)
        return resp

    def _route(self, service: str, req: SandboxRequest) -> SandboxResponse:
        try:
            if service == "github":
                return self.github.handle(req)
            if service == "jira":
                return self.jira.handle(req)
            return self.slack.handle(req)
        except Exception as exc:  # a sandbox bug must surface as a 500, not a hung client
            return json_response({"message": f"sandbox error: {type(exc).__name__}: {exc}"}, status=500)

    def _introspect(self, req: SandboxRequest) -> SandboxResponse:
        if req.path == "/_sandbox/requests":
            return json_response(self.requests)
        if req.path == "/_sandbox/slack/messages":
            return json_response(self.slack_messages)
        if req.path == "/_sandbox/health":
            return json_response({"ok": True})
        return json_response({"message": "Not Found"}, status=404)


class _Httpd(ThreadingHTTPServer):
    request_queue_size = 128  # a thread pool of clients connects at once (the default backlog is 5)


class PortHold:
    """A port on 127.0.0.1 this process keeps across doubles.

    A night's stored ETags and URLs name the double's port, so the next night's double must answer
    on the same one.  Stopping one double and binding a new one on its port leaves a gap in which any
    process on the machine can be given that port.  A hold keeps a listening socket open; a double
    started with ``hold=`` serves on a duplicate of it and closes only the duplicate.  Between two
    doubles a client's connection waits in the backlog for the next one."""

    def __init__(self, host: str = "127.0.0.1"):
        self._sock = socket.create_server((host, 0), backlog=_Httpd.request_queue_size)
        self.port: int = self._sock.getsockname()[1]

    def duplicate(self) -> socket.socket:
        return self._sock.dup()

    def close(self) -> None:
        self._sock.close()

    def __enter__(self) -> PortHold:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _make_handler(server: SandboxServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # headers and body go out in separate writes
        server_version = "ccwatch-sandbox"
        sys_version = ""

        def _handle(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            parts = urlsplit(self.path)
            host = self.headers.get("Host") or f"127.0.0.1:{server.port}"
            req = SandboxRequest(
                method=self.command,
                path=parts.path,
                query=parse_qs(parts.query, keep_blank_values=True),
                headers=self.headers,
                body=body,
                host=host,
                raw_target=self.path,
            )
            if server.latency_ms and not req.path.startswith("/_sandbox/"):
                server.sleep(server.latency_ms / 1000.0)  # this handler thread only
            resp = server._dispatch(req)
            if resp.abort:  # fault "reset": drop the connection without an answer (RST)
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                self.close_connection = True
                return
            if self._peer_gone():  # the client gave up (timeout) while the answer was slow
                self.close_connection = True
                return
            if resp.on_sent is not None:
                resp.on_sent()
            payload = resp.body_bytes()
            self.send_response(resp.status)
            if resp.status != 304:
                self.send_header("Content-Type", resp.content_type)
            for name, value in resp.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            if payload and self.command != "HEAD":
                self.wfile.write(payload)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _handle

        def _peer_gone(self) -> bool:
            try:
                readable, _, _ = select.select([self.connection], [], [], 0)
                return bool(readable) and self.connection.recv(1, socket.MSG_PEEK) == b""
            except OSError:
                return True

        def handle(self) -> None:
            try:
                super().handle()
            except (BrokenPipeError, ConnectionResetError):  # the client went away mid-answer
                self.close_connection = True

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - silence stderr access log
            return

    return Handler
