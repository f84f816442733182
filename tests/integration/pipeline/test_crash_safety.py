"""Crash safety: SIGKILL the pipeline during ingest, load, evaluation and while writing the evidence.

Each case starts ``tests/helpers/crash_driver.py`` in a subprocess (as Airflow runs each task in its own
process) on a home copied from an uninterrupted run at the stage boundary the case starts from,
against the in-process API double.  The driver wraps one product function from the outside and
sends itself SIGKILL at the chosen point.  Then, for every case:

* the process died by SIGKILL at that point (its marker file names the point);
* the DuckDB file opens read-only and read-write; nothing under a final name is partial (staging
  files, plans, the ingest state, the GX results, the evidence folder and every archive verify),
  and archives that existed before the crash are byte-identical;
* stages that read the warehouse refuse the crashed date where they must;
* a normal rerun of the whole date (a fresh process, no manual cleanup) leaves no temp file behind
  and yields the control_results, normalised tables, population, GX results and evidence of an
  uninterrupted run in another home (only the fetch time and etag of the raw evidence and the
  archive's number may differ).

The processes are forked by one ``crash_driver --serve`` (the stack is imported once); the cases
run two at a time, each as soon as the snapshot it starts from exists.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tarfile
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pytest
from ccwatch import pipeline as p
from ccwatch.common.errors import StageError
from ccwatch.common.paths import staging_dir, state_path, validation_path
from ccwatch.common.times import parse_as_of
from ccwatch.demo_env import DEMO_AUTH
from ccwatch.ingest.records import read_staging
from ccwatch.ingest.staging import PENDING
from ccwatch.publish.evidence import retention
from ccwatch.publish.evidence import write as evidence
from ccwatch.publish.evidence.verify import verify_archive
from ccwatch.sandbox import SandboxServer
from ccwatch.settings import load_settings

from tests.helpers import crash_driver
from tests.helpers.paths import CONFIG, DEMO_SCENARIO, ROOT

DATE = "2026-11-25"
D = parse_as_of(DATE)
ALL = "ingest,load,facts,evaluate,evidence"
TABLES = ("pull_requests", "reviews", "checks", "commits", "deployments", "deployment_statuses", "branch_rules",
          "environments", "tickets", "ticket_transitions", "ticket_field_changes", "people")
ARCHIVE = f"ccwatch-evidence-{DATE}.tar.gz"
SNAPSHOT_AFTER = {"ingest": "staged", "load": "loaded", "evaluate": "evaluated", "evidence": "done"}
# names a killed writer leaves behind: staging/state/plan temp files, evidence temp/old folders, temp archives
LEFTOVER = re.compile(r"^\..*\.\d+\.tmp$|^\.\d{4}-\d{2}-\d{2}\.(tmp|old)-\d+$")
# evidence files that hash the others (and so the raw evidence's fetch times): compared by name only
HASHES = ("manifest.json", "SHA256SUMS")
# OSCAL says when the data was collected (the fetch span): compared without those times
OSCAL = "oscal-assessment-results.json"
OSCAL_FETCH_TIMES = ("start", "end", "collected", "last-modified")
# settings_at_merge.json names the earliest snapshot's time (a fetch time) when none precedes the merge
FETCH_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?Z")


@dataclass(frozen=True)
class Case:
    id: str
    point: str         # crash_driver kill point
    start: str | None  # snapshot of the uninterrupted run the crashed process starts from (None: empty home)
    stages: str        # what the crashed process runs


# in the order their snapshots appear (the order they are launched in)
CASES = [
    Case("ingest_mid_fetch", "ingest_mid_fetch", None, ALL),
    Case("load_before_commit", "load_before_commit", "staged", "load,facts,evaluate,evidence"),
    Case("load_after_commit", "load_after_commit", "staged", "load,facts,evaluate,evidence"),
    Case("state_before_rename", "state_before_rename", "staged", "load,facts,evaluate,evidence"),
    Case("evaluate_mid_gx", "evaluate_mid_gx", "loaded", "facts,evaluate,evidence"),
    Case("evaluate_runs_write", "evaluate_runs_write", "loaded", "facts,evaluate,evidence"),
    Case("evidence_mid_tree", "evidence_mid_tree", "evaluated", "evidence"),
    Case("archive_mid_tar", "archive_mid_tar", "evaluated", "evidence"),
    Case("archive_before_publish", "archive_before_publish", "evaluated", "evidence"),
    Case("archive_after_link", "archive_after_link", "evaluated", "evidence"),
    # reruns of a date whose run completed (its archive exists)
    Case("rerun_ingest_mid_fetch", "ingest_mid_fetch", "done", ALL),
    Case("rerun_evaluate_after_delete", "evaluate_after_delete", "done", "facts,evaluate,evidence"),
    Case("rerun_archive_mid_tar", "archive_mid_tar", "done", "evidence"),
    Case("rerun_evidence_folder_swap", "evidence_folder_swap", "done", "evidence"),
]


# --- helpers --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def settings():
    return load_settings(str(CONFIG))


@pytest.fixture(scope="module")
def sandbox():
    scenario = json.loads(DEMO_SCENARIO.read_text(encoding="utf-8"))
    scenario["auth"] = dict(DEMO_AUTH)
    with SandboxServer(scenario) as server:
        yield server


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def final_archives(home: Path) -> dict[str, str]:
    base = home / "evidence"
    return {a.name: sha(a) for a in sorted(base.glob("ccwatch-evidence-*.tar.gz"))} if base.is_dir() else {}


def leftovers(home: Path) -> list[str]:
    return sorted(str(x.relative_to(home)) for x in home.rglob("*") if LEFTOVER.match(x.name))


def db_state(home: Path) -> dict:
    """Everything the run decides, read from a read-only connection."""
    con = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
    try:
        out = {t: sorted(map(repr, con.execute(f'SELECT * FROM "{t}"').fetchall())) for t in TABLES}
        ts = D.replace(tzinfo=None)
        out["control_results"] = con.execute(
            "SELECT change_id, repo, control_id, status, detail FROM control_results WHERE as_of = ? "
            "ORDER BY change_id, control_id", [ts]).fetchall()
        out["population"] = sorted(map(repr, con.execute("SELECT * FROM population WHERE as_of = ?", [ts]).fetchall()))
        row = con.execute("SELECT stage FROM runs WHERE as_of = ?", [ts]).fetchone()
        out["stage"] = row[0] if row else None
    finally:
        con.close()
    return out


def _without_fetch_provenance(x):
    """Fetch time and etag (dropped when an incremental fetch merged stored list items) vary by fetch."""
    if isinstance(x, dict):
        return {k: _without_fetch_provenance(v) for k, v in x.items() if k not in ("fetched_at", "etag")}
    return [_without_fetch_provenance(v) for v in x] if isinstance(x, list) else x


def _without_keys(x, keys: tuple[str, ...]):
    if isinstance(x, dict):
        return {k: _without_keys(v, keys) for k, v in x.items() if k not in keys}
    return [_without_keys(v, keys) for v in x] if isinstance(x, list) else x


def evidence_files(folder: Path) -> dict[str, str | None]:
    """Relative path -> sha256 of the content; the raw evidence (changes/) without its fetch
    provenance, OSCAL without its collection times, the manifest and SHA256SUMS (which hash it) by
    name only."""
    out: dict[str, str | None] = {}
    for f in sorted(folder.rglob("*")):
        rel = f.relative_to(folder).as_posix()
        if not f.is_file() or rel in HASHES:
            out[rel] = None
        elif rel.startswith("changes/") or rel == "jira_field_list.json":  # raw records as fetched
            data = _without_fetch_provenance(json.loads(f.read_text(encoding="utf-8")))
            if rel.endswith("/settings_at_merge.json"):  # snapshot times are when GitHub answered
                data = json.loads(FETCH_TIME.sub("<fetch time>", json.dumps(_without_keys(data, ("taken_at",)))))
            out[rel] = hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()
        elif rel == "reconciliation.csv":  # searched_at: when the count was fetched
            rows = list(csv.DictReader(io.StringIO(f.read_text(encoding="utf-8"))))
            data = [{k: v for k, v in r.items() if k != "searched_at"} for r in rows]
            out[rel] = hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()
        elif rel == OSCAL:
            data = _without_keys(json.loads(f.read_text(encoding="utf-8")), OSCAL_FETCH_TIMES)
            out[rel] = hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()
        else:
            out[rel] = sha(f)
    return out


def tar_members(path: Path) -> list[str]:
    with tarfile.open(path, "r:gz") as tar:
        return sorted(tar.getnames())


# --- the uninterrupted run and the crashed processes ------------------------------------


@dataclass
class Crash:
    result: Future  # (returncode, stderr) of the crashing process
    home: Path
    marker: Path
    archives_before: dict[str, str]


class Launcher:
    """Runs the driver's processes: one ``crash_driver --serve`` imports the stack once and forks a
    fresh process per job.  The crashing processes run two at a time, each as soon as the snapshot
    it starts from exists, while the uninterrupted run and the earlier cases are being checked."""

    def __init__(self, url: str, settings, tmp_path_factory):
        self.url, self.settings, self.tmp = url, settings, tmp_path_factory
        self.baseline: Future = Future()  # the uninterrupted run's results (set by the baseline fixture)
        self.logs = tmp_path_factory.mktemp("driver-logs")
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW_CONN_", "CCWATCH_"))}
        env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "include"), str(ROOT / "plugins")])
        self.server = subprocess.Popen([sys.executable, "-m", "tests.helpers.crash_driver", "--serve"], cwd=ROOT,
                                       env=env, text=True,
                                       stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                       stderr=(self.logs / "server.log").open("w"))
        self.waiting: dict[str, Future] = {}
        self.lock = threading.Lock()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        self.pool = ThreadPoolExecutor(max_workers=2)
        self.crashes: dict[str, Crash] = {}

    def _read(self) -> None:
        for line in self.server.stdout:
            done = json.loads(line)
            with self.lock:
                self.waiting.pop(done["id"]).set_result(done["returncode"])
        with self.lock:  # the server died: nobody waits forever
            for fut in self.waiting.values():
                fut.set_exception(RuntimeError(f"crash_driver --serve ended: {self.logs / 'server.log'}"))

    def run(self, job_id: str, home: Path, stages: str, kill: str = "none", marker: Path | None = None,
            timeout: float = 300) -> tuple[int, str]:
        """Run the stages in a fresh process; (exit code, -9 for SIGKILL; its stderr)."""
        log = self.logs / f"{job_id}.log"
        fut: Future = Future()
        with self.lock:
            self.waiting[job_id] = fut
            self.server.stdin.write(json.dumps({"id": job_id, "home": str(home), "url": self.url, "date": DATE,
                                                "stages": stages, "kill": kill, "log": str(log),
                                                "marker": str(marker) if marker else None}) + "\n")
            self.server.stdin.flush()
        code = fut.result(timeout=timeout)
        return code, log.read_text(encoding="utf-8") if log.exists() else ""

    def start(self, start: str | None, snapshot: Path | None = None) -> None:
        """Launch the cases that start from ``snapshot`` (a copy of it each)."""
        for case in (c for c in CASES if c.start == start):
            root = self.tmp.mktemp(case.id)
            home = root / "home"
            if snapshot is not None:
                shutil.copytree(snapshot, home)
            else:
                home.mkdir()
            crash = Crash(Future(), home, root / "killed-at", final_archives(home))
            crash.result = self.pool.submit(self._case, case, crash)
            self.crashes[case.id] = crash

    def _case(self, case: Case, crash: Crash) -> None:
        """Kill, check what the killed process left, then rerun the whole date in a fresh process."""
        code, err = self.run(f"crash-{case.id}", crash.home, case.stages, case.point, crash.marker)
        assert code == -signal.SIGKILL, err[-3000:]
        assert crash.marker.read_text() == case.point, "killed at the chosen point"
        assert_nothing_partial(crash.home, crash.archives_before)
        globals()[f"check_{case.id}"](crash.home, self.settings, self.baseline.result(timeout=300))
        # the next normal run of the date: no manual cleanup
        code, err = self.run(f"rerun-{case.id}", crash.home, ALL)
        assert code == 0, err[-3000:]

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)
        self.server.stdin.close()
        try:
            self.server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.server.kill()


@pytest.fixture(scope="module")
def launcher(sandbox, settings, tmp_path_factory):
    launch = Launcher(sandbox.url, settings, tmp_path_factory)
    yield launch
    launch.close()


@pytest.fixture(scope="module")
def baseline(settings, sandbox, launcher, tmp_path_factory):
    """The uninterrupted run of the date; the cases start from copies of its home at the stage
    boundaries (an empty home for the first)."""
    root = tmp_path_factory.mktemp("baseline")
    home = root / "home"
    home.mkdir()
    launcher.start(None)

    def snap(name):
        shutil.copytree(home, root / name)
        launcher.start(name, root / name)

    try:
        for stage in crash_driver.STAGES:  # the driver's stage bodies, in this process
            crash_driver.run(home, sandbox.url, DATE, [stage])
            if stage in SNAPSHOT_AFTER:
                snap(SNAPSHOT_AFTER[stage])
        out = {"home": home, "db": db_state(home), "evidence": evidence_files(home / "evidence" / DATE),
               "gx": (home / "validations" / f"{DATE}.json").read_text(encoding="utf-8"),
               "members": tar_members(home / "evidence" / ARCHIVE)}
    except BaseException as exc:
        launcher.baseline.set_exception(exc)
        raise
    launcher.baseline.set_result(out)
    return out


# --- what each crash must leave -----------------------------------------------------------


def refuses(stage, match: str) -> None:
    with pytest.raises(StageError, match=match):
        stage()


def _sdir(home: Path) -> Path:
    return staging_dir(home, D)


def _github_staged(home: Path) -> list[str]:
    return sorted(x.name for x in (_sdir(home) / "github").glob("*.jsonl"))


def check_ingest_mid_fetch(home, settings, baseline):
    assert (_sdir(home) / PENDING).exists(), "the interrupted ingest leaves the date pending"
    assert _github_staged(home) == [], "a half-fetched staging file is never under its final name"
    assert [x.name for x in (_sdir(home) / "github").glob(".*.jsonl.*.tmp")], "the partial fetch stayed in its temp file"
    refuses(lambda: p.load_warehouse(settings, D, home), "missing .*the GitHub staging of acme/")
    refuses(lambda: p.build_facts(settings, D, home), "does not exist|not loaded")


def check_rerun_ingest_mid_fetch(home, settings, baseline):
    """The date's earlier run is complete, but a newer ingest of it started: readers must not
    serve the earlier load as this run's."""
    assert (_sdir(home) / PENDING).exists() and _github_staged(home) == []
    assert db_state(home)["control_results"] == baseline["db"]["control_results"], "the earlier results stay"
    refuses(lambda: p.build_facts(settings, D, home), "not loaded")
    refuses(lambda: p.write_evidence(settings, D, home, {}), "not loaded")
    refuses(lambda: p.load_warehouse(settings, D, home), "missing .*the GitHub staging of acme/")


