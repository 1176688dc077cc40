"""Fault injection from the board's side: the real agent runs, and a wrapper rewrites its JSON before the
host reads it, as a hostile or broken board would. Every forged class is refused in one line naming the
device and the field, through `bench` and through a night; nothing is stored as a result and the honest
nights' history is unchanged. An honest board whose kernels round differently is not called a mismatch.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from pipeline.cli import main
from pipeline.core.artifacts import sha256_file
from pipeline.devices.inventory import DeviceProfile
from pipeline.nightly.job import NightlyJob
from pipeline.nightly.nightly_config import NightlyConfig
from pipeline.results import ResultsStore, Series
from pipeline.results.store import COMPLETE, FAILED, RUNNING, VariantRecord
from tests.agent_fixtures import (  # noqa: F401
    TFLITE214_PYTHON,
    agent_models,
    rewriting_python,
    ten_class_model,
    write_samples,
)
from tests.sshd_fixtures import QUICK_BENCH

pytest_plugins = ["tests.postgres_fixtures"]

ENERGY = ('{"meter": "hwmon", "note": "forged", "sample_hz": 20.0, "samples": 3, "idle_w": 1.0, "avg_w": 2.0, '
          '"mj_per_inference": 0.5, "mj_per_inference_above_idle": 0.25, "window_s": 1.0, "windows": None}')
# class -> (the rewrite, the field the refusal must name, a word it must hold)
FORGERIES = {
    "negative latencies": ("document['latency_samples_ms'] = [-5.0 for _ in document['latency_samples_ms']]\n"
                           "document['latency_ms'] = {k: -5.0 for k in document['latency_ms']}",
                           "latency_ms.mean", "> 0"),
    "nan": ("document['latency_ms']['median'] = float('nan')", "latency_ms.median", "finite"),
    "infinity": ("document['throughput_ips'] = float('inf')", "throughput_ips", "finite"),
    "no runs": ("document.update(runs=0, latency_samples_ms=[])\n"
                "document['latency_ms'] = {k: None for k in document['latency_ms']}", "runs", ">= 1"),
    "a string for a number": ("document['latency_ms']['p90'] = 'fast'", "latency_ms.p90", "'fast'"),
    "newer schema": ("document['schema_version'] = 99", "schema_version", "update the host"),
    "energy without a meter": (f"document['energy'] = {ENERGY}", "energy", "no energy meter"),
    "halved medians": ("document['latency_ms']['median'] /= 2", "latency_ms.median", "does not match the samples"),
    "runs not the samples": ("document['runs'] += 1", "runs", "samples"),
    "faster than its samples": ("document['throughput_ips'] *= 2", "throughput_ips", "timed_wall_s"),
}


def _profile(name: str, workdir: Path, python: Path | str = sys.executable) -> DeviceProfile:
    return DeviceProfile(name=name, transport="local", workdir=str(workdir), python=str(python), **QUICK_BENCH)


def _inventory(path: Path, python: Path, workdir: Path) -> Path:
    settings = "\n".join(f"{key} = {value!r}" for key, value in QUICK_BENCH.items())
    path.write_text(f'[devices.board]\ntransport = "local"\nworkdir = "{workdir}"\npython = "{python}"\n{settings}\n')
    return path


@pytest.mark.parametrize("forgery", list(FORGERIES))
def test_bench_refuses_a_forged_document_in_one_line_naming_the_field(forgery, agent_models, tmp_path, monkeypatch,
                                                                      capsys):
    rewrite, field, word = FORGERIES[forgery]
    python = rewriting_python(tmp_path / "hostile-python", rewrite)
    inventory = _inventory(tmp_path / "devices.toml", python, tmp_path / "device")
    monkeypatch.chdir(tmp_path)
    code = main(["bench", "--devices", str(inventory), "--device", "board", "--model", str(agent_models.int8.model),
                 "--samples", str(agent_models.int8.samples), "--run", "trial"])
    captured = capsys.readouterr()
    assert code == 1
    [line] = captured.err.splitlines()
    assert line.startswith("error: device board: result refused: field ") and f"'{field}'" in line and word in line
    assert "Traceback" not in captured.err and captured.out == ""  # no table row, nothing printed as a result
    assert not (tmp_path / "build" / "trial" / "bench").exists()  # nothing saved


def _night(store: ResultsStore, profile: DeviceProfile, agent_models, day: int) -> tuple[int, NightlyJob]:
    """One night of the int8 model on `profile`, stored as the nightly job stores it."""
    job = NightlyJob(NightlyConfig(), store, [profile], log=lambda message: None)
    job.night.run_id = store.begin_run(f"night{day}", kind="nightly", started_at=f"2025-03-{day:02d}T02:00:00Z",
                                       variants=[VariantRecord("int8", sha256_file(agent_models.int8.model), 1)])
    job._benchmark(f"night{day}", "int8", agent_models.int8.model, agent_models.int8.samples)
    store.finish_run(job.run_id, COMPLETE if job.night.recorded else FAILED)
    return job.run_id, job


@pytest.mark.parametrize("forgery", list(FORGERIES))
def test_a_night_refuses_a_forged_document_and_keeps_the_honest_history(forgery, agent_models, results_url,
                                                                         tmp_path):
    rewrite, field, word = FORGERIES[forgery]
    honest = _profile("board", tmp_path / "device")
    hostile = _profile("board", tmp_path / "device", rewriting_python(tmp_path / "hostile-python", rewrite))
    with ResultsStore.open(results_url) as store:
        first, _ = _night(store, honest, agent_models, 1)
        series = Series("int8", "board", store.results()[0]["runtime"])
        history = [(o.run_id, o.value) for o in store.history(series, "latency_ms")]
        forged, job = _night(store, hostile, agent_models, 2)
        [failure] = job.night.failures
        assert failure.device == "board" and f"field '{field}'" in failure.reason and word in failure.reason
        assert "\n" not in failure.reason
        assert store.run(forged)["status"] == FAILED  # no device produced a result: the night failed
        assert store.results(run_id=forged, statuses=(COMPLETE, FAILED, RUNNING)) == []
        assert [(o.run_id, o.value) for o in store.history(series, "latency_ms")] == history
        assert [row["run_id"] for row in store.results()] == [first]


def test_the_stored_summary_is_the_hosts_own(agent_models, results_url, tmp_path):
    """A board that rounds its summary (within what rounding allows) is believed for nothing: the stored
    median is the host's, recomputed from the raw samples."""
    rounding = "document['latency_ms']['median'] += 4e-7"
    board = _profile("board", tmp_path / "device", rewriting_python(tmp_path / "rounding-python", rounding))
    with ResultsStore.open(results_url) as store:
        run_id, job = _night(store, board, agent_models, 1)
        assert job.night.failures == []
        [row] = store.results(run_id=run_id)
        samples = store.samples(row["id"])
        assert row["latency_median_ms"] == round(float(np.median(samples)), 6)


