"""Stop 28: run load_warehouse in process on a copy of a staging (``bench_scale.py stage --keep``),
sampling VmRSS every 5 ms and attributing each sample to the load's step running.

    PYTHONPATH=CHECKOUT/include:CHECKOUT/plugins python sample_load.py STAGING WORKDIR OUT.json [--keep]
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import sys
import threading
import time
from pathlib import Path

import ccwatch.warehouse.raw_store as rs
import ccwatch.warehouse.store as st
from ccwatch import pipeline as p
from ccwatch.common.times import parse_as_of
from ccwatch.settings import load_settings

src, work, out_path = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
os.environ.setdefault("CCWATCH_DUCKDB_MEMORY_LIMIT", "2GB")
meta = json.loads((src / "meta.json").read_text())
home = work / "home"
shutil.rmtree(home, ignore_errors=True)
shutil.copytree(src / "home" / "staging", home / "staging")
PAGE = os.sysconf("SC_PAGE_SIZE")
label = ["start"]
peaks: dict[str, float] = {}
trace: list[tuple[float, int, str]] = []
running = [True]


def sampler() -> None:
    fd = os.open("/proc/self/statm", os.O_RDONLY)
    t0 = time.perf_counter()
    while running[0]:
        rss = int(os.pread(fd, 100, 0).split()[1]) * PAGE / 2**20
        step = label[0]
        peaks[step] = max(peaks.get(step, 0), rss)
        trace.append((round(time.perf_counter() - t0, 2), round(rss), step))
        time.sleep(0.005)


threading.Thread(target=sampler, daemon=True).start()

raw_add = rs.RawUpserts.add


def labelled_raw_add(self, rec):
    label[0] = f"raw {getattr(rec, 'rec', rec).kind}"
    return raw_add(self, rec)


normalize_chunk = st.normalize_chunk


def labelled_normalize(recs, *a, **k):
    big = max((len(r.payload) if isinstance(r.payload, list) else 0, r.kind) for _, r in recs)
    label[0] = f"normalize (largest list {big[1]} {big[0]} items)" if big[0] > 2000 else "normalize"
    return normalize_chunk(recs, *a, **k)


stage_add, publish = st._StagedRows.add, st._StagedRows.publish


def labelled_stage(self, table, rows, positions):
    label[0] = f"stage {table}" + (" (>5000 rows)" if len(rows) > 5000 else "")
    try:
        return stage_add(self, table, rows, positions)
    finally:
        label[0] = "after stage"


def labelled_publish(self):
    label[0] = "publish"
    return publish(self)


rs.RawUpserts.add = labelled_raw_add
st.normalize_chunk = labelled_normalize
st._StagedRows.add = labelled_stage
st._StagedRows.publish = labelled_publish
# the chunker is not wrapped: a wrapping generator would hold each chunk while it is staged

t0 = time.perf_counter()
p.load_warehouse(load_settings(str(src / "ccwatch.yaml")), parse_as_of(meta["as_of"]), home)
running[0] = False
r = resource.getrusage(resource.RUSAGE_SELF)
res = {"s": round(time.perf_counter() - t0, 1), "cpu_s": round(r.ru_utime + r.ru_stime, 1),
       "ru_maxrss_mib": round(r.ru_maxrss / 1024),
       "peaks_by_phase": dict(sorted(((k, round(v)) for k, v in peaks.items()), key=lambda kv: -kv[1])[:25])}
print(json.dumps(res, indent=1))
out_path.write_text(json.dumps({**res, "trace": trace[::10]}))
if "--keep" not in sys.argv:
    shutil.rmtree(home, ignore_errors=True)
