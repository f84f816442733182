"""One night's load against accumulating lists of growing age (docs/PERFORMANCE.md, "The
accumulating lists over the years").

    .venv/bin/python benchmarks/bench_scale.py stage --repos 500 --prs 100000 --workers 8 --keep DIR
    .venv/bin/python benchmarks/bench_list_age.py --staging DIR --years 0,1,2,3,4 [--repo synth/svc-072]

A branch's ``commits`` list, an environment's ``deployments`` list and the ``activity`` log
accumulate (warehouse/raw_lists.py): nothing prunes them, so they grow with the deployment's age. This
takes one repository's staged records from a ``bench_scale.py stage --keep`` directory (a year
of its history: the benchmark org spans 12 months; by default the busiest repository staged,
``synth/svc-072`` in the 100k org) and builds, for each N of ``--years``, a warehouse holding that repository with its
three lists as they would stand after N years: the year's items cloned N-1 times further back
(new shas, ids and times, the first-parent line continued through every copy), ordered newest
first by the kind's sort key as the nightly merges leave them; N = 0 keeps the
newest 200 items only. Then one night is loaded on a copy of each warehouse, in a child process
bounded as ``pipeline.load_warehouse`` bounds the load (``CCWATCH_DUCKDB_LOAD_MEMORY_LIMIT`` passes
through): 20 commits pushed to the branch (the branch moved), their 20 activity entries and 5
deployments. Reported per N: the child's CPU and wall seconds, its peak RSS (``ru_maxrss``), the
stored lists' size, and the load's error if it failed. ``--json FILE`` writes the results.
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "include")]

LISTS = ("commits", "activity", "deployments")
AS_OF = datetime(2026, 11, 25, tzinfo=UTC)
NIGHT = AS_OF + timedelta(days=1)


def _shift(ts: str, days: int) -> str:
    return (datetime.strptime(ts, "%Y-%m-%dT%H:%M:%SZ") - timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%SZ")


def _sha(sha: str, copy_no: int) -> str:
    return hashlib.sha1(f"{copy_no}:{sha}".encode()).hexdigest()


def _older(kind: str, item: dict, k: int) -> dict:
    """``item`` as the same event k years earlier (its own ids and shas)."""
    c = copy.deepcopy(item)
    if kind == "commits":
        c["sha"] = _sha(c["sha"], k)
        c["parents"] = [dict(p, sha=_sha(p["sha"], k)) for p in c.get("parents") or []]
        for who in ("author", "committer"):
            c["commit"][who]["date"] = _shift(c["commit"][who]["date"], 365 * k)
    elif kind == "activity":
        c["id"] += 10**9 * k
        c["timestamp"] = _shift(c["timestamp"], 365 * k)
        c["before"], c["after"] = _sha(c["before"], k), _sha(c["after"], k)
    else:
        c["id"] += 10**9 * k
        c["created_at"], c["updated_at"] = _shift(c["created_at"], 365 * k), _shift(c["updated_at"], 365 * k)
    return c


def _aged(kind: str, items: list[dict], years: int) -> list[dict]:
    from ccwatch.warehouse.raw_lists import ACCUMULATING

    if years == 0:
        return items[:200]
    out = list(items)
    for k in range(1, years):
        out.extend(_older(kind, it, k) for it in items)
    if kind == "commits":  # each copy's oldest commit's first parent: the next older copy's tip
        n = len(items)
        for k in range(years - 1):
            oldest = n * (k + 1) - 1
            out[oldest] = dict(out[oldest], parents=[{"sha": _sha(items[0]["sha"], k + 1), "url": "", "html_url": ""}])
    # as the nightly merges leave a list: newest first by the kind's sort key (the staged year spans
    # a little more than 365 days, so the copies overlap at their ends)
    return sorted(out, key=ACCUMULATING[("github", kind)][1], reverse=True)


def _staged(staging: Path, repo: str | None) -> Path:
    """The repository's staging file (default: the largest, the busiest repository's)."""
    pattern = f"{repo.replace('/', '__')}.jsonl" if repo else "*.jsonl"
    files = sorted(staging.glob(f"home/staging/*/github/{pattern}"), key=lambda f: (-f.stat().st_size, f.name))
    if not files:
        raise SystemExit(f"{staging}: no staged records of {repo or 'any repository'} (made by bench_scale.py stage --keep?)")
    return files[0]


def busiest(staging: Path) -> str:
    return _staged(staging, None).stem.replace("__", "/", 1)


def _records(path: Path, years: int):
    from ccwatch.ingest.records import RawRecord

    with path.open(encoding="utf-8") as fh:
        for line in fh:
            d = json.loads(line)
            if d["kind"] in LISTS:
                d["payload"] = _aged(d["kind"], d["payload"], years)
            yield RawRecord(**d)


def _night(path: Path) -> list:
    """Tonight's records: 20 commits on the branch, their activity entries, 5 deployments."""
    from ccwatch.ingest.records import RawRecord

    base = {}
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            d = json.loads(line)
            if d["kind"] in (*LISTS, "branch", "gql_repository"):
                base[d["kind"]] = d
    old_tip = tip = base["commits"]["payload"][0]["sha"]
    commits: list[dict] = []
    for i in range(20):
        c = copy.deepcopy(base["commits"]["payload"][0])
        c["sha"], c["parents"] = f"{i:04x}" + "f" * 36, [{"sha": tip, "url": "", "html_url": ""}]
        c["commit"]["author"]["date"] = c["commit"]["committer"]["date"] = \
            (AS_OF + timedelta(hours=1, minutes=30 * i)).strftime("%Y-%m-%dT%H:%M:%SZ")
        c["commit"]["message"] = f"direct push {i}"
        commits.insert(0, c)
        tip = c["sha"]
    activity, before = [], old_tip
    for i, c in enumerate(reversed(commits)):
        a = copy.deepcopy(base["activity"]["payload"][0])
        a.update(id=9 * 10**11 + i, activity_type="push", before=before, after=c["sha"],
                 timestamp=c["commit"]["committer"]["date"])
        activity.insert(0, a)
        before = c["sha"]
    deployments = []
    for i in range(5):
        d = copy.deepcopy(base["deployments"]["payload"][0])
        d.update(id=9 * 10**11 + i, sha=commits[i]["sha"], created_at=commits[i]["commit"]["committer"]["date"],
                 updated_at=commits[i]["commit"]["committer"]["date"])
        deployments.append(d)
    # the tip: the repository's GraphQL node (stop 31), and REST's branch where the fetch asks it
    node = copy.deepcopy(base["gql_repository"])
    node["payload"]["productionBranch"] = {"name": base["commits"]["natural_key"].split(":", 1)[1],
                                           "target": {"oid": tip}}
    fetched = {"fetched_at": NIGHT.strftime("%Y-%m-%dT00:30:00Z"), "etag": None, "status_code": 200}
    night = [*(RawRecord(**dict(base[k], payload=p, **fetched))
               for k, p in (("commits", commits), ("activity", activity), ("deployments", deployments))),
             RawRecord(**dict(node, **fetched))]
    if "branch" in base:
        branch = copy.deepcopy(base["branch"])
        branch["payload"]["commit"]["sha"] = tip
        night.append(RawRecord(**dict(branch, **fetched)))
    return night


