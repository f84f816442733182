"""CeleryExecutor integration test: ccwatch_nightly on a real distributed Airflow, on loopback.

Starts PostgreSQL (metadata DB + Celery result backend) and Redis (Celery broker) from
Debian's packages on free 127.0.0.1 ports, then Airflow's api-server, scheduler,
dag-processor and one Celery worker with the settings of deploy/airflow-celery.env (the
file docker-compose.yaml uses), serves the demo org with the API double, triggers
``ccwatch_nightly`` for the demo date through the REST API, waits for the run and checks:

- the run succeeded, every task instance succeeded on the Celery worker (its hostname,
  set through ``[core] hostname_callable`` in the worker only) and went through Celery
  (``external_executor_id`` is a Celery task id whose result is SUCCESS in the result
  backend);
- the per-repository mapped task (``--mapped-task``, default ``ingest_github_repo``) ran
  once per configured repository (map_index 0..n-1), when the DAG has that task;
- control_results of the run equal include/demo/expected.json.

Everything lives under ``--workdir`` (default build/celery-it, git-ignored): component
logs in logs/, the Airflow home and task logs in airflow_home/, ccwatch's outputs in
ccwatch_home/. PostgreSQL's and Redis's data go to throw-away folders under /tmp. Every
process is stopped (and the data folders removed) on exit, success or not; on failure the
tail of every log is printed. The last line is ``CELERY_IT_RESULT {json}`` (timings, counts).

Usage: .venv/bin/python scripts/celery_it.py [--install] [--timeout 480] [--require-mapped]
Run as root, PostgreSQL runs as the Debian package's ``postgres`` user (initdb refuses root).
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path

from celery_stack import (  # scripts/ is sys.path[0] when run as a script
    AIRFLOW,
    T0,
    Api,
    Stack,
    free_port,
    install_debian_packages,
    migrate_db,
    missing_binaries,
    read_env_file,
    say,
    shared_secrets,
    simple_auth_env,
    start_api_server,
    start_postgres,
    start_redis,
    wait_api_server,
    wait_for,
)

ROOT = Path(__file__).resolve().parents[1]
SHARED_ENV = ROOT / "deploy" / "airflow-celery.env"
SCENARIO = ROOT / "include" / "demo" / "scenario.json"
EXPECTED = ROOT / "include" / "demo" / "expected.json"
DATE = "2026-11-25"
DAG_ID = "ccwatch_nightly"
WORKER_HOST = "ccwatch-it-worker"


# --- Airflow --------------------------------------------------------------------------------


IT_USER = "ccwatch-it"


def airflow_env(
    work: Path, pg_port: int, pg_password: str, redis_port: int, api_port: int, sandbox_url: str, it_password: str
) -> dict[str, str]:
    from ccwatch.demo_env import connection_env

    shared = read_env_file(SHARED_ENV)
    db = f"postgresql+psycopg2://airflow:{pg_password}@127.0.0.1:{pg_port}/airflow"
    base = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "CCWATCH_", "PYTHONPATH"))}
    scenario = json.loads(SCENARIO.read_text(encoding="utf-8"))
    own = {
        # endpoints of this deployment (compose: the service hostnames)
        "AIRFLOW_HOME": str(work / "airflow_home"),
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": db,
        "AIRFLOW__CELERY__RESULT_BACKEND": "db+"
        + db,  # "db+postgresql://" means psycopg 3 under SQLAlchemy 2.1
        "AIRFLOW__CELERY__BROKER_URL": f"redis://127.0.0.1:{redis_port}/0",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{api_port}/execution/",
        "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{api_port}",
        "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
        "AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_PORT": str(free_port()),
        # secrets: the same in every component (compose: from .env), fresh for every run
        **shared_secrets(),
        # test-only: the REST API user, no cron runs (only the triggered one), fast retries
        **simple_auth_env(work / "airflow_home" / "passwords.json", {IT_USER: ("admin", it_password)}),
        "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
        "PYTHONPATH": os.pathsep.join([str(ROOT / "include"), str(ROOT / "plugins")]),
        "CCWATCH_HOME": str(work / "ccwatch_home"),
        "CCWATCH_CONFIG": str(ROOT / "include" / "config" / "ccwatch.yaml"),
        "CCWATCH_RETRY_DELAY_SECONDS": "2",
        **connection_env(scenario, sandbox_url),
    }
    clash = sorted(set(own) & set(shared))
    if clash:  # the shared file must be what runs: this test adds endpoints, secrets, test knobs only
        raise ValueError(f"{SHARED_ENV.name} sets {clash}, which this test would override")
    return {**base, **shared, **own}


def worker_env(env: dict, work: Path) -> dict:
    """The worker reports a recognisable hostname on its task instances (scheduler and
    dag-processor keep the machine's), so the check proves where each task ran."""
    mod = work / "worker_py"
    mod.mkdir(exist_ok=True)
    (mod / "ccwatch_it_hostname.py").write_text(
        f"import socket\n\n\ndef hostname() -> str:\n    return '{WORKER_HOST}.' + socket.gethostname()\n",
        encoding="utf-8",
    )
    return {
        **env,
        "PYTHONPATH": os.pathsep.join([str(mod), env["PYTHONPATH"]]),
        "AIRFLOW__CORE__HOSTNAME_CALLABLE": "ccwatch_it_hostname.hostname",
    }


def start_sandbox(stack: Stack, work: Path) -> str:
    ready = work / "sandbox.url"
    ready.unlink(missing_ok=True)
    stack.start(
        "sandbox",
        [
            sys.executable,
            "-m",
            "ccwatch.sandbox",
            "--scenario",
            str(SCENARIO),
            "--port",
            "0",
            "--ready-file",
            str(ready),
        ],
        {**os.environ, "PYTHONPATH": str(ROOT / "include")},
    )
    url = wait_for("API double", lambda: ready.is_file() and ready.read_text().strip(), 30, stack, every=0.1)
    say(f"API double (GitHub, Jira, Slack) at {url}")
    return url


def start_airflow(stack: Stack, env: dict, work: Path, api_port: int, it_password: str) -> Api:
    Path(env["AIRFLOW_HOME"]).mkdir(parents=True, exist_ok=True)
    Path(env["CCWATCH_HOME"]).mkdir(parents=True, exist_ok=True)
    say("airflow db migrate (PostgreSQL)")
    migrate_db(stack, env, work)
    base = start_api_server(stack, env, api_port)
    stack.start("scheduler", [AIRFLOW, "scheduler"], env)
    stack.start("dag-processor", [AIRFLOW, "dag-processor"], env)
    # -H: the Celery node name; the task instances' hostname comes from worker_env()
    stack.start(
        "celery-worker",
        [AIRFLOW, "celery", "worker", "-H", f"{WORKER_HOST}@%h", "-c", "4"],
        worker_env(env, work),
    )
    api = Api(base, IT_USER, it_password)
    wait_api_server(stack, base)
    wait_for(
        f"DAG {DAG_ID} parsed by the dag-processor", lambda: api.get(f"/api/v2/dags/{DAG_ID}"), 180, stack, 2
    )
    say(f"{DAG_ID} parsed")
    wait_for(
        "Celery worker", lambda: b"ready." in (stack.logs / "celery-worker.log").read_bytes(), 120, stack
    )
    say("Celery worker ready")
    return api


def ti_name(t: dict) -> str:
    return t["task_id"] if t["map_index"] < 0 else f"{t['task_id']}[{t['map_index']}]"


def run_dag(api: Api, stack: Stack, timeout: float) -> tuple[str, dict]:
    run_id = f"ccwatch_it__{DATE}"
    api.patch(f"/api/v2/dags/{DAG_ID}", {"is_paused": False})
    run = api.post(
        f"/api/v2/dags/{DAG_ID}/dagRuns", {"dag_run_id": run_id, "logical_date": f"{DATE}T00:00:00Z"}
    )
    say(f"triggered {DAG_ID} run {run['dag_run_id']} (logical date {run['logical_date']})")
    deadline = time.monotonic() + timeout
    seen = ""
    while time.monotonic() < deadline:
        stack.check_alive()
        run = api.get(f"/api/v2/dags/{DAG_ID}/dagRuns/{run_id}")
        tis = api.get(f"/api/v2/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances?limit=1000")["task_instances"]
        progress = ", ".join(sorted(f"{ti_name(t)}={t['state']}" for t in tis if t["state"]))
        if progress != seen:
            say(f"run {run['state']}: {progress or 'no task queued yet'}")
            seen = progress
        if run["state"] in ("success", "failed"):
            return run_id, run
        time.sleep(2)
    raise TimeoutError(f"run {run_id} still {run['state']} after {timeout:.0f} s")


# --- checks -------------------------------------------------------------------------------------


def celery_results(pg: dict, run_id: str, wait: float = 30) -> list[str]:
    """Each task instance went through Celery: the executor stored the Celery task id, and the
    worker wrote that task's SUCCESS to the result backend (PostgreSQL, celery_taskmeta).  The
    worker writes it just after the task reported its state to the api-server: poll briefly."""
    import psycopg2

    deadline = time.monotonic() + wait
    while True:
        con = psycopg2.connect(**pg)
        try:
            with con.cursor() as cur:
                cur.execute(
                    "SELECT ti.task_id, ti.map_index, ti.external_executor_id, ti.queue, m.status "
                    "FROM task_instance ti LEFT JOIN celery_taskmeta m ON m.task_id = ti.external_executor_id "
                    "WHERE ti.dag_id = %s AND ti.run_id = %s",
                    (DAG_ID, run_id),
                )
                rows = cur.fetchall()
        finally:
            con.close()
        problems = [
            f"{task_id}[{map_index}]: Celery task {celery_id!r} result {status!r} (queue {queue})"
            for task_id, map_index, celery_id, queue, status in rows
            if not celery_id or status != "SUCCESS"
        ]
        if not problems or time.monotonic() > deadline:
            return problems if rows else [f"no task instances of {run_id} in the metadata DB"]
        time.sleep(1)


def check_tasks(api: Api, run_id: str, pg: dict, mapped_task: str, require_mapped: bool) -> dict:
    from ccwatch.settings import load_settings

    tis = api.get(f"/api/v2/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances?limit=1000")["task_instances"]
    problems = []
    for t in tis:
        name = ti_name(t)
        if t["state"] != "success":
            problems.append(f"{name}: state {t['state']}")
        if not (t["hostname"] or "").startswith(WORKER_HOST + "."):
            problems.append(f"{name}: ran on {t['hostname']!r}, not on the Celery worker {WORKER_HOST}.*")
    # Went through Celery: the executor stored the Celery task id, whose result the worker
    # wrote to the result backend (PostgreSQL, table celery_taskmeta).
    for problem in celery_results(pg, run_id):
        problems.append(problem)
    dag_tasks = {t["task_id"] for t in api.get(f"/api/v2/dags/{DAG_ID}/tasks")["tasks"]}
    repos = sorted(r.repo for r in load_settings().github.repositories)
    mapped = sorted(t["map_index"] for t in tis if t["task_id"] == mapped_task)
    if mapped_task in dag_tasks:
        if mapped != list(range(len(repos))):
            problems.append(
                f"{mapped_task}: map indexes {mapped}, expected 0..{len(repos) - 1} (repos {repos})"
            )
    elif require_mapped:
        problems.append(f"{DAG_ID} has no task {mapped_task!r} (tasks: {sorted(dag_tasks)})")
    else:
        say(f"note: {DAG_ID} has no mapped task {mapped_task!r} yet; checked its tasks {sorted(dag_tasks)}")
    if problems:
        raise AssertionError("task placement:\n  " + "\n  ".join(problems))
    say(
        f"{len(tis)} task instances succeeded on {WORKER_HOST} through Celery; {mapped_task}: {len(mapped)} mapped"
    )
    return {
        "task_instances": len(tis),
        "mapped": len(mapped),
        "repos": len(repos),
        "tasks": sorted({t["task_id"] for t in tis}),
        "hostname": tis[0]["hostname"] if tis else None,
    }


def check_results(home: Path) -> int:
    import duckdb

    expected = json.loads(EXPECTED.read_text(encoding="utf-8"))["results"]
    con = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
    try:
        rows = con.execute(
            "SELECT change_id, control_id, status FROM control_results WHERE CAST(as_of AS DATE) = ?", [DATE]
        ).fetchall()
    finally:
        con.close()
    got = {(c, k): s for c, k, s in rows}
    wrong = [
        f"{c} {k}: expected {s}, got {got.get((c, k))}"
        for c, ctrls in expected.items()
        for k, s in ctrls.items()
        if k.startswith("CC8.1-") and got.get((c, k)) != s
    ]
    if {c for c, _k in got} != set(expected):
        wrong.append(f"population {sorted({c for c, _k in got})} != expected {sorted(expected)}")
    if wrong:
        raise AssertionError(
            "control_results differ from include/demo/expected.json:\n  " + "\n  ".join(wrong[:40])
        )
    from ccwatch.common.times import parse_as_of
    from ccwatch.publish.results import summary_table

    con = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
    try:
        print(summary_table(con, parse_as_of(DATE)), flush=True)
    finally:
        con.close()
    say(f"control_results match expected.json ({len(rows)} rows)")
    return len(rows)


def dump_logs(work: Path, lines: int = 40) -> None:
    logs = sorted((work / "logs").glob("*.log"))
    task_logs = sorted((work / "airflow_home" / "logs").rglob("*.log"), key=lambda p: p.stat().st_mtime)[-6:]
    for path in [*logs, *task_logs]:
        text = path.read_text(encoding="utf-8", errors="replace").splitlines()
        print(f"\n----- {path.relative_to(work)} (last {min(lines, len(text))} of {len(text)} lines) -----")
        print("\n".join(text[-lines:]))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--workdir", type=Path, default=ROOT / "build" / "celery-it")
    p.add_argument(
        "--install", action="store_true", help="apt-get install postgresql redis-server when missing"
    )
    p.add_argument("--timeout", type=float, default=480, help="seconds to wait for the run (default 480)")
    p.add_argument("--mapped-task", default="ingest_github_repo")
    p.add_argument("--require-mapped", action="store_true", help="fail when the DAG lacks --mapped-task")
    args = p.parse_args(argv)
    result: dict = {"ok": False}
    apt_s = install_debian_packages() if args.install else 0.0
    if missing_binaries():
        raise SystemExit(f"missing {missing_binaries()} (use --install as root)")
    result["apt_install_s"] = round(apt_s, 1)
    work = args.workdir.resolve()
    shutil.rmtree(work, ignore_errors=True)
    (work / "logs").mkdir(parents=True)
    tmp = Path(tempfile.mkdtemp(prefix="ccwatch-celery-it-"))
    os.chmod(tmp, 0o755)
    stack = Stack(work / "logs")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        pg_password = secrets.token_urlsafe(16)
        (tmp / "pg").mkdir()
        pg_port = start_postgres(stack, tmp / "pg", pg_password)
        (tmp / "redis").mkdir()
        redis_port = start_redis(stack, tmp / "redis")
        url = start_sandbox(stack, work)
        api_port = free_port()
        it_password = secrets.token_urlsafe(16)
        env = airflow_env(work, pg_port, pg_password, redis_port, api_port, url, it_password)
        api = start_airflow(stack, env, work, api_port, it_password)
        result["startup_s"] = round(time.monotonic() - T0, 1)
        t = time.monotonic()
        run_id, run = run_dag(api, stack, args.timeout)
        result["run_s"] = round(time.monotonic() - t, 1)
        if run["state"] != "success":
            raise AssertionError(f"run {run_id} ended {run['state']}")
        pg = {
            "host": "127.0.0.1",
            "port": pg_port,
            "user": "airflow",
            "password": pg_password,
            "dbname": "airflow",
        }
        result |= check_tasks(api, run_id, pg, args.mapped_task, args.require_mapped)
        result["control_results"] = check_results(Path(env["CCWATCH_HOME"]))
        result["ok"] = True
    except BaseException as exc:
        result["error"] = f"{type(exc).__name__}: {exc}"
        say(f"FAILED: {result['error']}")
        dump_logs(work)
    finally:
        say("stopping every component")
        stack.stop()
        shutil.rmtree(tmp, ignore_errors=True)
        say("cleaned up")
        result["total_s"] = round(time.monotonic() - T0, 1)
        say(f"{'PASSED' if result['ok'] else 'FAILED'} in {result['total_s']} s; logs in {work / 'logs'}")
        print("CELERY_IT_RESULT " + json.dumps(result, sort_keys=True), flush=True)
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
