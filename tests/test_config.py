"""Config loading: defaults, unknown keys, wrong types and out-of-range values are refused by name."""
from pathlib import Path

import pytest

from pipeline.errors import UserError
from pipeline.training.config import load_config
from tests.conftest import REPO, run_cli


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "c.toml"
    path.write_text(text)
    return path


def test_demo_config_loads_with_documented_defaults():
    config = load_config(REPO / "configs" / "demo.toml")
    assert config.model.name == "resnet8"
    assert config.prune.target_sparsity == 0.5
    assert config.quantize.method == "pqat"
    assert config.data.path == "/usr/share/datasets/fashion-mnist"


@pytest.mark.parametrize("text, expected", [
    ("[prune]\ntarget_sparsityy = 0.5\n", "unknown key 'target_sparsityy'"),
    ("[prun]\n", "unknown section [prun]"),
    ("[finetune]\nepochs = 'ten'\n", "finetune.epochs must be int, got str"),
    ("[finetune]\naugment = 1\n", "finetune.augment must be bool or str or dict, got int 1"),
    ("[finetune]\nlabel_fraction = 0.0\n", "finetune.label_fraction = 0.0 is outside (0, 1]"),
    ("[finetune]\nlabel_fraction = 1.5\n", "finetune.label_fraction = 1.5 is outside (0, 1]"),
    ("[prune]\ntarget_sparsity = 1.0\n", "prune.target_sparsity = 1.0 is outside [0, 1)"),
    ("[prune]\ntarget_sparsity = -0.1\n", "prune.target_sparsity = -0.1 is outside [0, 1)"),
    ("[model]\nname = 'resnet9'\n", "choose one of: resnet8, ds_cnn"),
    ("[pretrain]\nmethod = 'byol'\n", "choose one of: simclr, rotation, none"),
    ("[quantize]\nmethod = 'int4'\n", "choose one of: pqat, qat, ptq"),
    ("[data]\nformat = 'png'\n", "choose one of: idx, cifar10"),
    ("[run]\nname = 'a/b'\n", "run.name"),
    ("[convert]\ncalibration_dir = ''\n", "convert.calibration_dir is empty"),
    ("not toml = = 1\n", "not valid TOML"),
])
def test_bad_config_is_refused_naming_file_and_key(tmp_path, text, expected):
    path = write(tmp_path, text)
    with pytest.raises(UserError) as error:
        load_config(path)
    assert expected in str(error.value)
    assert str(path) in str(error.value)


def test_cli_prints_one_line_and_exits_1(tmp_path):
    path = write(tmp_path, "[finetune]\nlabel_fraction = 2\n")
    result = run_cli("run", "--config", str(path))
    assert result.returncode == 1
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and "label_fraction" in lines[0]


def test_cli_refuses_a_bad_augmentation_policy_in_one_line(tmp_path):
    path = write(tmp_path, '[finetune.augment]\n"rota\\ntion" = 5\n')  # a knob name with a line break in it
    result = run_cli("run", "--config", str(path))
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 1 and len(lines) == 1, result.stderr
    assert "finetune.augment: unknown knob 'rota\\ntion'" in lines[0]


def test_missing_config_file_names_it():
    result = run_cli("run", "--config", "configs/nope.toml")
    assert result.returncode == 1
    assert "configs/nope.toml does not exist" in result.stderr


def test_extends_merges_sections_from_the_base_file():
    config = load_config(REPO / "configs" / "labels-1pct.toml")
    assert config.finetune.label_fraction == 0.01 and config.run.name == "labels-1pct"
    demo = load_config(REPO / "configs" / "demo.toml")
    assert config.pretrain == demo.pretrain and config.model == demo.model and config.data == demo.data


def test_extends_cycle_is_refused(tmp_path):
    (tmp_path / "a.toml").write_text('extends = "b.toml"\n')
    (tmp_path / "b.toml").write_text('extends = "a.toml"\n')
    with pytest.raises(UserError, match="cycle"):
        load_config(tmp_path / "a.toml")


