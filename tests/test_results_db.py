"""Connections: URL routing, password redaction, SQLite's journal mode, one-line connection errors."""
from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.errors import UserError
from pipeline.results.db import SqliteDatabase, connect, redact_url


def test_passwords_never_reach_a_printed_url() -> None:
    assert redact_url("postgresql://ci:s3cret@db:5433/results") == "postgresql://ci:***@db:5433/results"
    assert redact_url("postgresql://postgres@/results?host=/tmp/x") == "postgresql://postgres@/results?host=/tmp/x"


def test_urls_pick_the_backend_and_the_environment_variable_is_the_default(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("RESULTS_DB", f"sqlite://{tmp_path}/env.db")
    database = connect()
    assert isinstance(database, SqliteDatabase) and database.path == tmp_path / "env.db"
    assert database.query("PRAGMA journal_mode")[0]["journal_mode"] == "wal"
    database.close()
    with pytest.raises(UserError, match="unsupported results database URL scheme 'mysql'"):
        connect("mysql://x/y")


def test_an_unreachable_server_is_one_line_without_the_password(tmp_path: Path) -> None:
    with pytest.raises(UserError) as caught:
        connect(f"postgresql://ci:s3cret@/results?host={tmp_path}&port=1&connect_timeout=2")
    message = str(caught.value)
    assert "s3cret" not in message and "ci:***@" in message and "check RESULTS_DB" in message
    assert "\n" not in message
