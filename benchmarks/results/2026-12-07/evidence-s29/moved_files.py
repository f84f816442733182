"""Which change folders of evidence date D are byte-identical on D+1, and which files moved.

    python moved_files.py EVIDENCE/D EVIDENCE/D+1

Made on the homes of ``bench_evidence.py --changes 20000 --new 500 --repos 100`` (date D written, then
D+1), to see whether a nightly evidence step could carry a folder over from the previous date.
"""

from __future__ import annotations

import collections
import hashlib
import os
import sys


def digest(path: str) -> str:
    with open(path, "rb") as fh:
        return hashlib.sha256(fh.read()).hexdigest()


before, after = (os.path.join(d, "changes") for d in sys.argv[1:3])
same_folders = moved_folders = new = 0
same, moved = collections.Counter(), collections.Counter()
for folder in sorted(os.listdir(after)):
    if not os.path.isdir(os.path.join(before, folder)):
        new += 1
        continue
    unchanged = True
    for name in os.listdir(os.path.join(after, folder)):
        a, b = os.path.join(before, folder, name), os.path.join(after, folder, name)
        if os.path.exists(a) and digest(a) == digest(b):
            same[name] += 1
        else:
            moved[name] += 1
            unchanged = False
    same_folders += unchanged
    moved_folders += not unchanged
print(f"folders of D on D+1: byte-identical {same_folders}, moved {moved_folders}; new on D+1: {new}")
print("files unchanged:", dict(sorted(same.items())))
print("files moved:", dict(sorted(moved.items())))
