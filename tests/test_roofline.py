"""The training roofline: FLOPs counted from the model, the ceiling measured, a run's stages set against it."""
from __future__ import annotations

import pytest

from pipeline.commands.bench_pipeline import rooflines
from pipeline.core.tf_env import keras
from pipeline.training.roofline import StageRoofline, matmul_flops_per_s, training_flops_per_image

CONV_MACS = 8 * 8 * 3 * 3 * 1 * 4  # 'same' 3x3 conv, 1 -> 4 channels, on 8x8
DENSE_MACS = 8 * 8 * 4 * 10


def _model() -> keras.Model:
    inputs = keras.Input((8, 8, 1))
    x = keras.layers.Conv2D(4, 3, padding="same")(inputs)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.Flatten()(keras.layers.ReLU()(x))
    return keras.Model(inputs, keras.layers.Dense(10)(x))


def test_a_trained_image_costs_six_flops_per_mac_per_view():
    assert training_flops_per_image(_model()) == 6 * (CONV_MACS + DENSE_MACS)
    assert training_flops_per_image(_model(), views=2) == 12 * (CONV_MACS + DENSE_MACS)


def test_the_ceiling_is_a_measured_positive_rate():
    assert 1e8 < matmul_flops_per_s(size=256, repeats=2) < 1e14


def test_efficiency_is_achieved_flops_over_the_ceiling():
    row = StageRoofline("pretrain", images_per_s=500.0, flops_per_image=2_000_000, ceiling_flops_per_s=4e9)
    assert row.flops_per_s == pytest.approx(1e9) and row.efficiency == pytest.approx(0.25)


def test_every_training_stage_of_a_run_gets_a_row(micro_run):
    config, manifest, _ = micro_run
    rows = {row.stage: row for row in rooflines(config, manifest, ceiling=1e10)}
    assert set(rows) == {"pretrain", "finetune", "prune", "quantize"}
    # SimCLR trains two views through the encoder (the classifier without its head) plus the projection head
    assert rows["pretrain"].flops_per_image > rows["finetune"].flops_per_image
    for stage, row in rows.items():
        assert row.images_per_s == manifest.stage(stage)["metrics"][f"{stage}_images_per_s"]
