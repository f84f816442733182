"""Run CHECKOUT's bench_scale.py with its nightly homes kept: keep.py CHECKOUT args...

    python keep.py /work/main nightly --repos 60 --prs 3000 --new 120 --latency-ms 0 --workers 4 --workdir DIR
"""

import runpy
import shutil
import sys

root = sys.argv[1]
sys.argv = [f"{root}/benchmarks/bench_scale.py", *sys.argv[2:]]
sys.path.insert(0, f"{root}/benchmarks")
real = shutil.rmtree
shutil.rmtree = lambda p, *a, **k: None if "nightly-" in str(p) else real(p, *a, **k)
runpy.run_path(sys.argv[0], run_name="__main__")