def check_load_before_commit(home, settings, baseline):
    db = db_state(home)
    assert db["stage"] is None and db["pull_requests"] == [] and db["control_results"] == [], "nothing committed"
    assert not state_path(home).exists()
    assert (_sdir(home) / PENDING).exists()
    refuses(lambda: p.build_facts(settings, D, home), "not loaded")


def check_load_after_commit(home, settings, baseline):
    db = db_state(home)
    assert db["stage"] == "loaded" and db["pull_requests"] == baseline["db"]["pull_requests"]
    assert not state_path(home).exists(), "the state is published only after the pending mark is cleared"
    assert (_sdir(home) / PENDING).exists()
    refuses(lambda: p.evaluate_controls(settings, D, home), "not loaded")


def check_state_before_rename(home, settings, baseline):
    assert db_state(home)["stage"] == "loaded"
    assert not state_path(home).exists(), "the new state never appears half-written under its final name"
    tmp = list(state_path(home).parent.glob(".ingest_state.json.*.tmp"))
    assert len(tmp) == 1 and json.loads(tmp[0].read_text())["loaded_as_of"] == "2026-11-25T00:00:00Z"
    p.build_facts(settings, D, home)  # the load committed: reading it is right


def check_evaluate_mid_gx(home, settings, baseline):
    db = db_state(home)
    assert db["stage"] == "loaded" and db["control_results"] == [] and db["population"] == []
    assert not validation_path(home, D).exists()
    refuses(lambda: p.write_evidence(settings, D, home, {}), "evaluate_controls did not complete")


