"""Processes and backing services of the CeleryExecutor integration test (scripts/celery_it.py).

PostgreSQL and Redis from Debian's packages, each on a free 127.0.0.1 port with its data in a
throw-away folder; every process in its own session so that Stack.stop() ends exactly the
processes this run started (and their children), never anything else.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

DEBIAN_PACKAGES = ("postgresql", "redis-server")
BACKENDS = ("postgres", "redis", "sandbox")  # stopped after the Airflow components
T0 = time.monotonic()


def say(msg: str) -> None:
    print(f"[celery-it {time.monotonic() - T0:6.1f}s] {msg}", flush=True)


def read_env_file(path: Path) -> dict[str, str]:
    """KEY=value lines (comments and blank lines skipped); values are literal, as compose's env_file."""
    values = {}
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        if not sep or not key.isidentifier() or "$" in value or value[:1] in "'\"":
            raise ValueError(f"{path}:{n}: expected KEY=literal-value, got {line!r}")
        values[key] = value
    return values


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- Debian packages ------------------------------------------------------------------


def pg_bindir() -> Path | None:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parts[-3]))
    if found:
        return found[-1].parent
    initdb = shutil.which("initdb")
    return Path(initdb).resolve().parent if initdb else None


def missing_binaries() -> list[str]:
    missing = [] if pg_bindir() else ["postgresql (initdb, postgres)"]
    return missing + ([] if shutil.which("redis-server") else ["redis-server"])


def install_debian_packages() -> float:
    """apt-get install PostgreSQL and Redis when missing (root only); returns the seconds spent."""
    if not missing_binaries():
        return 0.0
    if os.geteuid() != 0:
        raise SystemExit(
            f"missing {missing_binaries()}: run as root, or: sudo apt-get install {' '.join(DEBIAN_PACKAGES)}"
        )
    t = time.monotonic()
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    say(f"apt-get install {' '.join(DEBIAN_PACKAGES)}")
    subprocess.run(["apt-get", "update", "-qq"], env=env, check=True, stdout=subprocess.DEVNULL)
    subprocess.run(
        ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *DEBIAN_PACKAGES],
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    if missing_binaries():
        raise SystemExit(f"still missing after apt-get: {missing_binaries()}")
    return time.monotonic() - t


# --- processes --------------------------------------------------------------------------


class Stack:
    """The processes this run started, each in its own session, stopped in reverse order."""

    def __init__(self, logs: Path):
        self.logs = logs
        self.procs: list[tuple[str, subprocess.Popen, int]] = []

    def start(
        self,
        name: str,
        argv: list[str],
        env: dict,
        *,
        user: str | None = None,
        stop_signal: int = signal.SIGTERM,
        cwd: Path | None = None,
    ) -> subprocess.Popen:
        out = open(self.logs / f"{name}.log", "ab")  # noqa: SIM115 - lives as long as the process
        kwargs = {"user": user, "group": user, "extra_groups": []} if user else {}
        proc = subprocess.Popen(
            argv,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=cwd or self.logs,
            start_new_session=True,
            **kwargs,
        )
        out.close()
        self.procs.append((name, proc, stop_signal))
        say(f"started {name} (pid {proc.pid})")
        return proc

    def check_alive(self) -> None:
        for name, proc, _ in self.procs:
            if proc.poll() is not None:
                raise RuntimeError(
                    f"{name} exited early with code {proc.returncode} (see {self.logs / name}.log)"
                )

    def stop(self) -> None:
        """SIGTERM (SIGINT for PostgreSQL: fast shutdown) to every process group, newest first;
        the Airflow components together, then the services they depend on."""
        tiers = [[p for p in self.procs if p[0] not in BACKENDS], [p for p in self.procs if p[0] in BACKENDS]]
        for tier in tiers:
            t = time.monotonic()
            for _name, proc, sig in reversed(tier):
                if proc.poll() is None:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(proc.pid, sig)
            for name, proc, _sig in reversed(tier):
                try:
                    proc.wait(timeout=max(1.0, 20 - (time.monotonic() - t)))
                except subprocess.TimeoutExpired:
                    say(f"{name} did not stop in 20 s: SIGKILL")
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait(timeout=10)
            if tier:
                say(f"stopped {', '.join(n for n, *_ in tier)} in {time.monotonic() - t:.1f} s")
        # the process groups of this run only: stray children (task supervisors) go too
        for _name, proc, _ in self.procs:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
        self.procs.clear()


