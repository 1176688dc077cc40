"""pipeline/core/folders.py with real processes and real filesystems: a second pipeline or nightly on a
folder in use refuses and leaves the first one's temporary files alone; a read-only or full build, results
or reports folder is one line naming the folder and the fix, never a traceback.

Read-only and full filesystems are real tmpfs mounts in a private mount namespace (`unshare -rm`), so the
errors are the kernel's EROFS and ENOSPC (file modes would not stop root)."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from pipeline.core.folders import folder_lock
from pipeline.errors import UserError
from pipeline.results import ResultsStore
from tests.conftest import REPO, micro_config, run_cli, write_toml

HOLD_LOCK = """
import sys, time
from pathlib import Path
from pipeline.core.folders import folder_lock
folder = Path(sys.argv[1])
with folder_lock(folder, "pipeline run", "fix"):
    (folder / ".tmp-convert.in-progress").mkdir()  # what the first process is writing right now
    print("locked", flush=True)
    time.sleep(120)
"""


@pytest.fixture
def lock_holder(tmp_path: Path):
    """Start a process that holds a folder's lock (the pipeline's own code) while it writes a temporary."""
    children = []

    def start(folder: Path) -> subprocess.Popen:
        child = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(folder)], cwd=REPO, text=True,
                                 stdout=subprocess.PIPE, env={**os.environ, "PYTHONPATH": str(REPO)})
        children.append(child)
        assert child.stdout.readline() == "locked\n"
        return child

    yield start
    for child in children:
        child.kill()
        child.wait()


def _one_line_error(result: subprocess.CompletedProcess) -> str:
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("error: "), result.stderr
    assert "Traceback" not in result.stderr
    return result.stderr


def test_a_second_pipeline_on_the_same_run_folder_refuses_and_deletes_nothing(tmp_path: Path, lock_holder) -> None:
    config = write_toml(micro_config(tmp_path / "build", "shared"), tmp_path / "micro.toml")
    run_dir = tmp_path / "build" / "shared"
    first = lock_holder(run_dir)
    second = run_cli("run", "--config", str(config))
    assert second.returncode == 1
    assert f"{run_dir} is in use by another pipeline run (pid {first.pid})" in _one_line_error(second)
    assert (run_dir / ".tmp-convert.in-progress").is_dir()  # today's bug: the second one deleted it
    first.kill()
    first.wait()
    with folder_lock(run_dir, "pipeline run", "fix"):  # the kernel released the dead process's lock
        pass


def test_a_second_nightly_on_the_same_reports_folder_refuses(tmp_path: Path, lock_holder) -> None:
    pipeline_config = write_toml(micro_config(tmp_path / "build"), tmp_path / "micro.toml")
    reports = tmp_path / "reports"
    config = tmp_path / "nightly.toml"
    config.write_text(f'[nightly]\npipeline = "{pipeline_config}"\nresults_db = "{tmp_path / "results.db"}"\n'
                      f'reports_dir = "{reports}"\n')
    first = lock_holder(reports)
    second = run_cli("nightly", "--config", str(config))
    assert second.returncode == 2  # no verdict
    assert f"{reports} is in use by another" in _one_line_error(second) and f"pid {first.pid}" in second.stderr
    assert (reports / ".tmp-convert.in-progress").is_dir()
    with ResultsStore.open(str(tmp_path / "results.db")) as store:
        assert store.runs(statuses=("running", "complete", "failed")) == []  # nothing recorded


def test_the_lock_refuses_in_process_too(tmp_path: Path) -> None:
    with folder_lock(tmp_path, "nightly", "fix"):
        with pytest.raises(UserError, match=rf"{tmp_path} is in use by another nightly \(pid {os.getpid()}\)"):
            with folder_lock(tmp_path, "nightly", "fix"):
                pass


def _private_mounts_work() -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(["unshare", "-rm", "sh", "-c", "mount -t tmpfs -o size=64k tmpfs /mnt"],
                           capture_output=True)
    return probe.returncode == 0


needs_mounts = pytest.mark.skipif(not _private_mounts_work(), reason="needs unshare -rm and tmpfs mounts")


def _in_mount(folder: Path, options: str, *command: str, fill: bool = False) -> subprocess.CompletedProcess:
    """Run `command` with a fresh tmpfs (mount `options`) on `folder`, seen by this command only."""
    folder.mkdir(parents=True, exist_ok=True)
    filler = f" && (head -c 1M /dev/zero > {folder}/filler 2>/dev/null; true)" if fill else ""
    script = f"mount -t tmpfs -o {options} tmpfs {folder}{filler} && exec \"$@\""
    return subprocess.run(["unshare", "-rm", "sh", "-c", script, "sh", *command], cwd=REPO, capture_output=True,
                          text=True, env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=300)


@needs_mounts
def test_a_read_only_build_folder_is_one_line(tmp_path: Path) -> None:
    config = write_toml(micro_config(tmp_path / "build"), tmp_path / "micro.toml")
    result = _in_mount(tmp_path / "build", "ro,size=64k", sys.executable, "-m", "pipeline", "data",
                       "--config", str(config))
    assert result.returncode == 1
    error = _one_line_error(result)
    assert f"cannot write into {tmp_path / 'build' / 'micro'}: Read-only file system" in error
    assert "set run.build_dir in" in error


@needs_mounts
def test_a_read_only_results_folder_is_one_line(tmp_path: Path) -> None:
    result = _in_mount(tmp_path / "results", "ro,size=64k", sys.executable, "-m", "pipeline", "results",
                       "--db", str(tmp_path / "results" / "results.db"))
    assert result.returncode == 1
    assert f"cannot open the results database {tmp_path / 'results' / 'results.db'}" in _one_line_error(result)


PUBLISH_INTO_FULL_FOLDER = """
import sys
from pipeline.nightly.publish import publish
from pipeline.nightly.report import build_report
from pipeline.results import ResultsStore
from pipeline.errors import UserError
from pipeline.results import ResultsStore
with ResultsStore.open(sys.argv[2]) as store:
    with store.recording("night", kind="nightly") as run_id:
        pass
    report = build_report(store, run_id, devices=["local"], findings=[])
