"""``python -m ccwatch.sandbox --scenario FILE [--port 0] [--ready-file PATH] [--latency-ms 0]``

Serves until SIGTERM/SIGINT. Prints the base URL on stdout and, once listening, writes it to
``--ready-file`` (written to a temporary name and renamed, so a reader never sees half a URL).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from pathlib import Path

from ccwatch.sandbox.server import SandboxServer


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ccwatch.sandbox", description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", required=True, help="scenario JSON file")
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0 = any free port)")
    parser.add_argument("--ready-file", help="write the base URL here once listening")
    parser.add_argument("--latency-ms", type=float, default=0.0,
                        help="delay every answer by this many milliseconds (benchmarks: 30; default 0)")
    args = parser.parse_args(argv)
    try:
        server = SandboxServer(args.scenario, port=args.port, latency_ms=args.latency_ms).start()
    except (OSError, ValueError) as exc:
        print(f"sandbox: cannot start: {exc}", file=sys.stderr)
        return 2
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    print(server.url, flush=True)
    if args.ready_file:
        ready = Path(args.ready_file)
        tmp = ready.with_name(ready.name + f".tmp{os.getpid()}")
        tmp.write_text(server.url + "\n", encoding="utf-8")
        tmp.replace(ready)
    try:
        while not stop.wait(0.5):
            pass
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
