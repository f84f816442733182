"""``python -m ccwatch`` in a subprocess, as an operator runs it (the outputs world's config)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.helpers import outputs_world
from tests.helpers.paths import ROOT


def cli(*args: str, home: Path | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CCWATCH_")}
    env["PYTHONPATH"] = str(ROOT / "include")
    env["CCWATCH_CONFIG"] = outputs_world.settings().source_path
    if home is not None:
        env["CCWATCH_HOME"] = str(home)
    return subprocess.run([sys.executable, "-m", "ccwatch", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120)
