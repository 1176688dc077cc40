"""Fault injection on the results store: a SQLite file whose inner pages are damaged (its header still
valid) is refused in one line by every command that opens it, naming how to check and restore it, and
not one byte of it changes (nor do -wal/-shm files appear beside it)."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from pipeline.core.artifacts import sha256_file
from pipeline.results import ResultsStore, VariantRecord
from pipeline.testing.synthetic import benchmark_document
from tests.conftest import REPO, run_cli

PAGE = 4096  # SQLite's default page size
SHA = "ab" * 32
COMMANDS = {
    "results": ["results"],
    "results --json": ["results", "--json"],
    "baseline pin": ["baseline", "pin", "3"],
    "baseline show": ["baseline", "show"],
    "nightly": ["nightly", "--config", str(REPO / "configs" / "nightly.toml")],
    "sweep": ["sweep", "--config", str(REPO / "configs" / "sweep.toml")],
    "search": ["search", "--config", str(REPO / "configs" / "search.toml")],
}


@pytest.fixture(scope="module")
def damaged_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store with 20 nights, then every page after the first overwritten at its start."""
    path = tmp_path_factory.mktemp("damaged") / "results.db"
    with ResultsStore.open(str(path)) as store:
        for day in range(1, 21):
            with store.recording(f"n{day}", kind="nightly", variants=[VariantRecord("v", SHA, 1)]) as run_id:
                samples = [1.0 + index / 100 for index in range(400)]
                store.record_benchmark(run_id, "v", benchmark_document(device="pi", model_sha256=SHA, samples=samples),
                                       device="pi")
    data = bytearray(path.read_bytes())
    assert data.startswith(b"SQLite format 3\x00") and len(data) > 10 * PAGE
    for start in range(PAGE, len(data), PAGE):
        data[start : start + 64] = os.urandom(64)
    path.write_bytes(bytes(data))
    return path


@pytest.mark.parametrize("command", list(COMMANDS))
def test_a_damaged_database_is_one_line_from_every_command_and_stays_untouched(command, damaged_db, tmp_path):
    before = sha256_file(damaged_db)
    done = run_cli(*COMMANDS[command], "--db", str(damaged_db), cwd=REPO)
    assert done.returncode != 0
    [line] = done.stderr.splitlines()
    assert line.startswith(f"error: the results database {damaged_db} is damaged (")
    assert 'PRAGMA integrity_check"`' in line and "backup" in line and "nothing was written" in line
    assert sha256_file(damaged_db) == before
    assert sorted(path.name for path in damaged_db.parent.iterdir()) == ["results.db"]