@pytest.mark.parametrize("text, expected", [
    ("[finetune]\naugment = 'digits'\n", "finetune.augment = 'digits' is not a preset; choose one of: natural, "
                                          "digits-text, none"),
    ("[prune]\naugment = 'natual'\n", "prune.augment = 'natual' is not a preset"),
    ("[finetune.augment]\nrotate = 5\n", "finetune.augment: unknown knob 'rotate' (knobs: flip, crop_area"),
    ("[finetune.augment]\nrotation = 90\n", "finetune.augment.rotation = 90.0 is outside [0, 45]"),
    ("[finetune.augment]\nnoise = -0.1\n", "finetune.augment.noise = -0.1 is outside [0, 1]"),
    ("[finetune.augment]\nflip = 'mirror'\n", "finetune.augment.flip = 'mirror' is not valid; choose one of: none, "
                                               "horizontal, vertical, both"),
    ("[finetune.augment]\nflip = true\n", "finetune.augment.flip must be str, got bool True"),
    ("[finetune.augment]\nbrightness = '0.1'\n", "finetune.augment.brightness must be float, got str '0.1'"),
    ("[quantize.augment]\ncrop_area = 0.5\n", "quantize.augment.crop_area = 0.5 must be [min, max], two numbers"),
    ("[quantize.augment]\ncrop_area = [0.9, 0.5]\n", "quantize.augment.crop_area = [0.9, 0.5]: min must not be "
                                                     "above max"),
    ("[quantize.augment]\naspect = [0.1, 1]\n", "quantize.augment.aspect = 0.1 is outside [0.25, 4]"),
    ("[distill]\naugment = 1.5\n", "distill.augment must be bool or str or dict, got float 1.5"),
    ("[finetune]\naugment = 'finetune'\n", "finetune.augment = 'finetune' is not a preset"),
    ("[pretrain]\naugment = false\n", "pretrain.augment changes nothing, so SimCLR's two views"),
    ("[distill]\nstudent = 'ds_cnn'\n[distill.augment]\nnoise = 0.1\n",
     "distill.augment adds noise = 0.1, which training against a teacher cannot repeat"),
    ("[cluster]\nrecovery = 'teacher'\n[finetune.augment]\nnoise = 0.1\n",
     "cluster.augment adds noise = 0.1"),  # [cluster] follows [finetune]
])
def test_bad_augmentation_policy_is_refused_naming_file_and_key(tmp_path, text, expected):
    path = write(tmp_path, text)
    with pytest.raises(UserError) as error:
        load_config(path)
    assert expected in str(error.value) and str(path) in str(error.value)
    assert "\n" not in str(error.value)


def test_augment_takes_true_false_a_preset_or_a_table_and_later_stages_follow_finetune(tmp_path):
    from pipeline.training.augment_policy import NONE, PRESETS, AugmentPolicy

    default = load_config(REPO / "configs" / "demo.toml")
    natural = PRESETS["natural"]
    assert default.augment_policy("pretrain") == natural.views  # SimCLR's two views
    assert all(default.augment_policy(name) == natural.training
               for name in ("finetune", "distill", "slim", "prune", "cluster", "quantize"))
    config = load_config(write(tmp_path, "[pretrain]\nmethod = 'rotation'\naugment = 'digits-text'\n"
                                         "[finetune]\naugment = false\n[prune]\naugment = true\n"
                                         "[quantize.augment]\nflip = 'vertical'\ncrop_area = [0.5, 1]\nrotation = 3\n"))
    assert config.augment_policy("pretrain") == PRESETS["digits-text"].training  # rotation prediction: one view
    assert config.augment_policy("finetune") == NONE and config.augment_policy("distill") == NONE
    assert config.augment_policy("prune") == natural.training
    assert config.augment_policy("quantize") == AugmentPolicy(flip="vertical", crop_area=(0.5, 1.0), rotation=3.0)
    assert config.section("quantize")["augment"] == {"preset": "custom", "flip": "vertical", "crop_area": (0.5, 1.0),
                                                     "aspect": (1.0, 1.0), "rotation": 3.0, "translation": 0.0,
                                                     "brightness": 0.0, "contrast": 0.0, "noise": 0.0}
    assert config.section("cluster")["augment"]["preset"] == "none"  # followed [finetune]
