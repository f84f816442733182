"""Stop 28's 200k proxy: a 100k staging (``bench_scale.py stage --keep``) twice, the copy under owner
``sxnth`` (as long as ``synth``), with its batches digests, counts and configuration.

    python double_staging.py STAGING-100000 STAGING-200000
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
from pathlib import Path

src, dst = Path(sys.argv[1]), Path(sys.argv[2])
shutil.rmtree(dst, ignore_errors=True)
shutil.copytree(src, dst)
sdir = next((dst / "home" / "staging").iterdir())
gh = sdir / "github"


def swap(text: str) -> str:
    return text.replace("synth/", "sxnth/")


for f in sorted(gh.iterdir()):
    if f.name.startswith("synth__"):
        (gh / f.name.replace("synth__", "sxnth__", 1)).write_text(swap(f.read_text(encoding="utf-8")), encoding="utf-8")
meta = json.loads((sdir / "github_batches.json").read_text())
for repo in list(meta["repos"]):
    copy = swap(repo)
    meta["repos"][copy] = hashlib.sha256((gh / (copy.replace("/", "__") + ".batches.json")).read_bytes()).hexdigest()
meta["records"] *= 2
(sdir / "github_batches.json").write_text(json.dumps(meta, indent=1))
lines = (sdir / "github_batches.jsonl").read_text(encoding="utf-8")
(sdir / "github_batches.jsonl").write_text(lines + swap(lines), encoding="utf-8")
counts = json.loads((sdir / "github_counts.json").read_text())
counts["repos"].update({swap(k): json.loads(swap(json.dumps(v))) for k, v in counts["repos"].items()})
(sdir / "github_counts.json").write_text(json.dumps(counts, indent=1))
head, _, tail = (dst / "ccwatch.yaml").read_text().partition("  repositories:\n")
block = tail.split("\n")
end = next(i for i, line in enumerate(block) if line and not line.startswith("    "))  # the next top-level key
repos = "\n".join(block[:end]).rstrip("\n")
(dst / "ccwatch.yaml").write_text(head + "  repositories:\n" + repos + "\n" + swap(repos) + "\n" + "\n".join(block[end:]))
m = json.loads((dst / "meta.json").read_text())
m.update(prs=m["prs"] * 2, repos=m["repos"] * 2, proxy="the 100k staging twice (owner sxnth)")
(dst / "meta.json").write_text(json.dumps(m, indent=1))
