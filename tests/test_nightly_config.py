"""configs/nightly.toml: defaults, overrides, and one line naming file and key for every mistake."""
from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.errors import UserError
from pipeline.nightly.nightly_config import load_nightly_config, variants_to_benchmark, with_overrides
from pipeline.results.regression import DEFAULT_RULES
from pipeline.training.config import load_config
from tests.conftest import REPO, micro_config, run_cli

BAD_CONFIGS = [
    ("[nightly]\ndevcies = ['local']\n",
     "nightly: unknown key 'devcies' (valid keys: ab_rounds, baseline_runs, devices,"),
    ("[nightly]\nsource = 'x'\n", "nightly: unknown key 'source'"),
    ("[nightly]\nrules = {}\n", "nightly: unknown key 'rules'"),
    ("[nightlly]\n", "unknown section [nightlly]"),
    ("[nightly]\nbaseline_runs = '5'\n", "nightly.baseline_runs must be int, got str '5'"),
    ("[nightly]\nbaseline_runs = 0\n", "nightly.baseline_runs = 0 must be at least 1"),
    ("[nightly]\ndevices = 'local'\n", "nightly.devices must be list, got str 'local'"),
    ("[nightly]\ndevices = []\n", "nightly.devices must list at least one name"),
    ("[nightly]\nvariants = ['float', 'int8']\n", "nightly.variants[1] = 'int8' is not valid; choose from: float,"),
    ("[nightly]\nvariants = ['float', 3]\n", "nightly.variants[1] must be a non-empty str, got int 3"),
    ("[nightly]\nvariants = ['float', 'float']\n", "nightly.variants lists a name twice"),
    ("[nightly]\nreports_dir = ''\n", "nightly.reports_dir must not be empty"),
    ("[rules.latency_ms]\ntreshold = 0.1\n", "rules.latency_ms: unknown key 'treshold' (valid keys: alpha, change,"),
    ("[rules.latency_ms]\nthreshold = 'high'\n", "rules.latency_ms.threshold must be float, got str 'high'"),
    ("[rules.latency_ms]\nalpha = 2.0\n", "regression rule 'latency_ms': alpha must be between 0 and 1"),
    ("[rules.latency_ms]\nsigmas = 0.0\n", "regression rule 'latency_ms': sigmas must be > 0, on a relative rule"),
    ("[nightly]\nfail_on = ['model', 'devices']\n",
     "nightly.fail_on[1] = 'devices' is not valid; choose from: model, device"),
    ("[nightly]\nab_rounds = 2\n", "nightly.ab_rounds = 2 must be at least 3"),
    ("[nightly]\nab_rounds = 5\n", "nightly.ab_rounds = 5 cannot reach rules.latency_ms.alpha = 0.01 (an A/B over n"),
    ("[rules.power]\nthreshold = 0.1\n", "regression rule for new metric 'power' needs 'change' and 'threshold'"),
    ("rules = 3\n", "'rules' must hold [rules.<metric>] tables"),
    ("[nightly\n", "not valid TOML"),
]


def test_the_shipped_config_trains_the_demo_and_benchmarks_three_variants_on_local() -> None:
    config = load_nightly_config(REPO / "configs" / "nightly.toml")
    assert config.pipeline == "configs/demo.toml" and config.devices == ["local"]
    assert config.variants == ["float", "ptq_int8", "pqat_int8"]
    assert variants_to_benchmark(config, load_config(REPO / config.pipeline)) == config.variants
    assert config.baseline_runs == 5 and config.results_db == "" and config.reports_dir == "reports"
    assert config.regression_rules()["latency_ms"] == DEFAULT_RULES["latency_ms"]
    assert config.fail_on == ["model"] and config.ab_rounds == 10 and config.models_dir == "results/models"


def test_rule_overrides_and_command_line_values_replace_the_defaults(tmp_path: Path) -> None:
    path = tmp_path / "nightly.toml"
    path.write_text("[nightly]\nbaseline_runs = 3\n[rules.latency_ms]\nthreshold = 0.1\nalpha = 0.01\n"
                    "[rules.gzip_bytes]\nthreshold = 1\n")
    config = with_overrides(load_nightly_config(path), results_db="x.db", devices=["rpi5", "local"], reports_dir=None)
    rules = config.regression_rules()
    assert (rules["latency_ms"].threshold, rules["latency_ms"].alpha) == (0.1, 0.01)
    assert rules["gzip_bytes"].threshold == 1.0 and rules["energy_mj"] == DEFAULT_RULES["energy_mj"]
    assert config.results_db == "x.db" and config.devices == ["rpi5", "local"] and config.reports_dir == "reports"
    assert config.baseline_runs == 3 and config.variants == []  # every variant the pipeline makes


