"""`label-table` trains the from-scratch baseline the demo leaves off, without touching the demo's build."""
from __future__ import annotations

from pipeline.commands.label_table import DEFAULT_CONFIGS, with_baseline
from pipeline.training.config import load_config
from tests.conftest import REPO


def test_the_demo_trains_no_baseline_and_the_label_table_does_in_a_run_of_its_own():
    demo = load_config(REPO / "configs" / "demo.toml")
    assert demo.finetune.scratch_baseline is False
    table_run = with_baseline(demo)
    assert table_run.finetune.scratch_baseline and table_run.run.name == "demo-baseline"
    assert table_run.pretrain == demo.pretrain and table_run.finetune.epochs == demo.finetune.epochs


def test_configs_that_train_the_baseline_keep_their_run_name():
    for path in DEFAULT_CONFIGS[:2]:
        config = load_config(REPO / path)
        assert with_baseline(config) is config and config.finetune.scratch_baseline
