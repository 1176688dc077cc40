"""A result that contradicts the host is not a result: a model whose weights were altered (it still
loads and runs) and an agent that reports another device's name are benchmarked for real, marked
mismatched in the table, the JSON and the store (both backends), kept out of baselines, and fail
`bench` with one line. The inventory name, never the board's own, is the stored identity."""
from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path

import numpy as np

from pipeline.cli import main
from pipeline.devices.bench_run import BenchJob, benchmark
from pipeline.devices.consistency import HostReference, host_reference, mismatch_reason
from pipeline.devices.inventory import DeviceProfile
from pipeline.devices.transport.local import LocalConnection
from pipeline.results import ResultsStore
from pipeline.results.queries import Series
from pipeline.results.store import VariantRecord
from pipeline.testing.synthetic import benchmark_document
from tests.agent_fixtures import agent_models, agent_pyz  # noqa: F401
from tests.sshd_fixtures import QUICK_BENCH

pytest_plugins = ["tests.postgres_fixtures"]


def altered_weights(model: Path, destination: Path) -> Path:
    """A copy of an int8 model whose largest weight tensor is negated in place: same graph, same
    size, still loads and runs, but computes something else."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(model))
    interpreter.allocate_tensors()
    content = model.read_bytes()
    candidates = []
    for detail in interpreter.get_tensor_details():
        if detail["dtype"] != np.int8 or int(np.prod(detail["shape"])) < 64:
            continue
        try:
            blob = interpreter.get_tensor(detail["index"]).tobytes()
        except ValueError:
            continue
        if content.count(blob) == 1 and len(set(blob)) > 8:  # a constant stored once in the file
            candidates.append(blob)
    weights = max(candidates, key=len)
    negated = np.clip(-np.frombuffer(weights, np.int8).astype(np.int16), -128, 127).astype(np.int8).tobytes()
    destination.write_bytes(content.replace(weights, negated))
    return destination


def local_profile(workdir: Path, name: str = "bench-board", **overrides: object) -> DeviceProfile:
    values = {"python": sys.executable, **QUICK_BENCH, **overrides}
    return DeviceProfile(name=name, transport="local", workdir=str(workdir), **values)


def test_altered_weights_fail_bench_and_are_marked_in_table_and_json(agent_models, tmp_path, monkeypatch, capsys):
    bad = altered_weights(agent_models.int8.model, tmp_path / "altered.tflite")
    inventory = tmp_path / "devices.toml"
    inventory.write_text(f'[devices.board]\ntransport = "local"\nworkdir = "{tmp_path / "device"}"\n'
                         f'runs = 5\nmin_s = 0\nwarmup_runs = 1\nwarmup_min_s = 0\nidle_s = 0\n')
    monkeypatch.chdir(tmp_path)
    argv = ["bench", "--devices", str(inventory), "--device", "board", "--samples", str(agent_models.int8.samples),
            "--run", "trial"]
    good_code = main(argv + ["--model", str(agent_models.int8.model)])
    good_out = capsys.readouterr().out
    bad_code = main(argv + ["--model", str(bad)])
    captured = capsys.readouterr()
    assert (good_code, bad_code) == (0, 1)
    assert good_out.splitlines()[1].split()[-1] == "ok"
    assert captured.out.splitlines()[1].split()[-1] == "MISMATCH"
    [error] = [line for line in captured.err.splitlines() if line.startswith("error:")]
    assert error.startswith("error: device board: result contradicts the host: outputs differ") and "units" in error
    saved = [json.loads(path.read_text()) for path in sorted((tmp_path / "build" / "trial" / "bench").glob("*.json"))]
    assert [document["mismatch"] is None for document in saved] == [True, False]
    assert saved[1]["output_max_diff"] > 3 and saved[1]["host_accuracy"] == saved[0]["host_accuracy"]


def test_the_inventory_name_is_the_identity_not_what_the_agent_reports(agent_models, agent_pyz, tmp_path):
    liar = tmp_path / "python-that-lies"  # the agent claims to be another board (last --device wins)
    liar.write_text(f'#!/bin/sh\nexec {shlex.quote(sys.executable)} "$@" --device victim\n')
    liar.chmod(0o755)
    profile = local_profile(tmp_path / "device", python=str(liar))
    job = BenchJob(agent_pyz, agent_models.int8.model, agent_models.int8.samples, run="trial")
    with LocalConnection(profile) as connection:
        document = benchmark(connection, job)
    assert (document["device"], document["reported_device"]) == ("bench-board", "victim")
    assert "the agent reported device 'victim'" in document["mismatch"]


def test_thresholds_come_from_the_profile(agent_models):
    reference = host_reference(agent_models.int8.samples)
    assert (reference.count, reference.full_scale) == (48, 255)  # int8 outputs: 255 steps
    document = {"device": "b", "output_max_diff": 30.0, "top1_agreement": 0.95,
                "accuracy": {"value": reference.accuracy - 0.04, "count": 48}}
    assert "output_tolerance = 0.1 of a 255-unit full scale allows 25.5" in mismatch_reason(
        document, DeviceProfile(name="b"), reference)
    assert mismatch_reason(document, DeviceProfile(name="b", output_tolerance=0.12), reference) is None
    lower = {**document, "output_max_diff": 5.0, "accuracy": {"value": reference.accuracy - 0.3, "count": 48}}
    assert "accuracy_sigmas = 3" in mismatch_reason(lower, DeviceProfile(name="b"), reference)
    disagreeing = {**document, "output_max_diff": 5.0, "top1_agreement": 0.85}
    assert "min_top1_agreement = 0.9" in mismatch_reason(disagreeing, DeviceProfile(name="b"), reference)
    silent = {"device": "b"}  # a board cannot dodge the check by leaving the values out
    reason = mismatch_reason(silent, DeviceProfile(name="b"), reference)
    assert "no output difference" in reason and "no top-1 agreement" in reason


def test_the_accuracy_allowance_is_the_binomial_noise_of_the_sample_count():
    profile = DeviceProfile(name="b")
    document = {"device": "b", "output_max_diff": 5.0, "top1_agreement": 0.99}
    many = HostReference(accuracy=0.96, count=200, full_scale=255)  # 3 sigma = 0.0416, plus one sample 0.005
    assert mismatch_reason({**document, "accuracy": {"value": 0.92}}, profile, many) is None
    assert "by more than 0.0466" in mismatch_reason({**document, "accuracy": {"value": 0.91}}, profile, many)
    few = HostReference(accuracy=0.96, count=20, full_scale=255)  # twenty samples: a drop of 0.1 is noise
    assert mismatch_reason({**document, "accuracy": {"value": 0.86}}, profile, few) is None


SHA = "ab" * 32
SERIES = Series("pqat_int8", "pi5", "litert+xnnpack")


def _night(store: ResultsStore, day: int, device: str, document: dict) -> int:
    run_id = store.begin_run(f"n{day}", kind="nightly", started_at=f"2025-01-{day:02d}T02:00:00.000000Z",
                             variants=[VariantRecord("pqat_int8", SHA, 100_000)])
    store.record_benchmark(run_id, "pqat_int8", document, device=device)
    store.finish_run(run_id)
    return run_id


def test_store_keys_by_inventory_name_and_keeps_mismatches_out_of_baselines(results_url):
    with ResultsStore.open(results_url) as store:
        honest = _night(store, 1, "pi5", benchmark_document(device="pi5", model_sha256=SHA, samples=[20.0, 20.5]))
        claims_pi5 = benchmark_document(device="pi5", model_sha256=SHA, samples=[1.0, 1.1])  # says it is pi5
        _night(store, 2, "rpi4", {**claims_pi5, "mismatch": None})
        contradicted = {**benchmark_document(device="pi5", model_sha256=SHA, samples=[90.0, 91.0]),
                        "mismatch": "result contradicts the host: outputs differ by up to 255 units"}
        bad = _night(store, 3, "pi5", contradicted)
        assert [o.run_id for o in store.history(SERIES, "latency_ms")] == [honest]  # neither rpi4's nor the mismatch
        rows = {row["run_id"]: row for row in store.results()}
        assert (rows[2]["device"], rows[2]["reported_device"]) == ("rpi4", "pi5")
        assert rows[bad]["mismatch"].startswith("result contradicts the host") and rows[honest]["mismatch"] is None
        assert store.history(SERIES, "latency_ms", only_run=bad) == []