def check_evaluate_runs_write(home, settings, baseline):
    db = db_state(home)
    assert db["stage"] in ("loaded", "evaluated"), f"the run's row must never be missing (got {db['stage']})"
    assert db["control_results"] == baseline["db"]["control_results"], "the results committed before the mark"
    if db["stage"] == "evaluated":  # then write_evidence may run: its GX results must be this evaluation's
        assert validation_path(home, D).read_text(encoding="utf-8") == baseline["gx"]


def check_rerun_evaluate_after_delete(home, settings, baseline):
    db = db_state(home)
    assert db["control_results"] == baseline["db"]["control_results"], "the delete was rolled back"
    assert db["population"] == baseline["db"]["population"] and db["stage"] == "archived"


def check_evidence_mid_tree(home, settings, baseline):
    assert not (home / "evidence" / DATE).exists() and final_archives(home) == {}
    assert [x.name for x in (home / "evidence").glob(f".{DATE}.tmp-*")]
    assert db_state(home)["stage"] == "evaluated"


def _tmp_archives(home: Path) -> list[Path]:
    return sorted((home / "evidence").glob(f".{ARCHIVE}.*.tmp"))


def check_archive_mid_tar(home, settings, baseline):
    assert verify_archive(home / "evidence" / DATE) == [], "the folder was swapped in whole before the archive"
    assert final_archives(home) == {}, "no archive under a final name"
    (tmp,) = _tmp_archives(home)
    assert verify_archive(tmp), "the temp archive is partial (and is not taken for one)"


