"""tf.distribute: which worker writes (TF_CONFIG), and a two-worker MultiWorkerMirroredStrategy run
on loopback that matches a one-process run while only the chief writes stage outputs."""
import json
import os
import socket
import subprocess
import sys

import pytest

from pipeline.errors import UserError
from pipeline.training.workers import is_chief, is_multi_worker
from tests.conftest import REPO, micro_config, write_toml

TRAINING_STAGES = ("pretrain", "finetune", "prune", "quantize")


def _tf_config(workers: list[str], index: int, role: str = "worker") -> str:
    return json.dumps({"cluster": {"worker": workers}, "task": {"type": role, "index": index}})


@pytest.mark.parametrize(("tf_config", "chief", "multi"), [
    (None, True, False),
    (_tf_config(["a:1"], 0), True, False),
    (_tf_config(["a:1", "b:2"], 0), True, True),
    (_tf_config(["a:1", "b:2"], 1), False, True),
    (json.dumps({"cluster": {"chief": ["c:1"], "worker": ["a:1"]}, "task": {"type": "worker", "index": 0}}),
     False, True),
])
def test_chief_and_multi_worker_come_from_tf_config(tf_config, chief, multi, monkeypatch):
    if tf_config is None:
        monkeypatch.delenv("TF_CONFIG", raising=False)
    else:
        monkeypatch.setenv("TF_CONFIG", tf_config)
    assert is_chief() is chief
    assert is_multi_worker("auto") is multi
    assert is_multi_worker("default") is False


def test_multi_worker_without_tf_config_is_refused(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(UserError, match='run.strategy = "multi_worker" needs TF_CONFIG'):
        is_multi_worker("multi_worker")
    monkeypatch.setenv("TF_CONFIG", "{not json")
    with pytest.raises(UserError, match="TF_CONFIG is not valid JSON"):
        is_chief()


def test_strategy_by_name_on_this_gpu_less_machine(monkeypatch):
    from pipeline.core.tf_env import tf
    from pipeline.training.distribute import training_strategy

    monkeypatch.delenv("TF_CONFIG", raising=False)
    assert training_strategy("auto") is tf.distribute.get_strategy()  # no cluster, no GPUs: the default
    mirrored = training_strategy("mirrored")
    assert isinstance(mirrored, tf.distribute.MirroredStrategy) and mirrored.num_replicas_in_sync == 1


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    for sock in sockets:
        sock.bind(("localhost", 0))
    ports = [sock.getsockname()[1] for sock in sockets]
    for sock in sockets:
        sock.close()
    return ports


def _pipeline(toml, env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "pipeline", "quantize", "--config", str(toml)], cwd=REPO,
                            env={**os.environ, "PYTHONPATH": str(REPO), **env},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.mark.slow
def test_two_workers_on_loopback_match_one_process_and_only_the_chief_writes(tmp_path):
    build = tmp_path / "build"
    # The tiny recipe on a model without BatchNorm, which learns enough in these few steps to compare.
    recipe = dict(model={"builder": "tests.plain_cnn:plain_cnn"}, pretrain={"epochs": 1, "batch_size": 128},
                  finetune={"label_fraction": 1.0, "epochs": 4, "batch_size": 32, "learning_rate": 3e-3,
                            "augment": False, "scratch_baseline": False},
                  prune={"epochs": 1, "batch_size": 32, "frequency": 4}, quantize={"batch_size": 32})
    single = micro_config(build, name="single", run={"strategy": "default"}, **recipe)
    multi = micro_config(build, name="multi", run={"strategy": "multi_worker"}, **recipe)
    workers = [f"localhost:{port}" for port in _free_ports(2)]
    scratch = [tmp_path / f"tmp{index}" for index in range(2)]
    for folder in scratch:
        folder.mkdir()
    processes = [_pipeline(write_toml(multi, tmp_path / "multi.toml"),
                           {"TF_CONFIG": _tf_config(workers, index), "TMPDIR": str(scratch[index])})
                 for index in range(2)]
    processes.append(_pipeline(write_toml(single, tmp_path / "single.toml"), {}))
    outputs = [process.communicate(timeout=1200) for process in processes]
    for process, (_, err) in zip(processes, outputs, strict=True):
        assert process.returncode == 0, err[-3000:]

    assert sorted(path.name for path in build.iterdir()) == ["multi", "single"]  # worker 1 wrote no run folder
    assert list(scratch[1].iterdir()) == []  # ... and its throw-away folder is gone
    runs = {name: json.loads((build / name / "manifest.json").read_text()) for name in ("multi", "single")}
    for stage in TRAINING_STAGES:
        assert runs["multi"]["stages"][stage]["outputs"], stage
    # Both runs train the same global batches with the same learning rates, but the shards see the
    # images in another order. One standard error of an accuracy near 0.6 is about 0.035 on the 200
    # test images and 0.05 on the 100 validation images: allow about 3 of them.
    for metric, tolerance in (("ssl_accuracy", 0.1), ("qat_val_accuracy", 0.15)):
        single_value, multi_value = (runs[name]["metrics"][metric] for name in ("single", "multi"))
        assert single_value > 0.3 and abs(multi_value - single_value) < tolerance, (metric, single_value, multi_value)
