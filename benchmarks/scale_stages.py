"""Running the pipeline's stages for ``bench_scale.py``: in this process in the DAG's order, or each
stage in a child process of its own with the code of any checkout (as Airflow runs a task), the
API double staying in the parent. Each run reports per-stage wall and CPU seconds, the requests
the double saw per stage and, in child processes, each stage's peak RSS."""

from __future__ import annotations

import inspect
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from ccwatch import pipeline as p
from ccwatch.common.endpoints import Endpoint
from ccwatch.sandbox import SandboxServer

ROOT = Path(__file__).resolve().parents[1]
AUTH = {"github_token": "ghp_bench", "jira_user": "ccwatch@synth.example", "jira_token": "jira-bench",
        "slack_token": "xoxb-bench"}
STAGES = ("ingest_github", "ingest_jira", "resolve_tickets", "load_warehouse", "build_facts",
          "evaluate_controls", "write_evidence")


def endpoints(server: SandboxServer) -> dict[str, Endpoint]:
    return {"github": Endpoint(server.url + "/api/v3", token=AUTH["github_token"]),
            "jira": Endpoint(server.url, login=AUTH["jira_user"], token=AUTH["jira_token"])}



# ----------------------------------------------------------------------------- one pipeline run
def call_stage(fn, *args, **optional):
    """Call a stage passing only the optional keywords its signature accepts."""
    accepted = inspect.signature(fn).parameters
    return fn(*args, **{k: v for k, v in optional.items() if k in accepted and v is not None})


# run in a child process by run_stage: one stage, its time, CPU and peak RSS written to a JSON file
CHILD = r"""
import inspect, json, resource, sys, time
from pathlib import Path
a = json.loads(sys.argv[1])
from ccwatch import pipeline as p
from ccwatch.common.endpoints import Endpoint
from ccwatch.common.times import parse_as_of
from ccwatch.settings import load_settings
settings, as_of, home = load_settings(a["config"]), parse_as_of(a["as_of"]), Path(a["home"])
gh = Endpoint(a["github"], token=a["auth"]["github_token"]) if a.get("github") else None
jr = Endpoint(a["jira"], login=a["auth"]["jira_user"], token=a["auth"]["jira_token"]) if a.get("jira") else None
name = a["stage"]
kw = {k: v for k, v in (a.get("kwargs") or {}).items() if k in inspect.signature(getattr(p, name)).parameters}
args = {"ingest_github": (settings, gh, as_of, home), "ingest_jira": (settings, jr, as_of, home),
        "resolve_tickets": (settings, jr, as_of, home),
        "write_evidence": (settings, as_of, home, {"github": a.get("github"), "jira": a.get("jira")})
        }.get(name, (settings, as_of, home))
t0, r0 = time.perf_counter(), resource.getrusage(resource.RUSAGE_SELF)
out = getattr(p, name)(*args, **kw)
r1 = resource.getrusage(resource.RUSAGE_SELF)
Path(a["result"]).write_text(json.dumps({
    "s": time.perf_counter() - t0, "cpu_s": r1.ru_utime + r1.ru_stime - r0.ru_utime - r0.ru_stime,
    "peak_rss_mib": r1.ru_maxrss / 1024, "out": out}, default=str))
"""


def run_stage(name: str, settings_path: Path, as_of, home: Path, *, server: SandboxServer | None = None,
              code_root: Path = ROOT, kwargs: dict | None = None) -> dict:
    """One stage in a child process with the code of ``code_root``: {"s", "cpu_s", "peak_rss_mib",
    "out", "wall_s"} (``s``/``cpu_s``: the stage inside the child; ``wall_s``: the child, start-up included)."""
    result = home.parent / f".stage-{name}-{os.getpid()}.json"
    ep = endpoints(server) if server is not None else {}
    a = {"stage": name, "config": str(settings_path), "as_of": as_of.isoformat(), "home": str(home),
         "result": str(result), "auth": AUTH, "kwargs": kwargs or {},
         "github": ep["github"].base_url if ep else None, "jira": ep["jira"].base_url if ep else None}
    env = {**os.environ, "PYTHONPATH": f"{code_root / 'include'}{os.pathsep}{code_root / 'plugins'}"}
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", CHILD, json.dumps(a)], env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"stage {name} failed in its child process (exit {proc.returncode}):\n{proc.stderr[-4000:]}")
    out = json.loads(result.read_text(encoding="utf-8"))
    result.unlink()
    out["wall_s"] = wall
    return out


def run_pipeline(settings, server: SandboxServer, as_of, home: Path, workers: int | None = None,
                 isolate: Path | None = None) -> dict:
    """All measured stages in the DAG's order (the two fetch tasks one after the other).
    ``isolate``: the ccwatch.yaml of ``settings``; each stage then runs in its own child process."""
    if isolate is not None:
        return _run_isolated(isolate, server, as_of, home, workers)
    ep = endpoints(server)
    stages, counts, cpu = {}, {}, {}
    t_all, c_all = time.perf_counter(), time.process_time()
    for name in STAGES:
        fn = getattr(p, name)
        args = {"ingest_github": (settings, ep["github"], as_of, home), "ingest_jira": (settings, ep["jira"], as_of, home),
                "resolve_tickets": (settings, ep["jira"], as_of, home),
                "write_evidence": (settings, as_of, home, {"github": ep["github"].base_url, "jira": ep["jira"].base_url}),
                }.get(name, (settings, as_of, home))
        before = server.request_count()
        t0, c0 = time.perf_counter(), time.process_time()
        out = call_stage(fn, *args, max_workers=workers) if name == "ingest_github" else fn(*args)
        stages[name] = round(time.perf_counter() - t0, 3)
        cpu[name] = round(time.process_time() - c0, 3)  # the whole process: the double's threads too
        counts[name] = server.request_count() - before
        if name == "build_facts":
            changes = out.get("changes")
        if name == "evaluate_controls":
            rows = out.get("rows")
    return {"stages_s": stages, "total_s": round(time.perf_counter() - t_all, 3), "stages_cpu_s": cpu,
            "total_cpu_s": round(time.process_time() - c_all, 3), "requests_by_stage": counts,
            "changes": changes, "result_rows": rows}


def _run_isolated(settings_path: Path, server: SandboxServer, as_of, home: Path, workers: int | None) -> dict:
    stages, counts, cpu, peak = {}, {}, {}, {}
    t_all = time.perf_counter()
    home.mkdir(parents=True, exist_ok=True)
    for name in STAGES:
        before = server.request_count()
        kwargs = {"max_workers": workers} if name == "ingest_github" and workers else None
        res = run_stage(name, settings_path, as_of, home, server=server, kwargs=kwargs)
        stages[name], cpu[name], peak[name] = round(res["s"], 3), round(res["cpu_s"], 3), round(res["peak_rss_mib"], 1)
        counts[name] = server.request_count() - before
        out = res["out"] if isinstance(res["out"], dict) else {}
        if name == "build_facts":
            changes = out.get("changes")
        if name == "evaluate_controls":
            rows = out.get("rows")
    return {"stages_s": stages, "total_s": round(time.perf_counter() - t_all, 3), "requests_by_stage": counts,
            "changes": changes, "result_rows": rows, "stage_cpu_s": cpu, "stage_peak_rss_mib": peak,
            "pipeline_peak_rss_mib": max(peak.values())}

