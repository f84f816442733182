"""One port held for the test process's multi-day doubles (``sandbox.server.PortHold``).

A day's stored ETags and URLs name the double's port, so every day's double of a test must answer on
the same one, and no other process may be given it in between.  Tests whose helpers start a double
per day share this hold: it is opened on first use and closed when the process exits.
"""

from __future__ import annotations

import atexit

from ccwatch.sandbox import PortHold

_HOLD: list[PortHold] = []


def held_port() -> PortHold:
    if not _HOLD:
        _HOLD.append(PortHold())
        atexit.register(_HOLD[0].close)
    return _HOLD[0]
