"""Stage caching and interruption, on a copy of the micro run."""
import dataclasses
import gzip
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from pipeline.core.artifacts import Manifest, sha256_file
from pipeline.errors import UserError
from pipeline.training.runner import run_stages
from tests.conftest import REPO, write_toml


@pytest.fixture
def copied_run(micro_run, tmp_path):
    config, manifest, _ = micro_run
    build = tmp_path / "build"
    shutil.copytree(manifest.run_dir, build / config.run.name)
    return dataclasses.replace(config, run=dataclasses.replace(config.run, build_dir=str(build)))


def statuses(log):
    """Stage -> cached / done; a step the config turns off adds a `skipped (why)` line after its status."""
    return {line.split()[1]: line.split()[2] for line in log if line.split()[2] != "skipped"}


def test_unchanged_run_is_all_cached(copied_run):
    log = []
    run_stages(copied_run, log=log.append)
    assert set(statuses(log).values()) == {"cached"}


def test_changing_one_stage_reruns_it_and_later_stages_only(copied_run):
    config = dataclasses.replace(copied_run, quantize=dataclasses.replace(copied_run.quantize, method="ptq"))
    log = []
    manifest = run_stages(config, log=log.append)
    status = {stage: state for stage, state in statuses(log).items()}
    assert [status[s] for s in ("data", "pretrain", "finetune", "prune")] == ["cached"] * 4
    assert status["quantize"] == "done" and status["convert"] == "done"
    assert manifest.data["metrics"]["quantize_method"] == "ptq"


@pytest.fixture
def moved_dataset(copied_run, tmp_path):
    """The copied run reading a copy of its dataset, which a test may then edit in place."""
    folder = tmp_path / "dataset"
    shutil.copytree(copied_run.data.path, folder)
    return dataclasses.replace(copied_run, data=dataclasses.replace(copied_run.data, path=str(folder)))


def test_moved_dataset_with_the_same_content_stays_cached(moved_dataset):
    log = []
    manifest = run_stages(moved_dataset, log=log.append)
    assert set(statuses(log).values()) == {"cached"}
    recorded = manifest.stage("data")["external_inputs"]["t10k-labels-idx1-ubyte.gz"]
    assert recorded["path"] == f"{moved_dataset.data.path}/t10k-labels-idx1-ubyte.gz"  # the record follows the move
    assert manifest.stage("data")["config"]["data"]["path"] == moved_dataset.data.path


def test_dataset_file_replaced_in_place_reruns_the_data_stage_and_its_dependents(moved_dataset):
    labels_file = Path(moved_dataset.data.path) / "t10k-labels-idx1-ubyte.gz"
    raw = gzip.decompress(labels_file.read_bytes())
    header, labels = raw[:8], np.frombuffer(raw[8:], dtype=np.uint8)
    labels_file.write_bytes(gzip.compress(header + ((labels + 1) % 10).tobytes()))  # every test label changes
    log = []
    manifest = run_stages(moved_dataset, until="pretrain", log=log.append)
    assert statuses(log) == {"data": "done", "pretrain": "done"}
    sources = json.loads(manifest.output_path("data", "sources").read_text())
    assert sources[str(labels_file)] == sha256_file(labels_file)
    for later in ("finetune", "prune", "quantize", "convert"):  # built on the old data: none can be reused
        assert manifest.stage(later)["inputs"]["data.sources"]["sha256"] != \
            manifest.stage("data")["outputs"]["sources"]["sha256"], later


def test_calibration_file_replaced_in_place_reruns_only_convert(copied_run, tmp_path):
    calibration = tmp_path / "calibration.npz"
    shutil.copyfile(copied_run.convert.calibration, calibration)
    config = dataclasses.replace(copied_run, convert=dataclasses.replace(copied_run.convert,
                                                                         calibration=str(calibration)))
    log = []
    run_stages(config, log=log.append)
    assert set(statuses(log).values()) == {"cached"}  # moved, same content
    with np.load(calibration) as data:
        images = data["images"]
    np.savez(calibration, images=images[:100])  # the same path, other content
    log = []
    manifest = run_stages(config, log=log.append)
    assert [statuses(log)[stage] for stage in ("data", "pretrain", "finetune", "prune", "quantize")] == ["cached"] * 5
    assert statuses(log)["convert"] == "done"
    assert manifest.data["metrics"]["calibration_samples"] == 100  # the new file was read
    assert manifest.stage("convert")["external_inputs"]["calibration"]["sha256"] == sha256_file(calibration)


def test_missing_calibration_file_is_named_before_convert_runs(copied_run, tmp_path):
    config = dataclasses.replace(copied_run, convert=dataclasses.replace(
        copied_run.convert, calibration=str(tmp_path / "none.npz"), eval_samples=10))
    with pytest.raises(UserError, match=f"calibration file {tmp_path / 'none.npz'} not found; create it with"):
        run_stages(config)


