"""Where each stage keeps its files under ``CCWATCH_HOME`` (docs/OUTPUTS.md, docs/ARCHITECTURE.md)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path


def warehouse_path(home: Path) -> Path:
    return Path(home) / "warehouse.duckdb"


def staging_dir(home: Path, as_of: datetime) -> Path:
    """The fetch stages' hand-off to the load for one evidence date."""
    return Path(home) / "staging" / as_of.strftime("%Y-%m-%d")


def state_path(home: Path) -> Path:
    """The ingest state the last complete load left for the next fetch."""
    return Path(home) / "state" / "ingest_state.json"


def validation_path(home: Path, as_of: datetime) -> Path:
    """The Great Expectations results of one evidence date (evaluate -> publish)."""
    return Path(home) / "validations" / f"{as_of:%Y-%m-%d}.json"


def evidence_dir(home: Path) -> Path:
    return Path(home) / "evidence"


def samples_dir(home: Path) -> Path:
    return Path(home) / "samples"


def self_audits_dir(home: Path) -> Path:
    return Path(home) / "self-audits"
