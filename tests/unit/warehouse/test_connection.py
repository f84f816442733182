"""The warehouse connection: DuckDB's memory bounds (docs/PERFORMANCE.md) and the file lock."""

import pytest
from ccwatch.warehouse import connection


def _limit_gib(con) -> float:
    text = con.execute("SELECT current_setting('memory_limit')").fetchone()[0]
    number, unit = text.split()
    return float(number) * {"MiB": 1 / 1024, "GiB": 1.0}[unit]


def test_default_bound_is_2gb_not_80_percent_of_ram(tmp_path, monkeypatch):
    monkeypatch.delenv(connection.MEMORY_LIMIT_ENV, raising=False)
    con = connection.connect(tmp_path / "w.duckdb")
    try:
        assert 1.7 < _limit_gib(con) < 2.0  # DuckDB shows 2GB (10^9) as 1.8 GiB
    finally:
        con.close()


def test_env_sets_the_bound(tmp_path, monkeypatch):
    monkeypatch.setenv(connection.MEMORY_LIMIT_ENV, "512MB")
    con = connection.connect(tmp_path / "w.duckdb")
    try:
        assert _limit_gib(con) < 0.5
    finally:
        con.close()


def test_bad_value_names_the_variable(tmp_path, monkeypatch):
    monkeypatch.setenv(connection.MEMORY_LIMIT_ENV, "lots")
    with pytest.raises(ValueError, match="CCWATCH_DUCKDB_MEMORY_LIMIT='lots'"):
        connection.connect(tmp_path / "w.duckdb")


def _hold(path, seconds: float, read_only: bool):
    """A separate process that holds the warehouse open for ``seconds`` (DuckDB locks per process)."""
    import subprocess
    import sys

    proc = subprocess.Popen(
        [sys.executable, "-c", "import duckdb, sys, time\n"
         f"con = duckdb.connect(sys.argv[1], read_only={read_only})\nprint('open', flush=True)\n"
         f"time.sleep({seconds})\ncon.close()", str(path)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "open"
    return proc


def test_a_writer_waits_for_a_reader_that_holds_the_file_briefly(tmp_path):
    """The Compliance page reads the warehouse read-only for milliseconds; a nightly task opening it
    for writing at that moment waits for the reader instead of failing."""
    import time

    path = tmp_path / "w.duckdb"
    connection.connect(path).close()
    reader = _hold(path, 1.5, read_only=True)
    try:
        t = time.monotonic()
        con = connection.connect(path)
        con.close()
        assert time.monotonic() - t >= 0.5, "the reader held the file: the writer must have waited"
    finally:
        reader.wait(30)


def test_a_writer_still_fails_loudly_when_the_file_stays_locked(tmp_path, monkeypatch):
    import duckdb

    path = tmp_path / "w.duckdb"
    connection.connect(path).close()
    monkeypatch.setattr(connection, "LOCK_WAIT_SECONDS", 0.5)
    writer = _hold(path, 30, read_only=False)
    try:
        with pytest.raises(duckdb.IOException, match="lock"):
            connection.connect(path)
    finally:
        writer.kill()
        writer.wait()


def test_load_bound_defaults_to_1gb_never_above_the_general_one(monkeypatch):
    monkeypatch.delenv(connection.LOAD_MEMORY_LIMIT_ENV, raising=False)
    monkeypatch.delenv(connection.MEMORY_LIMIT_ENV, raising=False)
    assert connection.load_memory_limit() == "1GB"  # below the 2GB default
    monkeypatch.setenv(connection.MEMORY_LIMIT_ENV, "512MB")
    assert connection.load_memory_limit() == "512MB"  # a smaller general bound stays in force
    monkeypatch.setenv(connection.MEMORY_LIMIT_ENV, "4 GiB")
    assert connection.load_memory_limit() == "1GB"
    monkeypatch.setenv(connection.MEMORY_LIMIT_ENV, "80%")  # a form not compared: the general bound stays
    assert connection.load_memory_limit() == "80%"
    monkeypatch.setenv(connection.LOAD_MEMORY_LIMIT_ENV, "3GB")  # set: taken as given
    assert connection.load_memory_limit() == "3GB"


def test_set_memory_limit_bounds_the_connection_and_names_a_bad_value(tmp_path):
    con = connection.connect(tmp_path / "w.duckdb")
    try:
        connection.set_memory_limit(con, "256MB")
        assert _limit_gib(con) < 0.25
        for bad in ("lots", "1GB'; DROP TABLE runs; --"):
            with pytest.raises(ValueError, match="CCWATCH_DUCKDB_LOAD_MEMORY_LIMIT="):
                connection.set_memory_limit(con, bad)
        assert _limit_gib(con) < 0.25 and con.execute("SELECT count(*) FROM runs").fetchone() == (0,)
    finally:
        con.close()
