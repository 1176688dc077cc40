"""Low-rank factorization: exact at full rank, exact MAC counts, and one-line refusals."""
from __future__ import annotations

import re

import numpy as np
import pytest

from pipeline.errors import UserError


def _model():
    from pipeline.core.tf_env import keras

    inputs = keras.Input((12, 12, 4), name="image")
    x = keras.layers.Conv2D(16, 3, padding="same", name="conv")(inputs)
    x = keras.layers.BatchNormalization(name="bn")(x)
    x = keras.layers.ReLU(name="relu")(x)
    x = keras.layers.DepthwiseConv2D(3, strides=2, padding="same", name="dw")(x)
    x = keras.layers.Conv2D(24, 3, strides=1, padding="valid", name="conv2")(x)
    x = keras.layers.GlobalAveragePooling2D(name="features")(x)
    model = keras.Model(inputs, keras.layers.Dense(10, name="logits")(x))
    rng = np.random.default_rng(0)
    model.set_weights([rng.normal(size=w.shape).astype(np.float32) for w in model.get_weights()])
    bn = model.get_layer("bn")
    gamma, beta, mean, variance = bn.get_weights()
    bn.set_weights([gamma, beta, mean, np.abs(variance) + 0.5])
    return model


def _images(count=3):
    return np.random.default_rng(1).random((count, 12, 12, 4), dtype=np.float32)


def test_full_rank_reproduces_the_outputs():
    from pipeline.training.lowrank import factorize, split_layer
    from pipeline.training.surgery import rebuild

    model = _model()
    _, records = factorize(model, ["conv", "conv2", "logits"], energy=1.0)
    assert [r.rank for r in records] == [r.full_rank for r in records] == [16, 24, 10]
    full = {name: (lambda layer, inputs, r=rank: split_layer(layer, inputs, r))
            for name, rank in (("conv", 16), ("conv2", 24), ("logits", 10))}
    factorized = rebuild(model, full)
    assert {"conv_lr", "conv2_lr", "logits_lr"} <= {layer.name for layer in factorized.layers}
    np.testing.assert_allclose(factorized.predict(_images(), verbose=0), model.predict(_images(), verbose=0),
                               rtol=1e-4, atol=1e-4)


def test_rank_and_macs_are_exact():
    from pipeline.training.lowrank import choose_rank, factorize
    from pipeline.training.surgery import model_macs

    assert choose_rank(np.array([3.0, 2.0, 1.0]), energy=9 / 14) == 1  # 9 of 14 kept by the first value
    assert choose_rank(np.array([3.0, 2.0, 1.0]), energy=0.93) == 3  # 13/14 = 0.929 < 0.93
    model = _model()
    factorized, [record] = factorize(model, ["conv2"], energy=0.5)
    # conv2: 3x3x16 -> 24 at 4x4 output positions (6x6 after the stride-2 depthwise, valid padding)
    rank = record.rank
    assert record.macs_before == 4 * 4 * 24 * 3 * 3 * 16
    assert record.macs_after == 4 * 4 * rank * (3 * 3 * 16 + 24)
    assert record.factorized and record.macs_after < record.macs_before
    assert factorized.get_layer("conv2_lr").kernel.shape == (3, 3, 16, rank)
    assert factorized.get_layer("conv2").kernel.shape == (1, 1, rank, 24)
    assert model_macs(model) - model_macs(factorized) == record.macs_before - record.macs_after
    assert factorized.predict(_images(), verbose=0).shape == (3, 10)


def test_a_rank_that_saves_nothing_keeps_the_layer():
    from pipeline.training.lowrank import factorize

    # conv: 3x3x4 -> 16 saves MACs only below rank 36*16/52 = 11.07; full rank 16 does not
    factorized, [record] = factorize(_model(), ["conv"], energy=1.0)
    assert not record.factorized and record.macs_after == record.macs_before
    assert "conv_lr" not in {layer.name for layer in factorized.layers}


@pytest.mark.parametrize("layers, message", [
    (["dw"], "layer dw (DepthwiseConv2D) cannot be factorized"),
    (["nope"], "slim.lowrank_layers names 'nope'"),
])
def test_layers_it_cannot_handle_get_one_line(layers, message):
    from pipeline.training.lowrank import factorize

    with pytest.raises(UserError, match=re.escape(message)) as error:
        factorize(_model(), layers, energy=0.9)
    assert "\n" not in str(error.value)


@pytest.mark.parametrize("energy", [0.0, 1.5])
def test_bad_energy_names_its_config_key(energy):
    from pipeline.training.lowrank import factorize

    with pytest.raises(UserError, match=re.escape(f"slim.lowrank_energy = {energy!r} must be in (0, 1]")):
        factorize(_model(), [], energy=energy)