def wait_for(what: str, probe, timeout: float, stack: Stack, every: float = 0.5):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        stack.check_alive()
        try:
            got = probe()
            if got:
                return got
        except Exception as exc:  # noqa: BLE001 - retried until the deadline
            last = exc
        time.sleep(every)
    raise TimeoutError(f"{what} not ready after {timeout:.0f} s (last error: {last!r})")


# --- PostgreSQL and Redis -----------------------------------------------------------------


def start_postgres(stack: Stack, tmp: Path, password: str) -> int:
    import psycopg2

    bindir = pg_bindir()
    user = "postgres" if os.geteuid() == 0 else None  # initdb and postgres refuse to run as root
    data = tmp / "pgdata"
    data.mkdir(mode=0o700)
    pwfile = tmp / "pgpass"
    pwfile.write_text(password + "\n")
    if user:
        shutil.chown(tmp, user, user)
        shutil.chown(data, user, user)
        shutil.chown(pwfile, user, user)
    log = stack.logs / "postgres-initdb.log"
    with open(log, "wb") as out:
        rc = subprocess.run(
            [
                str(bindir / "initdb"),
                "-D",
                str(data),
                "-U",
                "airflow",
                f"--pwfile={pwfile}",
                "--auth-host=scram-sha-256",
                "--auth-local=trust",
                "-E",
                "UTF8",
                "--no-locale",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=tmp,
            user=user,
            group=user,
            extra_groups=[] if user else None,
        ).returncode
    pwfile.unlink()
    if rc:
        raise RuntimeError(f"initdb failed ({rc}): {log.read_text()[-2000:]}")
    port = free_port()
    # Durability settings off: a throw-away test database.
    stack.start(
        "postgres",
        [
            str(bindir / "postgres"),
            "-D",
            str(data),
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
            "-k",
            str(tmp),
            "-c",
            "fsync=off",
            "-c",
            "synchronous_commit=off",
            "-c",
            "full_page_writes=off",
            "-c",
            "max_connections=200",
        ],
        {"PATH": os.environ.get("PATH", ""), "LANG": "C.UTF-8"},
        user=user,
        stop_signal=signal.SIGINT,
        cwd=tmp,  # the postgres user may not be allowed into the checkout (e.g. under /root)
    )

    def ready():
        con = psycopg2.connect(
            host="127.0.0.1", port=port, user="airflow", password=password, dbname="postgres"
        )
        con.autocommit = True
        with con.cursor() as cur:
            cur.execute("SELECT 1 FROM pg_database WHERE datname = 'airflow'")
            if not cur.fetchone():
                cur.execute("CREATE DATABASE airflow")
        con.close()
        return True

    wait_for("PostgreSQL", ready, 60, stack)
    say(f"PostgreSQL {bindir.parts[-2]} on 127.0.0.1:{port}, database airflow")
    return port


def start_redis(stack: Stack, tmp: Path) -> int:
    import redis

    port = free_port()
    stack.start(
        "redis",
        [
            shutil.which("redis-server"),
            "--bind",
            "127.0.0.1",
            "--port",
            str(port),
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(tmp),
            "--protected-mode",
            "yes",
        ],
        {"PATH": os.environ.get("PATH", "")},
    )
    wait_for("Redis", lambda: redis.Redis(host="127.0.0.1", port=port, socket_timeout=2).ping(), 30, stack)
    say(f"Redis on 127.0.0.1:{port}")
    return port
