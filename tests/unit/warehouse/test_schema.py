"""The warehouse connection's DuckDB memory bound (docs/PERFORMANCE.md)."""

import pytest
from ccwatch.warehouse import schema


def _limit_gib(con) -> float:
    text = con.execute("SELECT current_setting('memory_limit')").fetchone()[0]
    number, unit = text.split()
    return float(number) * {"MiB": 1 / 1024, "GiB": 1.0}[unit]


def test_default_bound_is_2gb_not_80_percent_of_ram(tmp_path, monkeypatch):
    monkeypatch.delenv(schema.MEMORY_LIMIT_ENV, raising=False)
    con = schema.connect(tmp_path / "w.duckdb")
    try:
        assert 1.7 < _limit_gib(con) < 2.0  # DuckDB shows 2GB (10^9) as 1.8 GiB
    finally:
        con.close()


def test_env_sets_the_bound(tmp_path, monkeypatch):
    monkeypatch.setenv(schema.MEMORY_LIMIT_ENV, "512MB")
    con = schema.connect(tmp_path / "w.duckdb")
    try:
        assert _limit_gib(con) < 0.5
    finally:
        con.close()


def test_bad_value_names_the_variable(tmp_path, monkeypatch):
    monkeypatch.setenv(schema.MEMORY_LIMIT_ENV, "lots")
    with pytest.raises(ValueError, match="CCWATCH_DUCKDB_MEMORY_LIMIT='lots'"):
        schema.connect(tmp_path / "w.duckdb")