def check_archive_before_publish(home, settings, baseline):
    assert final_archives(home) == {}
    (tmp,) = _tmp_archives(home)
    assert verify_archive(tmp) == []


def check_archive_after_link(home, settings, baseline):
    assert list(final_archives(home)) == [ARCHIVE]
    assert len(_tmp_archives(home)) == 1


def check_rerun_archive_mid_tar(home, settings, baseline):
    assert list(final_archives(home)) == [ARCHIVE], "no numbered archive appeared"
    assert len(_tmp_archives(home)) == 1


def check_rerun_evidence_folder_swap(home, settings, baseline):
    (old,) = (home / "evidence").glob(f".{DATE}.old-*")
    assert verify_archive(old) == [], "the previous folder is intact, moved aside"
    assert not (home / "evidence" / DATE).exists()
    before = evidence_files(old)
    evidence._recover(home / "evidence", DATE)  # what the next write_evidence does first
    assert evidence_files(home / "evidence" / DATE) == before, "the previous folder is put back"
    assert leftovers(home / "evidence") == []


# --- the test ------------------------------------------------------------------------------


def assert_nothing_partial(home: Path, archives_before: dict[str, str]) -> None:
    db = home / "warehouse.duckdb"
    if db.exists():
        for read_only in (True, False):
            con = duckdb.connect(str(db), read_only=read_only)
            try:
                con.execute("SELECT count(*) FROM runs").fetchone()
            finally:
                con.close()
    sdir = _sdir(home)
    for f in sdir.glob("*.jsonl") if sdir.is_dir() else []:
        for _ in read_staging(f):  # every line a complete record
            pass
    for f in [*(sdir.glob("*.json") if sdir.is_dir() else []), state_path(home), validation_path(home, D)]:
        if f.exists():
            json.loads(f.read_text(encoding="utf-8"))
    folder = home / "evidence" / DATE
    if folder.exists():
        assert verify_archive(folder) == []
    for name in final_archives(home):
        assert verify_archive(home / "evidence" / name) == [], name
    now = final_archives(home)
    assert {k: now.get(k) for k in archives_before} == archives_before, "an earlier archive changed"


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_killed_run_recovers_on_its_own(case, baseline, launcher):
    """The kill, the checks of what it left (check_<case>) and the rerun run in Launcher._case."""
    crash = launcher.crashes[case.id]
    crash.result.result(timeout=600)

    home = crash.home
    assert leftovers(home) == [], "the rerun cleans what the killed process left"
    assert not (_sdir(home) / PENDING).exists() and not list(_sdir(home).glob("*.failed.json"))
    assert_nothing_partial(home, crash.archives_before)
    db = db_state(home)
    assert db["stage"] == "archived"
    for key in (*TABLES, "control_results", "population"):
        assert db[key] == baseline["db"][key], key
    assert validation_path(home, D).read_text(encoding="utf-8") == baseline["gx"]
    assert evidence_files(home / "evidence" / DATE) == baseline["evidence"]
    newest = retention.archives(home / "evidence")[-1].path  # the rerun's: the highest number
    assert tar_members(newest) == baseline["members"]
    # a first run that died before publishing gets the plain name: temp files are not archives
    if case.start != "done" and case.point != "archive_after_link":
        assert list(final_archives(home)) == [ARCHIVE]
