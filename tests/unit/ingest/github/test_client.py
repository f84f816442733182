"""``client.own_client``: a client the caller gives stays the caller's; one of its own is closed."""

from __future__ import annotations

import pytest
from ccwatch.common.endpoints import Endpoint
from ccwatch.ingest.github import client as C


class Fake:
    closed = 0

    def close(self) -> None:
        self.closed += 1


def test_a_given_client_is_left_open_and_an_own_one_is_closed_even_on_error(monkeypatch):
    made: list[Fake] = []
    monkeypatch.setattr(C, "make_client", lambda endpoint: made.append(Fake()) or made[-1])
    endpoint = Endpoint("https://api.github.com", token="t")
    given = Fake()
    with C.own_client(endpoint, given) as gh:
        assert gh is given
    assert given.closed == 0 and made == []
    with pytest.raises(RuntimeError), C.own_client(endpoint) as gh:
        assert gh is made[0]
        raise RuntimeError("a fetch failed")
    assert made[0].closed == 1
