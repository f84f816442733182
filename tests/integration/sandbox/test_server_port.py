"""A port held across doubles (``sandbox.server.PortHold``).

A night's stored ETags and URLs name the double's port, so a test that runs two nights starts the
second night's double on the first one's port.  Closing the first double and binding the port again
left a gap in which another process on the machine could be given that port (two test suites side
by side: ``OSError: [Errno 98] Address already in use``).  A hold keeps the port bound between the
doubles, so nothing else can take it.
"""

from __future__ import annotations

import errno
import json
import socket
import urllib.request

import pytest
from ccwatch.sandbox import PortHold, SandboxServer

TOKEN = "xoxb-sandbox-test"


def scenario(channel: str) -> dict:
    return {"meta": {"as_of": "2026-11-25T00:00:00Z"}, "auth": {"slack_token": TOKEN},
            "slack": {"channels": {channel: "C0" + channel.upper()}}}


def channels(url: str) -> list[str]:
    req = urllib.request.Request(url + "/api/conversations.list", data=b"",
                                 headers={"Authorization": f"Bearer {TOKEN}"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        return [c["name"] for c in json.loads(resp.read())["channels"]]


def bind(port: int) -> None:
    """What another server does when the machine gives it ``port`` (SO_REUSEADDR, as Python's
    HTTP servers: the connections the double closed may still be in TIME_WAIT)."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", port))


def test_the_port_stays_taken_between_two_doubles_and_the_second_serves_its_own_scenario():
    with PortHold() as hold:
        with SandboxServer(scenario("first"), hold=hold) as server:
            assert server.port == hold.port
            assert channels(server.url) == ["first"]
        with pytest.raises(OSError) as taken:  # between the doubles: nobody else gets the port
            bind(hold.port)
        assert taken.value.errno == errno.EADDRINUSE
        with SandboxServer(scenario("second"), hold=hold) as server:
            assert server.port == hold.port
            assert channels(server.url) == ["second"]
    bind(hold.port)  # released with the hold


def test_a_double_without_a_hold_releases_its_port():
    with SandboxServer(scenario("only")) as server:
        port = server.port
        assert channels(server.url) == ["only"]
    bind(port)


def test_a_hold_and_another_port_is_refused():
    with PortHold() as hold, pytest.raises(ValueError, match="port"):
        SandboxServer(scenario("x"), port=hold.port + 1 if hold.port < 65535 else 1, hold=hold)
