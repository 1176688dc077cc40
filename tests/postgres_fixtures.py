"""Fixtures for a real PostgreSQL server (started once per test session) and the store on both backends.

Load them in a test module with `pytest_plugins = ["tests.postgres_fixtures"]`: as a plugin its
session-scoped server starts once per session (an imported fixture would be redefined per module).
The PostgreSQL parameter fails, never skips, when the server cannot start: CI installs it.
"""
from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline.testing.pg_server import FAST_TEST_SETTINGS, PostgresUnavailable, TemporaryPostgres

BACKENDS = ("sqlite", "postgresql")
_database_numbers = itertools.count()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[TemporaryPostgres]:
    """One throw-away server for the session; tests get their own database in it."""
    try:
        server = TemporaryPostgres(FAST_TEST_SETTINGS).start()
    except PostgresUnavailable as error:
        pytest.fail(f"PostgreSQL test server could not start: {error}", pytrace=False)
    yield server
    server.stop()


@pytest.fixture(params=BACKENDS)
def results_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty results database URL: a SQLite file, then a PostgreSQL database."""
    if request.param == "sqlite":
        return str(tmp_path / "results.db")
    server = request.getfixturevalue("postgres_server")
    return server.create_database(f"results_test_{next(_database_numbers)}")