try:
    publish(report, sys.argv[1])
except UserError as error:
    print(f"error: {error}", file=sys.stderr)
    sys.exit(1)
"""


@needs_mounts
def test_a_full_reports_folder_is_one_line(tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    result = _in_mount(reports, "size=32k", sys.executable, "-c", textwrap.dedent(PUBLISH_INTO_FULL_FOLDER),
                       str(reports), str(tmp_path / "results.db"), fill=True)
    assert result.returncode == 1, result.stderr
    error = _one_line_error(result)
    assert f"cannot write into {reports}: No space left on device" in error and "--reports" in error


CHECK_RUN_FOLDER = """
import json, sys
from pathlib import Path
from pipeline.core.artifacts import TMP_PREFIX, Manifest
manifest = Manifest(sys.argv[1])
print(json.dumps({"stages": {name: manifest.outputs_intact(name) for name in manifest.data["stages"]},
                  "leftovers": sorted(p.name for p in Path(sys.argv[1]).iterdir() if p.name.startswith(TMP_PREFIX))}))
"""


@needs_mounts
@pytest.mark.parametrize("stage, size, kept", [
    ("pretrain", "64k", ["data"]),  # the encoder's save_weights fills the disk
    ("finetune", "200k", ["data", "pretrain"]),  # the classifier's model.save fills the disk
])
def test_a_full_build_folder_during_a_model_save_is_one_line(tmp_path: Path, stage: str, size: str,
                                                               kept: list[str]) -> None:
    """HDF5 on a full disk raised RuntimeError tracebacks, and model.save then crashed the interpreter at exit."""
    config = write_toml(micro_config(tmp_path / "build"), tmp_path / "micro.toml")
    run_dir = tmp_path / "build" / "micro"
    script = '"$1" -m pipeline "$2" --config "$3"; status=$?; "$1" -c "$4" "$5"; exit $status'
    result = _in_mount(tmp_path / "build", f"size={size}", "sh", "-c", script, "sh", sys.executable, stage,
                       str(config), CHECK_RUN_FOLDER, str(run_dir))
    assert result.returncode == 1, result.stderr[-2000:]
    last = result.stderr.splitlines()[-1]
    assert "Traceback" not in result.stderr and "Segmentation" not in result.stderr
    assert last == (f"error: cannot write into {run_dir}: No space left on device; make it writable or free some "
                    f"space, or set run.build_dir in {config}")
    state = json.loads(result.stdout)
    assert state == {"stages": {name: True for name in kept}, "leftovers": []}  # earlier stages intact, no half file


FULL_RESULTS_DISK = """
import subprocess, sys
from pathlib import Path
from pipeline.errors import UserError
from pipeline.results import ResultsStore
from pipeline.testing.synthetic import benchmark_document
folder, db = Path(sys.argv[1]), sys.argv[1] + "/results.db"
def result(count):
    return benchmark_document(device="local", model_sha256="a" * 64, samples=[1.0 + i / 1000 for i in range(count)])
with ResultsStore.open(db) as store:
    with store.recording("first") as run_id:
        store.record_benchmark(run_id, "v", result(100), device="local")
    subprocess.run(f"head -c 1M /dev/zero > {folder}/filler", shell=True, stderr=subprocess.DEVNULL)
    try:  # the store is open: the write itself hits the full disk
        with store.recording("second") as run_id:
            store.record_benchmark(run_id, "v", result(10_000), device="local")
    except UserError as error:
        print(f"error: {error}")
# a new process on the full disk: SQLite cannot even create its -wal/-shm files
pinned = subprocess.run([sys.executable, "-m", "pipeline", "baseline", "pin", "first", "--db", db],
                        capture_output=True, text=True)
print(pinned.stderr.strip(), pinned.returncode, pinned.stderr.count("\\n"))
(folder / "filler").unlink()  # the user frees some space
with ResultsStore.open(db) as store:
    print(len(store.results()), [run["name"] for run in store.runs(statuses=("running", "complete", "failed"))])
"""


@needs_mounts
def test_a_full_results_disk_is_one_line_and_keeps_earlier_results(tmp_path: Path) -> None:
    """SQLite's 'database or disk is full' and 'disk I/O error' become one line naming the database and the fix."""
    results = tmp_path / "results"
    result = _in_mount(results, "size=256k", sys.executable, "-c", textwrap.dedent(FULL_RESULTS_DISK), str(results))
    assert result.returncode == 0, result.stderr
    write_error, pin_error, counts = result.stdout.splitlines()
    full = f"cannot write into the results database {results / 'results.db'}: the disk is full"
    fix = "free some space, or move the database elsewhere with RESULTS_DB / --db"
    assert write_error.startswith(f"error: {full} (database or disk is full)") and write_error.endswith(fix)
    assert pin_error.startswith(f"error: {full}") and pin_error.endswith(f"{fix} 1 1")  # one line, exit 1
    assert counts == "1 ['first']"  # the earlier result is intact; the failed run left nothing
