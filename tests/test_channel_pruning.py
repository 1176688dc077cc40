"""Channel pruning on the project's real architectures: which convs, exact shapes and MACs, same function."""
from __future__ import annotations

import re

import numpy as np
import pytest

from pipeline.errors import UserError

INPUT = (16, 16, 1)


def _randomized(model):
    """Distinct random weights (BatchNorm variances positive) so pruning choices and outputs are non-trivial."""
    rng = np.random.default_rng(0)
    for layer in model.layers:
        weights = [rng.normal(size=w.shape).astype(np.float32) for w in layer.get_weights()]
        if layer.__class__.__name__ == "BatchNormalization":
            weights[3] = np.abs(weights[3]) + 0.5
        layer.set_weights(weights)
    return model


def _images():
    return np.random.default_rng(1).random((2, *INPUT), dtype=np.float32)


def test_resnet8_prunes_only_the_inner_conv_of_each_block():
    from models import build_classifier
    from pipeline.training.channel_pruning import prunable_chains, prune_channels
    from pipeline.training.surgery import model_macs

    model = _randomized(build_classifier("resnet8", INPUT, 10))
    assert [c.conv.name for c in prunable_chains(model)] == ["stack1_a_conv", "stack2_a_conv", "stack3_a_conv"]
    pruned, records = prune_channels(model, ratio=0.5)
    assert [(r.filters_before, r.filters_after) for r in records] == [(16, 8), (32, 16), (64, 32)]
    assert pruned.get_layer("stack2_a_conv").kernel.shape == (3, 3, 16, 16)
    assert pruned.get_layer("stack2_b_conv").kernel.shape == (3, 3, 16, 32)
    assert pruned.get_layer("stack2_a_bn").get_weights()[0].shape == (16,)
    # a_conv and b_conv each lose half their MACs; stem, projections and logits are unchanged
    saved = sum(_conv_macs(model, f"stack{i}_{x}_conv") // 2 for i in (1, 2, 3) for x in "ab")
    assert model_macs(model) - model_macs(pruned) == saved
    assert pruned.predict(_images(), verbose=0).shape == (2, 10)


def _conv_macs(model, name):
    from pipeline.training.surgery import layer_macs

    return layer_macs(model.get_layer(name))


def test_ds_cnn_prunes_through_depthwise_convs_and_into_the_logits():
    from models import build_classifier
    from pipeline.training.channel_pruning import prunable_chains, prune_channels

    model = _randomized(build_classifier("ds_cnn", INPUT, 10, width=0.25))  # 16 filters
    chains = {c.conv.name: c for c in prunable_chains(model)}
    assert list(chains) == ["stem_conv", "block1_pw", "block2_pw", "block3_pw", "block4_pw"]
    assert chains["block4_pw"].reader.name == "logits"
    pruned, _ = prune_channels(model, ratio=0.25, criterion="bn_gamma")
    assert pruned.get_layer("block1_dw").depthwise_kernel.shape == (3, 3, 12, 1)
    assert pruned.get_layer("block1_pw").kernel.shape == (1, 1, 12, 12)
    assert pruned.get_layer("logits").kernel.shape == (12, 10)


def test_zero_ratio_keeps_the_function():
    from models import build_classifier
    from pipeline.training.channel_pruning import prune_channels

    model = _randomized(build_classifier("resnet8", INPUT, 10))
    same, _ = prune_channels(model, ratio=0.0)
    np.testing.assert_allclose(same.predict(_images(), verbose=0), model.predict(_images(), verbose=0), rtol=1e-5)


def test_pruning_keeps_the_strongest_filters():
    """Zeroed filters are the ones removed, and then the function is unchanged."""
    from models import build_classifier
    from pipeline.training.channel_pruning import prune_channels

    model = _randomized(build_classifier("resnet8", INPUT, 10))
    conv = model.get_layer("stack1_a_conv")
    kernel = conv.get_weights()[0]
    kernel[..., ::2] = 0.0  # half the filters are dead
    conv.set_weights([kernel])
    bn = model.get_layer("stack1_a_bn")
    gamma, beta, mean, variance = bn.get_weights()
    beta[::2], mean[::2] = 0.0, 0.0  # dead filters output exactly 0 after BN and ReLU
    bn.set_weights([gamma, beta, mean, variance])
    pruned, _ = prune_channels(model, ratio=0.5, layers=["stack1_a_conv"])
    np.testing.assert_allclose(pruned.predict(_images(), verbose=0), model.predict(_images(), verbose=0),
                               rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("layers, message", [
    (["stack1_b_conv"], "layer stack1_b_conv (Conv2D) cannot be channel-pruned"),
    (["stem_bn"], "layer stem_bn (BatchNormalization) cannot be channel-pruned"),
    (["stack2_add"], "layer stack2_add (Add) cannot be channel-pruned: only a Conv2D"),
    (["stack1_b_conv"], "remove it from slim.channel_layers (prunable: stack1_a_conv, "),
    (["nope"], "slim.channel_layers names 'nope', which model resnet8 does not have"),
])
def test_a_layer_it_cannot_handle_gets_one_line(layers, message):
    from models import build_classifier
    from pipeline.training.channel_pruning import prune_channels

    with pytest.raises(UserError, match=re.escape(message)) as error:
        prune_channels(build_classifier("resnet8", INPUT, 10), ratio=0.5, layers=layers)
    assert "\n" not in str(error.value)


@pytest.mark.parametrize("ratio, criterion, message", [
    (1.0, "l1", "slim.channel_ratio = 1.0 must be in [0, 1)"),
    (0.5, "l2", "slim.channel_criterion = 'l2' is not valid; choose one of: l1, bn_gamma"),
])
def test_bad_settings_name_their_config_key(ratio, criterion, message):
    from models import build_classifier
    from pipeline.training.channel_pruning import prune_channels

    with pytest.raises(UserError, match=re.escape(message)):
        prune_channels(build_classifier("resnet8", INPUT, 10), ratio=ratio, criterion=criterion)
