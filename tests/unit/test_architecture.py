"""The architecture as checked contracts: import-linter over include/ccwatch and plugins/ccwatch_airflow
(pyproject.toml [tool.importlinter]; docs/ARCHITECTURE.md, "The layers, checked")."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.helpers.paths import ROOT


def _lint(cwd: Path, config: Path | None = None) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).with_name("lint-imports")
    args = [str(exe)] + (["--config", str(config)] if config else [])
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=300)


def test_every_contract_is_kept():
    res = _lint(ROOT)
    assert res.returncode == 0, res.stdout + res.stderr
    for name in ("layers", "never imports Airflow", "API double", "No import cycles", "private name"):
        assert any(name in line and "KEPT" in line for line in res.stdout.splitlines()), (name, res.stdout)


def test_the_contracts_catch_a_layer_a_cycle_and_a_private_import(tmp_path):
    """A contract that cannot fail is no contract: a copy of the package with three planted
    violations breaks exactly the three contracts that guard against them."""
    import shutil

    for part in ("include", "plugins", "tools"):
        shutil.copytree(ROOT / part, tmp_path / part, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    probe = tmp_path / "include" / "ccwatch" / "ingest" / "zz_probe.py"
    probe.write_text("from ccwatch.warehouse import schema  # noqa: F401  ingest -> warehouse: upward\n"
                     "from ccwatch.controls.text import _PRESENT_TYPES  # noqa: F401  a private name\n")
    (tmp_path / "include" / "ccwatch" / "common" / "zz_probe.py").write_text(
        "import ccwatch.ingest.zz_probe  # noqa: F401  common -> ingest, and back through warehouse: a cycle\n")
    res = subprocess.run([str(Path(sys.executable).with_name("lint-imports"))], cwd=tmp_path, capture_output=True,
                         text=True, timeout=300, env={"PYTHONPATH": f"{tmp_path / 'include'}:{tmp_path / 'plugins'}",
                                                      "PATH": "/usr/bin:/bin"})
    broken = [line for line in res.stdout.splitlines() if line.rstrip().endswith("BROKEN")]
    assert res.returncode != 0 and len(broken) == 3, res.stdout
    assert "imports the private name _PRESENT_TYPES" in res.stdout