# --- an honest board whose kernels round differently -----------------------------------------------------------------

def _perturbed_samples(samples: Path, destination: Path, units: int, seed: int) -> Path:
    """The samples file with every int8 reference output moved by up to +/-units: what a host on another
    architecture would have recorded, for a board whose outputs differ from it by that rounding spread."""
    with np.load(samples) as arrays:
        references = arrays["reference_outputs"].astype(np.int16)
        images, labels = arrays["images"], arrays["labels"]
    moved = references + np.random.default_rng(seed).integers(-units, units + 1, size=references.shape)
    write_samples(destination, images, labels, np.clip(moved, -128, 127).astype(np.int8))
    return destination


@pytest.mark.parametrize("units", [5, 16])  # the Arm board's spread, and LiteRT's own kernels against XNNPACK's
def test_outputs_within_the_rounding_spread_pass_with_default_settings(units, agent_models, tmp_path):
    from pipeline.devices.bench_run import BenchJob, benchmark
    from pipeline.devices.bundle import build_agent_zipapp
    from pipeline.devices.transport.local import LocalConnection

    samples = _perturbed_samples(agent_models.int8.samples, tmp_path / "moved.npz", units, seed=units)
    job = BenchJob(build_agent_zipapp(tmp_path / "agent.pyz"), agent_models.int8.model, samples, run="trial")
    with LocalConnection(_profile("board", tmp_path / "device")) as connection:
        document = benchmark(connection, job)
    assert document["output_max_diff"] >= units - 1 and document["mismatch"] is None, document["mismatch"]


@pytest.mark.skipif(not TFLITE214_PYTHON.exists(), reason="needs the .venv-tflite214 interpreter")
def test_another_runtime_build_rounds_differently_and_is_not_a_mismatch(ten_class_model, tmp_path, monkeypatch,
                                                                        capsys):
    """tflite-runtime 2.14 against the host's LiteRT + XNNPACK reference: another build whose int8 kernels
    round differently (here by a step, which flips a near-tie's top-1 class), with the default settings."""
    inventory = tmp_path / "devices.toml"
    inventory.write_text(f'[devices.board]\ntransport = "local"\nworkdir = "{tmp_path / "device"}"\n'
                         f'python = "{TFLITE214_PYTHON}"\nruntime = "tflite_runtime"\ndelegate = "none"\n'
                         f'runs = 5\nmin_s = 0\nwarmup_runs = 1\nwarmup_min_s = 0\nidle_s = 0\n')
    monkeypatch.chdir(tmp_path)
    code = main(["bench", "--devices", str(inventory), "--device", "board", "--json", "--model",
                 str(ten_class_model.model), "--samples", str(ten_class_model.samples), "--run", "trial"])
    [document] = json.loads(capsys.readouterr().out)
    assert document["runtime"]["name"] == "tflite_runtime"
    assert document["output_max_diff"] >= 1  # it does round differently
    assert code == 0 and document["mismatch"] is None


