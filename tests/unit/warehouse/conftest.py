"""Fixtures of the warehouse unit tests: the demo config's settings and an empty warehouse file."""

from __future__ import annotations

import pytest
from ccwatch.settings import load_settings
from ccwatch.warehouse.connection import connect

from tests.helpers.paths import CONFIG


@pytest.fixture(scope="module")
def settings():
    return load_settings(str(CONFIG))


@pytest.fixture
def con(tmp_path):
    c = connect(str(tmp_path / "wh.duckdb"))
    yield c
    c.close()
