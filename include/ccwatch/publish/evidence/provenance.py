"""Where and when an evidence folder was made: manifest.json's ``generated_at`` and ``run`` blocks.

``run`` names the orchestrator's run when the caller knows it (the Airflow glue passes dag id, run id
and try number; plain Python, the tests and the CLI pass nothing and those fields are null), the
host, the ccwatch version and the source revision:

* ``git rev-parse HEAD`` of the project folder when it is the top of a git checkout (with
  ``source_modified``: whether tracked files differ from that commit);
* else the environment variable ``CCWATCH_SOURCE_REVISION`` (set it when building an image from a
  checkout whose .git is not shipped, e.g. ``--build-arg``);
* else null.
"""

from __future__ import annotations

import os
import socket
import subprocess
from datetime import UTC, datetime
from pathlib import Path

from ccwatch import __version__

SOURCE_REVISION_ENV = "CCWATCH_SOURCE_REVISION"
RUN_KEYS = ("dag_id", "run_id", "try_number")


def utc_now_z() -> str:
    """The wall clock as ``YYYY-MM-DDTHH:MM:SS.ffffffZ`` (bookkeeping only, never used to evaluate)."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _git(root: Path, *args: str) -> str | None:
    try:
        out = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, timeout=10,
                             check=False, env={**os.environ, "GIT_OPTIONAL_LOCKS": "0"})
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def source_revision(root: Path) -> tuple[str | None, bool | None, str]:
    """(revision, modified, where it came from): see the module doc."""
    top = _git(root, "rev-parse", "--show-toplevel")
    if top and Path(top).resolve() == Path(root).resolve():
        rev = _git(root, "rev-parse", "HEAD")
        if rev:
            status = _git(root, "status", "--porcelain", "--untracked-files=no")
            return rev, (bool(status) if status is not None else None), "git"
    env = os.environ.get(SOURCE_REVISION_ENV, "").strip()
    if env:
        return env[:200], None, SOURCE_REVISION_ENV
    return None, None, "unknown"


def run_block(run_info: dict | None, root: Path) -> dict:
    """manifest.json's ``run``: the keys of ``run_info`` that the orchestrator knows, the rest null."""
    info = run_info or {}
    rev, modified, origin = source_revision(root)
    out: dict = {k: (None if info.get(k) is None else info[k]) for k in RUN_KEYS}
    if out["try_number"] is not None:
        out["try_number"] = int(out["try_number"])
    for k in ("dag_id", "run_id"):
        if out[k] is not None:
            out[k] = str(out[k])[:250]
    out.update(host=socket.gethostname() or None, ccwatch_version=__version__, source_revision=rev,
               source_modified=modified, source_revision_from=origin)
    return out