def test_the_altered_ten_class_model_is_still_a_mismatch(ten_class_model, tmp_path):
    from pipeline.devices.bench_run import BenchJob, benchmark
    from pipeline.devices.bundle import build_agent_zipapp
    from pipeline.devices.transport.local import LocalConnection
    from tests.test_devices_consistency import altered_weights

    bad = altered_weights(ten_class_model.model, tmp_path / "altered.tflite")
    job = BenchJob(build_agent_zipapp(tmp_path / "agent.pyz"), bad, ten_class_model.samples, run="trial")
    with LocalConnection(_profile("board", tmp_path / "device")) as connection:
        document = benchmark(connection, job)
    assert document["mismatch"].startswith("result contradicts the host: ")
    assert "top-1 class agrees" in document["mismatch"]


# --- the whole nightly, with the board's document forged on one night ------------------------------------------------

def test_a_nightly_with_a_forged_board_fails_and_the_honest_nights_stand(micro_run, results_url, tmp_path):
    from tests.conftest import run_cli, write_toml

    pipeline_config = write_toml(micro_run[0], tmp_path / "micro.toml")
    device = f'[devices.local]\nworkdir = "{tmp_path / "device"}"\n' + "".join(
        f"{key} = {value!r}\n" for key, value in QUICK_BENCH.items())
    (tmp_path / "honest.toml").write_text(device)
    halved = rewriting_python(tmp_path / "hostile-python", FORGERIES["halved medians"][0])
    (tmp_path / "forged.toml").write_text(device + f'python = "{halved}"\n')
    config = tmp_path / "nightly.toml"
    config.write_text(f'[nightly]\npipeline = "{pipeline_config}"\ndevices_file = "{tmp_path / "honest.toml"}"\n'
                      f'results_db = "{results_url}"\nreports_dir = "{tmp_path / "reports"}"\n'
                      f'models_dir = "{tmp_path / "models"}"\n')
    nights = [run_cli("nightly", "--config", str(config), timeout=300)]
    nights.append(run_cli("nightly", "--config", str(config), "--devices", str(tmp_path / "forged.toml"),
                          timeout=300))
    nights.append(run_cli("nightly", "--config", str(config), timeout=300))
    assert [night.returncode for night in nights] == [0, 2, 0], nights[1].stderr
    assert nights[1].stdout.startswith("FAILED: nightly run 2 ") and "no device produced a result" in nights[1].stdout
    refusals = [line for line in nights[1].stderr.splitlines() if "result refused" in line]
    assert len(refusals) == 3 and all("field 'latency_ms.median'" in line for line in refusals)  # one per variant
    assert nights[2].stdout.startswith("OK: nightly run 3 ")
    with ResultsStore.open(results_url) as store:
        assert store.run(2)["status"] == FAILED and store.results(run_id=2, statuses=(FAILED,)) == []
        assert sorted({row["run_id"] for row in store.results()}) == [1, 3]


def test_a_sweep_refuses_a_forged_document_and_stores_nothing_for_it(agent_models, results_url, tmp_path):
    from pipeline.core.variants import VariantFiles
    from pipeline.sweep.sweep_job import _Recorder

    rewrite, field, word = FORGERIES["halved medians"]
    hostile = _profile("board", tmp_path / "device", rewriting_python(tmp_path / "hostile-python", rewrite))
    with ResultsStore.open(results_url) as store:
        run_id = store.begin_run("sweep", kind="sweep",
                                 variants=[VariantRecord("ptq_int8", sha256_file(agent_models.int8.model), 1)])
        recorder = _Recorder(store, run_id, [hostile], log=lambda message: None)
        recorder.benchmark("sweep", "ptq_int8", VariantFiles(agent_models.int8.model, agent_models.int8.samples))
        [failure] = recorder.failures
        assert failure.device == "board" and f"field '{field}'" in failure.reason and word in failure.reason
        assert recorder.measured == set()
        assert store.results(run_id=run_id, statuses=(RUNNING,)) == []
