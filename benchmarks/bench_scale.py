"""Org-scale benchmark: the real pipeline stages against the API double serving a synthetic org.

    .venv/bin/python benchmarks/bench_scale.py backfill --repos 500 --prs 100000 [--runs 3]
    .venv/bin/python benchmarks/bench_scale.py nightly  --repos 500 --prs 100000 --new 500
    .venv/bin/python benchmarks/bench_scale.py curve    --repos 500 --sizes 10000,25000,50000,100000
    .venv/bin/python benchmarks/bench_scale.py double   --repos 500 --prs 100000   # the double alone
    .venv/bin/python benchmarks/bench_scale.py backfill --repos 500 --prs 100000 --isolate   # a process per stage
    .venv/bin/python benchmarks/bench_scale.py stage    --repos 500 --prs 100000 --keep DIR  # fetch once, keep it
    .venv/bin/python benchmarks/bench_scale.py load     --staging DIR [--code-root CHECKOUT] [--chunk-records N]

``backfill``: the first full run (ingest_github, ingest_jira, resolve_tickets, load_warehouse,
build_facts, evaluate_controls, write_evidence) against a fresh home. ``nightly``: a backfill,
then the next day with ``--new`` new merged PRs; only the second run is measured. ``curve``:
backfill at each size. ``double``: load time and per-request time of the double at that size.
The org comes from ``ccwatch.sandbox.synthetic`` (Zipf activity, realistic mix, seeded); the
double runs in-process with ``--latency-ms`` (default 30) per request, and its rate limit is
set to ``--rate-limit`` (default effectively unlimited: the hours of budget a run needs are
reported instead). Requests are counted from the double's log: GitHub REST by kind (core:
every answer but 304; 304s are free), GraphQL by operation, Jira. ``--runs N`` reports the
median of N runs (each on a fresh home). ``--json FILE`` writes everything; a markdown table
row per run is printed. Optional stage keywords (e.g. ``max_workers``) are passed only when the
stage accepts them.

``--isolate`` runs every stage in a child process of its own (as Airflow runs each task in its
own process), the double staying in this one: each stage's peak RSS (the child's ``ru_maxrss``)
and CPU seconds are reported apart from the double's (``stage_peak_rss_mib``, ``stage_cpu_s``).
``stage`` fetches an org once (no latency) into ``--keep DIR`` (the home, its ccwatch.yaml and
``meta.json``); ``load`` copies that staging into a fresh home and runs ``load_warehouse`` alone in a
child process, with the code of ``--code-root`` (default: this checkout; give another worktree to
measure before and after on the same staging).

The requests are counted by ``scale_requests.py``; the stages run (in process or each in a child
process) by ``scale_stages.py``; this file holds the modes, the synthetic org and the report.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import resource
import shutil
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "include")]

from ccwatch import pipeline as p  # noqa: E402
from ccwatch.common.times import parse_as_of  # noqa: E402
from ccwatch.sandbox import PortHold, SandboxServer  # noqa: E402
from ccwatch.sandbox.synthetic import add_next_day, generate_org  # noqa: E402
from ccwatch.sandbox.synthetic_config import org_config  # noqa: E402
from ccwatch.settings import load_settings  # noqa: E402
from scale_requests import classify, node_repos, points_used  # noqa: E402
from scale_stages import AUTH, call_stage, endpoints, run_pipeline, run_stage  # noqa: E402


# ----------------------------------------------------------------------------- machine, memory
def machine() -> dict:
    cpu = next((ln.split(":", 1)[1].strip() for ln in _lines("/proc/cpuinfo") if ln.startswith("model name")),
               platform.processor() or "unknown")
    mem = next((int(ln.split()[1]) // 1024 for ln in _lines("/proc/meminfo") if ln.startswith("MemTotal")), None)
    return {"cpu": cpu, "cores": os.cpu_count(), "ram_mib": mem, "python": platform.python_version(),
            "platform": platform.platform()}


def _lines(path: str) -> list[str]:
    try:
        return Path(path).read_text().splitlines()
    except OSError:
        return []


def rss_mib() -> float:
    """Current RSS (VmRSS) in MiB; falls back to the peak."""
    for ln in _lines("/proc/self/status"):
        if ln.startswith("VmRSS:"):
            return int(ln.split()[1]) / 1024
    return peak_rss_mib()


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# ----------------------------------------------------------------------------- the double
def serve(scenario: dict, latency_ms: float, rate_limit: int, hold: PortHold | None = None) -> SandboxServer:
    """``hold``: serve on the previous day's port, held between the days, so the bodies (which carry
    the server's URL), and with them the ETags, are those the previous run saw: a 304 is then
    possible, as on GitHub."""
    scenario["auth"] = dict(AUTH)
    scenario["github"]["rate_limit"] = {"limit": rate_limit}
    scenario["github"]["graphql_rate_limit"] = {"limit": rate_limit}
    server = SandboxServer(scenario, latency_ms=latency_ms, copy_scenario=False, hold=hold).start()
    for r in server.github.repos.values():  # build the indexes now, not inside a measured run
        server.github.index(r[1])
    return server


def merged_prs(scenario: dict, since: str | None = None) -> int:
    return sum(1 for r in scenario["github"]["repos"].values() for q in r["pulls"]
               if q.get("merged_at") and (since is None or q["merged_at"] > since))


def measure(settings, server, scenario, as_of, home, workers, *, prev: dict | None = None,
            prev_as_of: str | None = None, isolate: Path | None = None) -> dict:
    """One measured run: the pipeline, its requests classified, the per-change ratios."""
    start, (core0, points0) = server.request_count(), points_used(server)
    out = run_pipeline(settings, server, as_of, home, workers, isolate)
    core1, points1 = points_used(server)
    req = classify(server.requests_since(start), node_repos(server) if prev is not None else None)
    req["core_charged"], req["graphql_points"] = core1 - core0, points1 - points0
    per_repo = req.pop("per_repo")
    per_repo_kind = req.pop("per_repo_kind")
    n_repos = len(scenario["github"]["repos"])
    out.update(req)
    out["peak_rss_mib"] = round(peak_rss_mib(), 1)  # this process: the double (and the stages unless isolated)
    github = req["github_core"] + req["graphql"]
    if prev is None:
        merged = merged_prs(scenario)
        out.update({"merged_prs": merged, "github_requests_per_merged_pr": round(github / max(merged, 1), 4)})
    else:
        changed = {n.lower() for n, r in scenario["github"]["repos"].items() if r is not prev["github"]["repos"].get(n)}
        new = merged_prs(scenario, since=prev_as_of)
        unchanged = n_repos - len(changed)
        unchanged_req = sum(c for repo, c in per_repo.items() if repo not in changed)
        # counted GitHub requests by kind: changed repositories, unchanged ones, org-wide (no one repository)
        split: dict[str, Counter] = {"changed": Counter(), "unchanged": Counter(), "org_wide": Counter()}
        for (repo, kind), c in per_repo_kind.items():
            split["org_wide" if repo == "(org-wide)" else "changed" if repo in changed else "unchanged"][kind] += c
        out["counted_by_kind"] = {k: dict(sorted(v.items())) for k, v in split.items()}
        out["github_requests_org_wide"] = sum(split["org_wide"].values())
        # issue #15's target: at most 1 counted request per new change plus 0.5 per unchanged repository
        out["target_counted_max"] = new + 0.5 * unchanged
        out.update({"new_changes": new, "changed_repos": len(changed), "unchanged_repos": unchanged,
                    "github_requests_per_new_change": round(github / max(new, 1), 4),
                    "github_requests_per_unchanged_repo": round(unchanged_req / max(unchanged, 1), 4),
                    "github_requests_changed_repos": sum(c for repo, c in per_repo.items() if repo in changed)})
    # hours of a token's budget (5,000 core requests and 5,000 GraphQL points an hour each)
    out["rate_limit_hours"] = round(max(req["core_charged"], req["graphql_points"]) / 5000, 2)
    return out


# ----------------------------------------------------------------------------- modes
def _org(args, prs: int) -> tuple[dict, float]:
    t0 = time.perf_counter()
    scenario = generate_org(repos=args.repos, prs=prs, months=args.months, seed=args.seed, as_of=args.as_of)
    return scenario, round(time.perf_counter() - t0, 2)


def _settings(scenario: dict, workdir: Path):
    path = workdir / "ccwatch.yaml"
    path.write_text(org_config(scenario), encoding="utf-8")
    return load_settings(str(path))


def backfill(args, prs: int, workdir: Path) -> dict:
    scenario, gen_s = _org(args, prs)
    settings = _settings(scenario, workdir)
    t0 = time.perf_counter()
    server = serve(scenario, args.latency_ms, args.rate_limit)
    load_s = round(time.perf_counter() - t0, 2)
    as_of = parse_as_of(scenario["meta"]["as_of"])
    runs = []
    try:
        for i in range(args.runs):
            home = workdir / f"backfill-{prs}-{i}"
            runs.append(measure(settings, server, scenario, as_of, home, args.workers,
                                isolate=workdir / "ccwatch.yaml" if args.isolate else None))
            shutil.rmtree(home, ignore_errors=True)
    finally:
        server.stop()
    return {"mode": "backfill", "prs": prs, "repos": args.repos, "generate_s": gen_s, "double_load_s": load_s,
            "runs": runs, "median": median(runs)}


def nightly(args, workdir: Path) -> dict:
    day1, gen_s = _org(args, args.prs)
    settings = _settings(day1, workdir)
    # a quiet night between the backfill and the measured one: the first incremental run after a
    # backfill learns the validators of the constant listing URLs (the backfill lists commits
    # with `since`), so only the nights after it show the steady state
    quiet = add_next_day(day1, changes=0)
    day2 = add_next_day(quiet, changes=args.new)
    as_of1, as_of2 = parse_as_of(day1["meta"]["as_of"]), parse_as_of(day2["meta"]["as_of"])
    as_of_quiet = parse_as_of(quiet["meta"]["as_of"])
    runs = []
    for i in range(args.runs):
        home = workdir / f"nightly-{i}"
        # the backfill before the measured night runs without latency (it is measured by the
        # backfill mode); the night after runs on the same port with the latency
        with PortHold() as hold:
            with serve(day1, 0, args.rate_limit, hold) as server:
                first = run_pipeline(settings, server, as_of1, home, args.workers)
                first_requests = server.request_count()
            with serve(quiet, 0, args.rate_limit, hold) as server:
                run_pipeline(settings, server, as_of_quiet, home, args.workers)
            with serve(day2, args.latency_ms, args.rate_limit, hold) as server:
                run = measure(settings, server, day2, as_of2, home, args.workers, prev=quiet,
                              prev_as_of=quiet["meta"]["as_of"])
        run["backfill_total_s"] = first["total_s"]
        run["backfill_requests"] = first_requests  # GitHub + Jira, every answer
        runs.append(run)
        shutil.rmtree(home, ignore_errors=True)
    return {"mode": "nightly", "prs": args.prs, "repos": args.repos, "new": args.new, "generate_s": gen_s,
            "runs": runs, "median": median(runs)}


def stage(args, workdir: Path) -> dict:
    """Fetch the org once (no latency) into ``--keep``: the staging the ``load`` mode measures on."""
    keep = args.keep or workdir
    keep.mkdir(parents=True, exist_ok=True)
    scenario, gen_s = _org(args, args.prs)
    settings = _settings(scenario, keep)
    server = serve(scenario, 0, args.rate_limit)
    as_of = parse_as_of(scenario["meta"]["as_of"])
    ep = endpoints(server)
    times = {}
    try:
        for name, fn, fargs in (("ingest_github", p.ingest_github, (settings, ep["github"], as_of, keep / "home")),
                                ("ingest_jira", p.ingest_jira, (settings, ep["jira"], as_of, keep / "home")),
                                ("resolve_tickets", p.resolve_tickets, (settings, ep["jira"], as_of, keep / "home"))):
            t0 = time.perf_counter()
            call_stage(fn, *fargs, max_workers=args.workers) if name == "ingest_github" else fn(*fargs)
            times[name] = round(time.perf_counter() - t0, 1)
    finally:
        server.stop()
    meta = {"prs": args.prs, "repos": args.repos, "as_of": scenario["meta"]["as_of"], "generate_s": gen_s,
            "stages_s": times, "merged_prs": merged_prs(scenario)}
    (keep / "meta.json").write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")
    return {"mode": "stage", **meta, "keep": str(keep)}


def load(args, workdir: Path) -> dict:
    """``load_warehouse`` alone, in a child process, on a copy of the staging of ``stage --keep``."""
    src = args.staging
    meta = json.loads((src / "meta.json").read_text(encoding="utf-8"))
    runs = []
    for i in range(args.runs):
        home = workdir / f"load-{meta['prs']}-{i}"
        shutil.rmtree(home, ignore_errors=True)
        shutil.copytree(src / "home" / "staging", home / "staging")
        staged = sum(f.stat().st_size for f in (home / "staging").rglob("*.jsonl"))
        kwargs = {"chunk_records": args.chunk_records} if args.chunk_records else None
        res = run_stage("load_warehouse", src / "ccwatch.yaml", parse_as_of(meta["as_of"]), home,
                        code_root=args.code_root, kwargs=kwargs)
        runs.append({"load_s": round(res["s"], 2), "cpu_s": round(res["cpu_s"], 2), "wall_s": round(res["wall_s"], 2),
                     "peak_rss_mib": round(res["peak_rss_mib"], 1), "staging_mib": round(staged / 2**20, 1),
                     "warehouse_mib": round((home / "warehouse.duckdb").stat().st_size / 2**20, 1),
                     "raw_payloads": (res["out"] or {}).get("raw_payloads")})
        shutil.rmtree(home, ignore_errors=True)
    return {"mode": "load", "prs": meta["prs"], "repos": meta["repos"], "code_root": str(args.code_root),
            "chunk_records": args.chunk_records, "runs": runs, "median": median(runs)}


def double(args, workdir: Path) -> dict:
    """Load time of the double and the time of typical requests at this size (no latency)."""
    import urllib.request

    scenario, gen_s = _org(args, args.prs)
    t0 = time.perf_counter()
    server = serve(scenario, 0, args.rate_limit)
    load_s = round(time.perf_counter() - t0, 2)
    name, r = max(scenario["github"]["repos"].items(), key=lambda kv: len(kv[1]["pulls"]))
    last_page = (len(r["pulls"]) + 99) // 100
    mid = r["pulls"][len(r["pulls"]) // 2]
    dep = r["deployments"][len(r["deployments"]) // 2]
    key = next(iter(scenario["jira"]["issues"]))
    gh = f"{server.url}/api/v3/repos/{name}"
    urls = {"pulls list page 1": f"{gh}/pulls?state=closed&sort=updated&direction=desc&per_page=100",
            "pulls list last page": f"{gh}/pulls?state=closed&sort=updated&direction=desc&per_page=100&page={last_page}",
            "pull": f"{gh}/pulls/{mid['number']}", "reviews": f"{gh}/pulls/{mid['number']}/reviews",
            "check runs": f"{gh}/commits/{mid['head_sha']}/check-runs?filter=all",
            "commit pulls": f"{gh}/commits/{mid['merge_commit_sha']}/pulls",
            "commits list page 5": f"{gh}/commits?sha=main&per_page=100&page=5",
            "deployments page 1": f"{gh}/deployments?environment=production&per_page=100",
            "deployment statuses": f"{gh}/deployments/{dep['id']}/statuses",
            "jira search page 1": f"{server.url}/rest/api/3/search/jql?jql=project%20in%20(PLAT)%20ORDER%20BY%20key&maxResults=100&fields=*all",
            "jira changelog": f"{server.url}/rest/api/3/issue/{key}/changelog"}
    import base64
    basic = base64.b64encode(f"{AUTH['jira_user']}:{AUTH['jira_token']}".encode()).decode()
    out = {}
    try:
        for label, url in urls.items():
            hdr = {"Authorization": f"Basic {basic}"} if "/rest/" in url else {"Authorization": f"token {AUTH['github_token']}"}
            times = []
            for _ in range(5):
                t = time.perf_counter()
                with urllib.request.urlopen(urllib.request.Request(url, headers=hdr)) as resp:
                    resp.read()
                times.append(time.perf_counter() - t)
            out[label] = {"first_ms": round(times[0] * 1000, 2), "median_ms": round(statistics.median(times) * 1000, 2)}
    finally:
        server.stop()
    return {"mode": "double", "prs": args.prs, "repos": args.repos, "busiest_repo": name,
            "busiest_repo_prs": len(r["pulls"]), "generate_s": gen_s, "double_load_s": load_s,
            "rss_mib": round(rss_mib(), 1), "requests_ms": out}


def median(runs: list[dict]) -> dict:
    """Median of every numeric field over the runs (nested dicts of numbers too)."""
    out: dict = {}
    for key, value in runs[0].items():
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            vals = [r[key] for r in runs if r.get(key) is not None]
            out[key] = statistics.median(vals) if vals else None
        elif isinstance(value, dict) and all(isinstance(v, (int, float)) for v in value.values()):
            out[key] = {k: statistics.median([r[key].get(k, 0) for r in runs]) for k in value}
        else:
            out[key] = value
    return out


def table_row(result: dict) -> str:
    m = result.get("median") or {}
    st = m.get("stages_s") or {}
    per = m.get("github_requests_per_merged_pr", m.get("github_requests_per_new_change"))
    return (f"| {result['mode']} | {result['repos']} | {result['prs']:,} | {result.get('new', '')} | "
            f"{m.get('total_s')} | {st.get('ingest_github')} | {st.get('ingest_jira')} | {st.get('load_warehouse')} | "
            f"{(st.get('build_facts') or 0) + (st.get('evaluate_controls') or 0):.1f} | {m.get('github_core')} | "
            f"{m.get('github_304')} | {m.get('graphql')} ({m.get('graphql_points')}) | {per} | {m.get('github_requests_per_unchanged_repo', '')} | "
            f"{m.get('jira')} | {m.get('peak_rss_mib')} |")


TABLE_HEAD = ("| mode | repos | merged PRs | new | total s | ingest_github s | ingest_jira s | load s | facts+eval s | "
              "core REST | 304 | GraphQL (points) | GitHub req/change | req/unchanged repo | Jira req | peak RSS MiB |\n"
              "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("mode", choices=("backfill", "nightly", "curve", "double", "stage", "load"))
    ap.add_argument("--repos", type=int, default=500)
    ap.add_argument("--prs", type=int, default=100_000, help="merged PRs in the org (backfill, nightly, double)")
    ap.add_argument("--sizes", default="10000,25000,50000,100000", help="curve: comma-separated PR counts")
    ap.add_argument("--new", type=int, default=500, help="nightly: new merged PRs the next day")
    ap.add_argument("--months", type=int, default=12)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--as-of", default="2026-11-25T00:00:00Z")
    ap.add_argument("--latency-ms", type=float, default=30.0)
    ap.add_argument("--rate-limit", type=int, default=10**9, help="the double's core limit (default: unlimited)")
    ap.add_argument("--workers", type=int, default=None, help="ingest_github max_workers (if the stage accepts it)")
    ap.add_argument("--runs", type=int, default=1, help="median of N runs")
    ap.add_argument("--json", type=Path, help="write the results here")
    ap.add_argument("--workdir", type=Path, help="keep homes here (default: a temporary directory)")
    ap.add_argument("--isolate", action="store_true", help="backfill/curve: every stage in its own child process")
    ap.add_argument("--keep", type=Path, help="stage: keep the fetched home, config and meta.json here")
    ap.add_argument("--staging", type=Path, help="load: a directory made by `stage --keep`")
    ap.add_argument("--code-root", type=Path, default=ROOT, help="load: the checkout whose code the child runs")
    ap.add_argument("--chunk-records", type=int, help="load: records per chunk (if the code accepts it)")
    args = ap.parse_args(argv)
    logging.getLogger("ccwatch").setLevel(logging.WARNING)
    tmp = None
    if args.workdir is None:
        tmp = tempfile.TemporaryDirectory(prefix="ccwatch-bench-")
        workdir = Path(tmp.name)
    else:
        workdir = args.workdir
        workdir.mkdir(parents=True, exist_ok=True)
    try:
        if args.mode == "backfill":
            results = [backfill(args, args.prs, workdir)]
        elif args.mode == "nightly":
            results = [nightly(args, workdir)]
        elif args.mode == "curve":
            results = [backfill(args, int(n), workdir) for n in args.sizes.split(",") if n.strip()]
        elif args.mode == "stage":
            results = [stage(args, workdir)]
        elif args.mode == "load":
            results = [load(args, workdir)]
        else:
            results = [double(args, workdir)]
    finally:
        if tmp is not None:
            tmp.cleanup()
    report = {"machine": machine(), "latency_ms": args.latency_ms, "command": " ".join(sys.argv), "results": results}
    if args.json:
        args.json.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    if args.mode in ("double", "stage", "load"):
        print(json.dumps(report, indent=1))
    else:
        print(f"machine: {report['machine']}; latency {args.latency_ms} ms")
        print(TABLE_HEAD)
        for res in results:
            print(table_row(res))
    return report


if __name__ == "__main__":
    main()