def test_variants_are_checked_against_what_the_pipeline_config_makes(tmp_path: Path) -> None:
    qat = micro_config(tmp_path, quantize={"method": "qat"})
    path = tmp_path / "nightly.toml"
    path.write_text("[nightly]\n")
    assert variants_to_benchmark(load_nightly_config(path), qat) == ["float", "ptq_int8", "pruned_qat_int8"]
    path.write_text("[nightly]\nvariants = ['float', 'pqat_int8']\n")
    with pytest.raises(UserError) as caught:
        variants_to_benchmark(load_nightly_config(path), qat)
    assert str(caught.value) == (f"{path}: nightly.variants lists 'pqat_int8', which {qat.source} does not make (it "
                                 f"makes: float, ptq_int8, pruned_qat_int8); remove it or change the pipeline config")


@pytest.mark.parametrize("pipeline, variant", [("configs/sweep/distilled.toml", "distilled_ptq_int8"),
                                                ("configs/sweep/distilled-chpruned.toml",
                                                 "distilled_chpruned_pqat_int8")])
def test_the_nightly_can_watch_any_sweep_variant(tmp_path: Path, pipeline: str, variant: str) -> None:
    path = tmp_path / "nightly.toml"
    path.write_text(f"[nightly]\npipeline = '{REPO / pipeline}'\nvariants = ['{variant}']\n")
    config = load_nightly_config(path)
    assert variants_to_benchmark(config, load_config(config.pipeline)) == [variant]
    path.write_text(f"[nightly]\npipeline = '{REPO / pipeline}'\nvariants = ['lowrank_ptq_int8']\n")
    with pytest.raises(UserError, match=f"nightly.variants lists 'lowrank_ptq_int8', which .*{pipeline} does not "
                                        f"make \\(it makes: float, ptq_int8, {variant}\\)"):
        variants_to_benchmark(load_nightly_config(path), load_config(REPO / pipeline))


@pytest.mark.parametrize("text, message", BAD_CONFIGS, ids=[message[:40] for _, message in BAD_CONFIGS])
def test_a_mistake_is_one_line_naming_file_and_key(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "nightly.toml"
    path.write_text(text)
    with pytest.raises(UserError) as caught:
        load_nightly_config(path)
    assert str(caught.value).startswith(f"{path}: ") and message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_the_command_refuses_bad_input_with_exit_2_before_recording_anything(tmp_path: Path) -> None:
    """Exit 1 means 'regression' for the nightly, so bad input is 2; no database, no report appears."""
    path = tmp_path / "nightly.toml"
    path.write_text(f"[nightly]\nbaseline_runs = '5'\nresults_db = '{tmp_path / 'r.db'}'\n"
                    f"reports_dir = '{tmp_path / 'reports'}'\n")
    missing = run_cli("nightly", "--config", str(tmp_path / "nope.toml"))
    bad = run_cli("nightly", "--config", str(path))
    unknown_device = run_cli("nightly", "--config", str(REPO / "configs" / "nightly.toml"), "--device", "nosuch",
                             "--db", str(tmp_path / "r.db"), "--reports", str(tmp_path / "reports"))
    assert (missing.returncode, bad.returncode, unknown_device.returncode) == (2, 2, 2)
    assert missing.stderr == (f"error: nightly config {tmp_path / 'nope.toml'} does not exist "
                              "(try configs/nightly.toml)\n")
    assert bad.stderr == f"error: {path}: nightly.baseline_runs must be int, got str '5'\n"
    assert unknown_device.stderr.startswith("error: unknown device 'nosuch'") and unknown_device.stderr.count("\n") == 1
    assert not (tmp_path / "r.db").exists() and not (tmp_path / "reports").exists()


def test_an_unreachable_results_database_is_exit_2_with_one_line(tmp_path: Path) -> None:
    url = f"postgresql://nobody@/results?host={tmp_path / 'no-server'}"
    result = run_cli("nightly", "--config", str(REPO / "configs" / "nightly.toml"), "--db", url,
                     "--reports", str(tmp_path / "reports"))
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.startswith("error: cannot connect to PostgreSQL at postgresql://nobody@/results")
    assert result.stderr.count("\n") == 1 and not (tmp_path / "reports").exists()
