"""RESULTS_DB never appears with its password: not in user:pass@ URLs, not in ?password= query strings, not in
the driver's own error messages (libpq echoes whole URIs in some of them), and a libpq key=value string is
refused instead of silently becoming a SQLite file named after the password. Against a real PostgreSQL
server (trust auth, so any password is accepted and the connection succeeds) and SQLite."""
from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.errors import UserError
from pipeline.results import ResultsStore
from pipeline.results.db import connect, redact_url
from tests.conftest import run_cli

pytest_plugins = ["tests.postgres_fixtures"]
SECRET = "Hunter2-s3cret"


def _with_password(url: str, how: str) -> str:
    """The server's URL (postgresql://postgres@/db?host=...) with the password added as user:pass@ or ?password=."""
    if how == "userinfo":
        return url.replace("postgres@", f"postgres:{SECRET}@", 1)
    return f"{url}&password={SECRET}"


@pytest.mark.parametrize("url, shown", [
    (f"postgresql://ci:{SECRET}@db:5433/results", "postgresql://ci:***@db:5433/results"),
    (f"postgresql://ci@db/results?sslmode=disable&password={SECRET}",
     "postgresql://ci@db/results?sslmode=disable&password=***"),
    (f"postgres://ci@db/results?sslpassword={SECRET}&password={SECRET}",
     "postgres://ci@db/results?sslpassword=***&password=***"),
    (f"postgresql://ci:{SECRET}@db:99999/results", "postgresql://ci:***@db:99999/results"),  # bad port: no error
    (f"postgresql://ci:{SECRET}@[::1/results", "postgresql://<not a valid URL>"),
    ("postgresql://postgres@/results?host=/tmp/x", "postgresql://postgres@/results?host=/tmp/x"),
])
def test_redact_url_masks_every_password_spelling(url: str, shown: str) -> None:
    assert redact_url(url) == shown


@pytest.mark.parametrize("url", [
    f"postgresql://ci:{SECRET}@localhost:99999/results",  # libpq: invalid port number
    f"postgresql://ci:{SECRET}@[::1/results",  # libpq echoes the whole URI in this error
    f"postgresql://ci@localhost:1/results?password={SECRET}&connect_timeout=2",  # connection refused
    f"postgresql://ci:{SECRET}@localhost/results?passwrd=x",  # invalid URI query parameter
])
def test_driver_errors_are_one_line_without_the_password(url: str) -> None:
    with pytest.raises(UserError) as caught:
        connect(url)
    message = str(caught.value)
    assert SECRET not in message and "\n" not in message and "check RESULTS_DB" in message
    assert caught.value.__cause__ is None  # the driver's exception (holding the URL) is not chained


@pytest.mark.parametrize("conninfo", [
    f"host=db.example dbname=results user=ci password={SECRET}",
    f"host=db.example password={SECRET} broken",  # libpq cannot even parse it: still no SQLite file
    f"dbname=results password = {SECRET}",
])
def test_a_libpq_key_value_string_is_refused_not_made_a_sqlite_file(conninfo: str, tmp_path: Path,
                                                                   monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("RESULTS_DB", conninfo)
    result = run_cli("results", cwd=tmp_path)
    assert result.returncode == 1 and result.stderr.count("\n") == 1
    assert "libpq key=value string" in result.stderr and "postgresql://" in result.stderr
    assert SECRET not in result.stdout + result.stderr
    assert list(tmp_path.iterdir()) == []  # no file named after the connection string


def test_sqlite_paths_and_urls_still_work(tmp_path: Path) -> None:
    for url in (str(tmp_path / "a=b results.db"), f"sqlite://{tmp_path}/c.db"):
        with ResultsStore.open(url) as store:
            assert store.runs() == []


@pytest.mark.parametrize("how", ["userinfo", "query"])
def test_a_real_server_connection_never_prints_the_password(how: str, postgres_server, tmp_path: Path) -> None:
    url = _with_password(postgres_server.create_database(f"secrets_{how}"), how)
    with ResultsStore.open(url) as store:
        assert SECRET not in store.db.url and "***" in store.db.url
        store.begin_run("night", kind="nightly")
    listed = run_cli("results", "--all", "--db", url)
    empty = run_cli("results", "--device", "nothing-here", "--db", url)
    assert listed.returncode == empty.returncode == 0
    assert "no matching results in postgresql://postgres" in empty.stdout
    missing = run_cli("results", "--db", _with_password(postgres_server.url("no_such_database"), how))
    assert missing.returncode == 1 and 'database "no_such_database" does not exist' in missing.stderr
    for result in (listed, empty, missing):
        assert SECRET not in result.stdout + result.stderr
