"""Run pipeline stages for one date in a process of its own and SIGKILL it at a chosen point.

Used by tests/integration/pipeline/test_crash_safety.py (as Airflow runs each task in a process of
its own).  The kill
point is installed *before* the stages run, by wrapping a product function from the outside (no
test hooks in product code).  At the point the process writes ``--marker`` (the point's name) and
sends itself SIGKILL: no ``finally``, no ``atexit``, no flush.

    python -m tests.helpers.crash_driver --home H --url SANDBOX_URL --date 2026-11-25 \
        --stages ingest,load,facts,evaluate,evidence --kill ingest_mid_fetch --marker M

(from the repository root, so that ``tests`` is importable).

``--serve`` imports the stack once and then forks one fresh process per job read from stdin (one
JSON object a line with the same keys, plus ``id`` and ``log``, the child's stderr file); it
answers ``{"id", "returncode"}`` a line on stdout when the child has ended (-9: SIGKILL).  The
server is single-threaded, so forking is safe; the kill point is installed in the child only.

Stages: ingest (GitHub, Jira, referenced tickets), load, facts, evaluate, evidence.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import sys
import threading
from pathlib import Path

from tests.helpers.paths import CONFIG, ROOT

STAGES = ("ingest", "load", "facts", "evaluate", "evidence")
_MARKER: Path | None = None
_DYING = threading.Lock()  # held by the thread that dies


def die(point: str) -> None:
    """Leave the marker, then die the hard way at this exact point.  The first thread to get here
    does it; another one (the GitHub fetch runs a thread per repository) waits for the kill, so it
    cannot truncate the marker the first one wrote."""
    _DYING.acquire()
    if _MARKER is not None:
        _MARKER.write_text(point, encoding="utf-8")
    os.kill(os.getpid(), signal.SIGKILL)


def _counter(n: int):
    state = {"calls": 0}

    def hit() -> bool:
        state["calls"] += 1
        return state["calls"] >= n
    return hit


class _KillingConnection:
    """A DuckDB connection that dies right after a statement matching ``pattern`` has executed."""

    def __init__(self, con, pattern: re.Pattern, point: str):
        self._con, self._pattern, self._point = con, pattern, point

    def execute(self, sql, *args, **kwargs):
        out = self._con.execute(sql, *args, **kwargs)
        if self._pattern.search(" ".join(str(sql).split())):
            die(self._point)
        return out

    def __getattr__(self, name):
        return getattr(self._con, name)


def _kill_after_sql(point: str, pattern: str) -> None:
    from ccwatch.warehouse import connection

    real = connection.connect
    rx = re.compile(pattern, re.IGNORECASE)

    def connect(path, read_only=False):
        con = real(path, read_only=read_only)
        return con if read_only else _KillingConnection(con, rx, point)
    connection.connect = connect


def install(point: str) -> None:
    """Arm the kill point ``point`` (test_crash_safety.CASES and its check_<case> say what each one leaves)."""
    if point == "none":
        return
    if point == "ingest_mid_fetch":  # after 10 raw records of the GitHub fetch were staged
        from ccwatch.ingest.github import fanout

        real_fetch, hit = fanout.fetch_github_repo, _counter(10)

        def fetch_github_repo(*a, **k):  # per repository, in the threads of the fan-out
            for rec in real_fetch(*a, **k):
                yield rec
                if hit():
                    die(point)
        fanout.fetch_github_repo = fetch_github_repo
    elif point in ("load_before_commit", "load_after_commit"):
        from ccwatch.warehouse import store

        real_load = store.load_records

        def load_records(con, records, settings, before_commit=None):
            if point == "load_after_commit":
                out = real_load(con, records, settings, before_commit=before_commit)
                die(point)  # committed; the pending mark and the ingest state are not updated yet
                return out

            def chained(c):
                if before_commit is not None:
                    before_commit(c)
                die(point)  # every row of the batch and the run's 'loaded' mark written, not committed
            return real_load(con, records, settings, before_commit=chained)
        store.load_records = load_records
    elif point == "state_before_rename":  # the new ingest state is complete in its temp file
        real_replace = os.replace

        def replace(src, dst, *a, **k):
            if Path(dst).name == "ingest_state.json":
                die(point)
            return real_replace(src, dst, *a, **k)
        os.replace = replace
    elif point == "evaluate_mid_gx":  # five controls' suites validated by GX
        from ccwatch.controls import gx_validate as validation

        real_ids, hit = validation._unexpected_ids, _counter(5)

        def unexpected_ids(*a, **k):
            out = real_ids(*a, **k)
            if hit():
                die(point)
            return out
        validation._unexpected_ids = unexpected_ids
    elif point == "evaluate_after_delete":  # the date's control_results deleted, new ones not inserted
        _kill_after_sql(point, r"^DELETE FROM control_results\b")
    elif point == "evaluate_runs_write":  # right after the first statement that writes the run's stage
        _kill_after_sql(point, r"^(DELETE FROM|INSERT (OR REPLACE )?INTO) runs\b")
    elif point == "evidence_mid_tree":  # 20 of the 68 change folders written in the temp folder
        from ccwatch.publish.evidence import folder

        real_files, hit = folder.change_evidence_files, _counter(20)

        def change_evidence_files(*a, **k):
            if hit():
                die(point)
            return real_files(*a, **k)
        folder.change_evidence_files = change_evidence_files
    elif point == "evidence_folder_swap":  # the previous folder moved aside, the new one not yet in place
        real_rename = os.rename

        def rename(src, dst, *a, **k):
            real_rename(src, dst, *a, **k)
            if re.fullmatch(r"\.\d{4}-\d{2}-\d{2}\.old-\d+", Path(dst).name):
                die(point)
        os.rename = rename
    elif point == "archive_mid_tar":  # temp archive: its first part and half the change folders' part written
        from ccwatch.publish.evidence import archive

        def copy_part(src, dst):
            data = Path(src).read_bytes()
            dst.write(data[:len(data) // 2])
            dst.flush()
            die(point)
        archive._copy_part = copy_part
    elif point == "archive_before_publish":  # temp archive complete and fsynced, not yet linked
        from ccwatch.publish.evidence import archive

        def publish(*a, **k):
            die(point)
        archive.publish = publish
    elif point == "archive_after_link":  # final name linked, the temp name not yet removed
        real_link = os.link

        def link(src, dst, *a, **k):
            real_link(src, dst, *a, **k)
            die(point)
        os.link = link
    else:
        raise SystemExit(f"unknown kill point {point!r}")


def run(home: Path, url: str, date: str, stages: list[str]) -> None:
    from ccwatch import pipeline as p
    from ccwatch.common.endpoints import Endpoint
    from ccwatch.common.times import parse_as_of
    from ccwatch.demo_env import DEMO_AUTH
    from ccwatch.settings import load_settings

    settings = load_settings(str(CONFIG))  # the demo org's config
    as_of = parse_as_of(date)
    gh = Endpoint(url + "/api/v3", token=DEMO_AUTH["github_token"])
    jr = Endpoint(url, login=DEMO_AUTH["jira_user"], token=DEMO_AUTH["jira_token"])
    for stage in stages:
        if stage == "ingest":
            p.ingest_github(settings, gh, as_of, home)
            p.ingest_jira(settings, jr, as_of, home)
            p.resolve_tickets(settings, jr, as_of, home)
        elif stage == "load":
            p.load_warehouse(settings, as_of, home)
        elif stage == "facts":
            p.build_facts(settings, as_of, home)
        elif stage == "evaluate":
            p.evaluate_controls(settings, as_of, home)
        elif stage == "evidence":
            p.write_evidence(settings, as_of, home, endpoints(url))


def endpoints(url: str) -> dict[str, str]:
    """The endpoints recorded in the manifest (the same in the test's uninterrupted run)."""
    return {"github": url + "/api/v3", "jira": url}


def _child(job: dict) -> None:
    """In the forked process: stderr to the job's log, arm the kill point, run; never returns."""
    global _MARKER
    code = 1
    try:
        out = os.open(os.devnull, os.O_WRONLY)
        err = os.open(job["log"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(out, 1)
        os.dup2(err, 2)
        _MARKER = Path(job["marker"]) if job.get("marker") else None
        install(job.get("kill") or "none")
        run(Path(job["home"]), job["url"], job["date"], [s for s in job["stages"].split(",") if s])
        code = 0
    except BaseException:  # noqa: BLE001 - reported through the log and the exit code
        import traceback

        traceback.print_exc()
    finally:
        try:
            sys.stderr.flush()
        finally:
            os._exit(code)


def serve() -> int:
    import select

    from ccwatch.ingest.github import fanout  # noqa: F401

    # everything the stages import lazily, once, before any fork
    from ccwatch.publish.evidence import archive  # noqa: F401
    from ccwatch.warehouse import facts, population, store  # noqa: F401

    running: dict[int, str] = {}
    buf, stdin_open, fd = b"", True, sys.stdin.fileno()
    while stdin_open or running:
        if stdin_open and select.select([fd], [], [], 0.02)[0]:
            chunk = os.read(fd, 1 << 16)
            stdin_open = bool(chunk)
            buf += chunk
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                job = json.loads(line)
                pid = os.fork()
                if pid == 0:
                    _child(job)
                running[pid] = job["id"]
        elif not stdin_open:
            select.select([], [], [], 0.02)
        while running:
            pid, status = os.waitpid(-1, os.WNOHANG)
            if pid == 0:
                break
            os.write(1, (json.dumps({"id": running.pop(pid), "returncode": os.waitstatus_to_exitcode(status)})
                         + "\n").encode())
    return 0


def main(argv: list[str] | None = None) -> int:
    global _MARKER
    ap = argparse.ArgumentParser()
    ap.add_argument("--serve", action="store_true")
    ap.add_argument("--home", type=Path)
    ap.add_argument("--url")
    ap.add_argument("--date")
    ap.add_argument("--stages", default=",".join(STAGES))
    ap.add_argument("--kill", default="none")
    ap.add_argument("--marker", type=Path)
    args = ap.parse_args(argv)
    if args.serve:
        return serve()
    if not (args.home and args.url and args.date):
        ap.error("--home, --url and --date are required")
    stages = [s for s in args.stages.split(",") if s]
    unknown = set(stages) - set(STAGES)
    if unknown:
        raise SystemExit(f"unknown stages {sorted(unknown)}")
    _MARKER = args.marker
    install(args.kill)
    run(args.home, args.url, args.date, stages)
    return 0


if __name__ == "__main__":
    sys.path[:0] = [str(ROOT / "include"), str(ROOT / "plugins")]
    sys.exit(main())
