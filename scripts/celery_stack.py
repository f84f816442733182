"""Processes and backing services of the integration tests that run a real Airflow: the
CeleryExecutor test (scripts/celery_it.py) and the Compliance page's browser test
(tests/system/test_compliance_page.py).

PostgreSQL and Redis from Debian's packages, each on a free 127.0.0.1 port with its data in a
throw-away folder; Airflow's api-server with the SimpleAuthManager, deterministic passwords and
the secrets every component shares; every process in its own session so that Stack.stop() ends
exactly the processes this run started (and their children), never anything else.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

DEBIAN_PACKAGES = ("postgresql", "redis-server")
BACKENDS = ("postgres", "redis", "sandbox")  # stopped after the Airflow components
T0 = time.monotonic()
LABEL = "celery-it"  # the prefix of the progress lines (the Compliance page's test sets its own)


def say(msg: str) -> None:
    print(f"[{LABEL} {time.monotonic() - T0:6.1f}s] {msg}", flush=True)


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


# --- Airflow: secrets, SimpleAuthManager, api-server ------------------------------------------------

AIRFLOW = str(Path(sys.executable).with_name("airflow"))
SIMPLE_AUTH_MANAGER = "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"


def shared_secrets() -> dict[str, str]:
    """Fresh secrets that every component of one Airflow must share (compose: from .env): with an
    empty one each process would invent its own, and tokens signed by one would fail in another."""
    return {
        "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(64),  # >= 64 bytes for HS512
        "AIRFLOW__API__SECRET_KEY": secrets.token_urlsafe(32),
        "AIRFLOW__CORE__FERNET_KEY": base64.urlsafe_b64encode(secrets.token_bytes(32)).decode(),
    }


def simple_auth_env(passwords_file: Path, users: dict[str, tuple[str, str]]) -> dict[str, str]:
    """The SimpleAuthManager with these users (name -> (role, password)); the passwords are written
    to ``passwords_file`` first, so the auth manager generates none (it only does for users missing
    from that file). Never "all admins": every visitor would be an admin without logging in."""
    passwords_file.parent.mkdir(parents=True, exist_ok=True)
    passwords_file.write_text(json.dumps({name: pw for name, (_role, pw) in users.items()}), encoding="utf-8")
    return {
        "AIRFLOW__CORE__AUTH_MANAGER": SIMPLE_AUTH_MANAGER,
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": ",".join(f"{n}:{role}" for n, (role, _pw) in users.items()),
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords_file),
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "False",
    }


def migrate_db(stack: Stack, env: dict, cwd: Path, wait: bool = True) -> subprocess.Popen:
    """``airflow db migrate`` (log: <logs>/db-migrate.log); with ``wait`` False the caller calls
    :func:`finish_migration` later (the migration can overlap other set-up)."""
    out = open(stack.logs / "db-migrate.log", "ab")  # noqa: SIM115 - lives as long as the process
    proc = subprocess.Popen([AIRFLOW, "db", "migrate"], env=env, stdout=out, stderr=subprocess.STDOUT, cwd=cwd)
    out.close()
    if wait:
        finish_migration(stack, proc)
    return proc


def finish_migration(stack: Stack, proc: subprocess.Popen, timeout: float = 600) -> None:
    if proc.wait(timeout=timeout):
        raise RuntimeError(f"airflow db migrate failed (see {stack.logs / 'db-migrate.log'})")
    say("metadata DB migrated")


def start_api_server(stack: Stack, env: dict, port: int) -> str:
    """``airflow api-server`` on 127.0.0.1:port with one worker; returns its base URL (not waited for)."""
    stack.start("api-server", [AIRFLOW, "api-server", "--host", "127.0.0.1", "--port", str(port), "-w", "1"], env)
    return f"http://127.0.0.1:{port}"


def wait_api_server(stack: Stack, base: str, timeout: float = 120) -> None:
    def healthy():
        with urllib.request.urlopen(f"{base}/api/v2/monitor/health", timeout=5) as resp:
            return resp.status == 200

    wait_for("api-server", healthy, timeout, stack)
    say(f"api-server on {base}")


class Api:
    """The Airflow 3 REST API (/api/v2) with a SimpleAuthManager JWT from /auth/token."""

    def __init__(self, base: str, user: str, password: str):
        self.base, self.user, self.password, self.token = base.rstrip("/"), user, password, None

    def _call(self, method: str, path: str, body=None, auth: bool = True):
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if auth:
            headers["Authorization"] = f"Bearer {self.login()}"
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.base + path, data=data, method=method, headers=headers)
        with urllib.request.urlopen(req, timeout=30) as resp:
            return json.loads(resp.read() or b"null")

    def login(self) -> str:
        if not self.token:
            got = self._call(
                "POST", "/auth/token", {"username": self.user, "password": self.password}, auth=False
            )
            self.token = got["access_token"]
        return self.token

    def get(self, path):
        return self._call("GET", path)

    def post(self, path, body):
        return self._call("POST", path, body)

    def patch(self, path, body):
        return self._call("PATCH", path, body)