def _settings(staging: Path, repo: str):
    from ccwatch.settings import load_settings

    s = load_settings(staging / "ccwatch.yaml")
    return replace(s, github=replace(s.github, repositories=tuple(r for r in s.github.repositories if r.repo == repo)))


def child(args) -> dict:
    """One stage in this (child) process: ``setup`` builds the aged warehouse, ``night`` loads one night."""
    from ccwatch.warehouse import connection
    from ccwatch.warehouse.sightings import record_sightings
    from ccwatch.warehouse.store import load_records

    settings, path = _settings(args.staging, args.repo), _staged(args.staging, args.repo)
    if args.child == "setup":
        con = connection.connect(str(args.db))
        load_records(con, lambda: _records(path, args.years), settings,
                     before_commit=lambda c: record_sightings(c, settings, AS_OF))
        con.close()
        return {}
    records = _night(path)
    con = connection.connect(str(args.db))
    connection.set_memory_limit(con, connection.load_memory_limit())
    start, t = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    out: dict = {}
    try:
        load_records(con, records, settings, before_commit=lambda c: record_sightings(c, settings, NIGHT))
    except Exception as exc:  # noqa: BLE001 - the failure is the measurement
        out["error"] = f"{type(exc).__name__}: {str(exc).splitlines()[0]}"
    end = resource.getrusage(resource.RUSAGE_SELF)
    out.update(wall_s=round(time.perf_counter() - t, 2),
               cpu_s=round(end.ru_utime + end.ru_stime - start.ru_utime - start.ru_stime, 2),
               peak_rss_mib=end.ru_maxrss // 1024,
               stored_lists_mb=round(con.execute(  # the lists' items (raw_lists.py), or one value each before them
                   "SELECT coalesce(sum(length(payload::VARCHAR)), 0) + (SELECT coalesce(sum(length(item::VARCHAR)), 0) "
                   "FROM raw_list_items) FROM raw_payloads WHERE kind IN ('commits', 'activity', 'deployments')"
               ).fetchone()[0] / 1e6, 1),
               commit_rows=con.execute("SELECT count(*) FROM commits").fetchone()[0])
    con.close()
    return out


def _run(args, stage: str, years: int, db: Path) -> dict:
    cmd = [sys.executable, __file__, "--staging", str(args.staging), "--repo", args.repo, "--child", stage,
           "--years", str(years), "--db", str(db)]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{stage} {years}: {done.stderr.strip().splitlines()[-1:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> list[dict]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--staging", type=Path, required=True, help="a directory made by bench_scale.py stage --keep")
    ap.add_argument("--repo", help="the repository whose lists age (default: the busiest staged)")
    ap.add_argument("--years", default="0,1,2,3,4", help="comma-separated ages (0: the newest 200 items only)")
    ap.add_argument("--json", type=Path, help="write the results here")
    ap.add_argument("--child", choices=("setup", "night"), help=argparse.SUPPRESS)
    ap.add_argument("--db", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    args.repo = args.repo or busiest(args.staging)
    if args.child:
        args.years = int(args.years)
        print(json.dumps(child(args)))
        return []
    results = []
    with tempfile.TemporaryDirectory(prefix="list-age-") as tmp:
        for years in (int(y) for y in args.years.split(",")):
            setup, night = Path(tmp) / f"setup-{years}.duckdb", Path(tmp) / f"night-{years}.duckdb"
            _run(args, "setup", years, setup)
            shutil.copyfile(setup, night)
            row = {"years": years, "repo": args.repo, **_run(args, "night", years, night),
                   "load_memory_limit": os.environ.get("CCWATCH_DUCKDB_LOAD_MEMORY_LIMIT", "default")}
            results.append(row)
            print(json.dumps(row), flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return results


if __name__ == "__main__":
    main()