def test_tampered_output_is_rebuilt(copied_run):
    manifest = Manifest(f"{copied_run.run.build_dir}/{copied_run.run.name}")
    manifest.output_path("quantize", "quantize_ready").write_bytes(b"corrupt")
    log = []
    run_stages(copied_run, until="quantize", log=log.append)
    assert statuses(log)["quantize"] == "done" and statuses(log)["prune"] == "cached"


def test_unknown_stage_is_refused(copied_run):
    with pytest.raises(UserError, match="choose one of: data, pretrain"):
        run_stages(copied_run, until="deploy")


def test_killed_run_leaves_no_artifact_taken_as_done(copied_run, tmp_path):
    """SIGKILL during conversion: the old convert record is not reused, its temp folder is cleaned."""
    config = dataclasses.replace(copied_run, quantize=dataclasses.replace(copied_run.quantize, method="ptq"))
    toml = write_toml(config, tmp_path / "run.toml")
    process = subprocess.Popen([sys.executable, "-m", "pipeline", "run", "--config", str(toml)], cwd=REPO,
                               stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(REPO)})
    for line in process.stderr:
        if "convert   running" in line:
            time.sleep(2)
            process.send_signal(signal.SIGKILL)
            break
    process.wait(timeout=60)
    assert process.returncode == -signal.SIGKILL
    run_dir = tmp_path / "build" / config.run.name
    assert any(p.name.startswith(".tmp-convert") for p in run_dir.iterdir())
    log = []
    run_stages(config, until="quantize", log=log.append)
    assert not any(p.name.startswith(".tmp-") for p in run_dir.iterdir())
    assert statuses(log)["quantize"] == "cached"  # finished before the kill
    manifest = Manifest(run_dir)
    assert manifest.stage("convert")["inputs"]["quantize.quantize_ready"]["sha256"] != \
        manifest.stage("quantize")["outputs"]["quantize_ready"]["sha256"]  # so convert will run again


def test_other_run_with_same_stage_key_is_reused(copied_run):
    other = dataclasses.replace(copied_run, run=dataclasses.replace(copied_run.run, name="sibling"),
                                convert=dataclasses.replace(copied_run.convert, eval_samples=10))
    log = []
    manifest = run_stages(other, until="quantize", log=log.append)
    assert all("from run 'micro'" in line for line in log), log
    assert manifest.stage("pretrain")["copied_from"] == "micro"
    assert manifest.outputs_intact("quantize")


def test_code_version_follows_imports_but_not_unrelated_modules():
    from pipeline.training.runner import _code_files

    names = {path.name for path in _code_files("pipeline.training.stages.convert")}
    expected = {"convert.py", "conversion.py", "verification.py", "graph.py", "samples.py", "quantize.py", "data.py"}
    assert expected <= names
    assert not {"summary.py", "runner.py", "cli.py", "config.py", "toml_config.py", "artifacts.py"} & names


def _stage_keys(config) -> dict[str, str]:
    from pipeline.training.runner import STAGES, _cache_key, external_inputs, run_dir_for

    manifest = Manifest(run_dir_for(config))
    return {spec.name: _cache_key(spec, config, manifest, external_inputs(spec, config)) for spec in STAGES}


def _with(config, section: str, **values):
    return dataclasses.replace(config, **{section: dataclasses.replace(getattr(config, section), **values)})


def test_an_augmentation_policy_is_in_the_key_of_every_stage_it_augments(copied_run):
    """[pretrain] has its own policy; the stages after fine-tuning follow [finetune]'s unless they set one
    (convert's key holds the sections that name the compressed variant, so it changes with them)."""
    before = _stage_keys(copied_run)

    def changed(config) -> set[str]:
        keys = _stage_keys(config)
        return {name for name in keys if keys[name] != before[name]}

    assert changed(_with(copied_run, "pretrain", augment="digits-text")) == {"pretrain"}
    assert changed(_with(copied_run, "finetune", augment="digits-text")) == {
        "finetune", "distill", "slim", "prune", "cluster", "quantize", "convert"}
    assert changed(_with(copied_run, "quantize", augment={"rotation": 5.0})) == {"quantize", "convert"}
    assert changed(_with(copied_run, "finetune", augment="natural")) == set()  # true names the natural preset


def test_changing_a_stage_policy_reruns_it_and_the_manifest_records_it(copied_run):
    config = _with(copied_run, "prune", augment="digits-text")
    log = []
    manifest = run_stages(config, log=log.append)
    status = statuses(log)
    assert [status[s] for s in ("data", "pretrain", "finetune")] == ["cached"] * 3
    assert status["prune"] == "done" and status["quantize"] == "done"
    recorded = manifest.stage("prune")["config"]["prune"]["augment"]
    assert recorded["preset"] == "digits-text" and recorded["flip"] == "none" and recorded["rotation"] == 5.0
    assert manifest.stage("quantize")["config"]["quantize"]["augment"]["preset"] == "natural"
