"""A recorder killed mid-run (SIGKILL) or interrupted (Ctrl-C) loses nothing committed and counts nothing half-done."""
from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

from pipeline.results.store import ResultsStore
from pipeline.testing.synthetic import benchmark_document
from tests.ctrl_c import interruptible

REPO = Path(__file__).resolve().parent.parent
SHA = "ef" * 32
RESULTS_BEFORE_KILL = 5
MAX_RESULTS = 2000  # the child stops by itself if never killed
READ_TIMEOUT_S = 60

# Records results into one running run forever, printing each committed count.
RECORDER = f"""
import sys, time
from pipeline.results.store import ResultsStore
from pipeline.testing.synthetic import benchmark_document

pytest_plugins = ["tests.postgres_fixtures"]  # a real PostgreSQL server, once per session
store = ResultsStore.open(sys.argv[1])
def record_forever(run_id):
    for n in range(1, {MAX_RESULTS}):
        store.record_benchmark(run_id, "pqat_int8", benchmark_document(
            device="pi5", model_sha256="{SHA}", samples=[10.0 + i / 7 for i in range(200)]), device="pi5")
        print("recorded", n, flush=True)
        time.sleep(0.01)
if sys.argv[2] == "plain":
    record_forever(store.begin_run("crashy", kind="nightly"))
else:
    with store.recording("interrupted", kind="nightly") as run_id:
        record_forever(run_id)
"""


def _start_recorder(url: str, mode: str) -> subprocess.Popen:
    child = subprocess.Popen([sys.executable, "-c", RECORDER, url, mode], cwd=REPO, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, preexec_fn=interruptible)
    for line in child.stdout:
        if line.split() == ["recorded", str(RESULTS_BEFORE_KILL)]:
            return child
    child.wait(timeout=READ_TIMEOUT_S)
    raise AssertionError(f"recorder exited early: {child.stderr.read()}")


def _complete_run(store: ResultsStore, name: str) -> int:
    with store.recording(name, kind="nightly") as run_id:
        store.record_benchmark(run_id, "pqat_int8", benchmark_document(device="pi5", model_sha256=SHA, samples=[9.0]),
                               device="pi5")
    return run_id


def test_sigkill_mid_run_keeps_earlier_results_and_the_next_recording_works(results_url: str) -> None:
    with ResultsStore.open(results_url) as store:
        earlier = _complete_run(store, "earlier")
    child = _start_recorder(results_url, "plain")
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=READ_TIMEOUT_S)
    child.stdout.close()
    child.stderr.close()
    with ResultsStore.open(results_url) as store:
        if store.db.dialect == "sqlite":
            assert store.db.query("PRAGMA integrity_check")[0]["integrity_check"] == "ok"
        [crashed] = store.runs(statuses=("running",))
        assert [r["run_id"] for r in store.results()] == [earlier]  # the killed run does not count
        kept = store.results(run_id=crashed["id"], statuses=("running",))
        assert len(kept) >= RESULTS_BEFORE_KILL
        assert all(len(store.samples(r["id"])) == 200 for r in kept)  # no torn blob
        after = _complete_run(store, "after")  # begin_run reaps the dead recorder's run
        assert store.run(crashed["id"])["status"] == "failed"
        assert [r["run_id"] for r in store.results()] == [earlier, after]


def test_ctrl_c_mid_run_marks_the_run_failed(results_url: str) -> None:
    child = _start_recorder(results_url, "context")
    child.send_signal(signal.SIGINT)
    _, stderr = child.communicate(timeout=READ_TIMEOUT_S)
    assert child.returncode != 0 and "KeyboardInterrupt" in stderr
    with ResultsStore.open(results_url) as store:
        [run] = store.runs(statuses=("failed",))
        assert run["name"] == "interrupted" and store.results() == []
        assert len(store.results(statuses=("failed",))) >= RESULTS_BEFORE_KILL
