"""Run write_evidence of D+1 on a copy of a prepared home. usage: step.py CODE_INCLUDE SNAPSHOT WORKDIR [profile.out]"""
import os, json, pickle, resource, shutil, subprocess, sys, time
from datetime import timedelta
from pathlib import Path
code, snap, work = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
prof = sys.argv[4] if len(sys.argv) > 4 else None
sys.path[:0] = [str(Path(code).parent), str(Path(code).parent / "benchmarks"), code]
# s21: a fresh WORKDIR per run, never deleted before a run: this VM's ext4 has no journal, and its inode
# allocator skips every inode freed in the last 30 s (5.5 min while its inode-table block is dirty)
# (fs/ext4/ialloc.c recently_deleted), which turned the previous copy's rmtree into 20-40 s of system time
if work.exists():
    sys.exit(f"{work} exists: use a fresh work dir (see the comment)")
subprocess.run(["cp", "-a", str(snap), str(work)], check=True)
os.sync()  # s21: the copy (and the previous run's deletion) written back before the clock starts
import bench_evidence as be
from ccwatch.publish.evidence.write import write_evidence
try:
    from ccwatch.warehouse.connection import connect
except ImportError:
    from ccwatch.warehouse.schema import connect
import ccwatch
from ccwatch.publish.evidence import provenance
provenance.source_revision = lambda root: ('0'*40, False, 'git')
import socket
socket.gethostname = lambda: 'bench-host'
s = be.settings(100)
con = connect(str(work / "bench.duckdb"))
con.execute("SET memory_limit = '2GB'")
gx = pickle.loads((work / "gx.pickle").read_bytes())
as_of = be.AS_OF + timedelta(days=1)
fn = lambda: write_evidence(con, s, as_of, work, gx, "<html>report</html>\n", {}, generated_at="2026-11-26T01:00:00Z")
load0 = open('/proc/loadavg').read().split()[:3]
w, c, m = time.perf_counter(), time.process_time(), time.thread_time(); t0 = os.times()
if prof:
    import cProfile
    pr = cProfile.Profile(); pr.enable(); ev = fn(); pr.disable(); pr.dump_stats(prof)
else:
    ev = fn()
wall, cpu, main_cpu = time.perf_counter() - w, time.process_time() - c, time.thread_time() - m; t1 = os.times()
con.close()
out = {"code": str(Path(ccwatch.__file__).resolve().parents[1]), "wall": round(wall, 2), "cpu": round(cpu, 2), "user": round(t1.user - t0.user, 2), "sys": round(t1.system - t0.system, 2), "main_thread_cpu": round(main_cpu, 2), "children_cpu": round(t1.children_user + t1.children_system - t0.children_user - t0.children_system, 2), "cpu_with_children": round(cpu + t1.children_user + t1.children_system - t0.children_user - t0.children_system, 2), "load_before": load0, "load_after": open("/proc/loadavg").read().split()[:3],
       "files": ev.files, "sha256": ev.sha256, "archive_bytes": ev.archive.stat().st_size,
       "manifest_sha256": ev.manifest_sha256, "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}
print(json.dumps(out))
