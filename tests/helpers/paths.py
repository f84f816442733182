"""Paths of the repository the tests read (configuration, demo data, benchmarks, compose files)."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "include" / "config" / "ccwatch.yaml"
DEMO_SCENARIO = ROOT / "include" / "demo" / "scenario.json"
BENCHMARKS = ROOT / "benchmarks"
