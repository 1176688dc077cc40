"""Stage methods the micro run does not take, on a copy of it: rotation pretraining and plain QAT."""
import dataclasses

import numpy as np

from models import build_classifier
from pipeline.core.preprocessing import to_float
from pipeline.core.tf_env import tfmot
from pipeline.tflite.conversion import convert_int8
from pipeline.tflite.evaluation import load_interpreter, run_model
from pipeline.tflite.verification import inspect_int8
from pipeline.training.datasets import load_dataset
from pipeline.training.fit import seed_everything
from pipeline.training.runner import run_stages
from pipeline.training.stages.quantize import load_quantized
from tests.test_runner import copied_run, statuses  # noqa: F401  (copied_run is a fixture)


def test_rotation_pretraining_stage_writes_an_encoder_the_classifier_loads(copied_run):
    config = dataclasses.replace(copied_run, pretrain=dataclasses.replace(copied_run.pretrain, method="rotation"))
    log = []
    manifest = run_stages(config, until="pretrain", log=log.append)
    assert statuses(log) == {"data": "cached", "pretrain": "done"}
    metrics = manifest.stage("pretrain")["metrics"]
    assert metrics["pretrain_method"] == "rotation" and np.isfinite(metrics["pretrain_loss"])
    seed_everything(config.run.seed)  # the stage's own starting weights
    classifier = build_classifier(config.model.name, (28, 28, 1), 10, config.model.width)
    initial = [layer.get_weights() for layer in classifier.layers]
    classifier.load_weights(manifest.output_path("pretrain", "encoder"), by_name=True)  # as finetune does
    moved = {layer.name for layer, weights in zip(classifier.layers, initial, strict=True)
             if any(not np.array_equal(old, new) for old, new in zip(weights, layer.get_weights(), strict=True))}
    assert "stem_conv" in moved and "logits" not in moved  # the encoder was trained; the head is not in it


def test_qat_run_converts_to_full_int8(copied_run, tmp_path):
    """The QAT stage on the micro config; its model through the converter the convert stage uses."""
    config = dataclasses.replace(copied_run, quantize=dataclasses.replace(copied_run.quantize, method="qat"))
    log = []
    manifest = run_stages(config, until="quantize", log=log.append)
    assert statuses(log) == {"data": "cached", "pretrain": "cached", "finetune": "cached", "distill": "cached",
                             "slim": "cached", "prune": "cached", "cluster": "cached", "quantize": "done"}
    assert manifest.data["metrics"]["quantize_method"] == "qat"
    model = load_quantized(manifest.output_path("quantize", "quantize_ready"),
                           manifest.output_path("cluster", "clustered"), config)
    wrappers = [layer for layer in model.layers if isinstance(layer, tfmot.quantization.keras.QuantizeWrapperV2)]
    assert len(wrappers) >= 10  # convs and the dense layer fake-quantized, not the float model passed through
    dataset = load_dataset(config.data)
    path = tmp_path / "qat_int8.tflite"
    path.write_bytes(convert_int8(model, dataset.train.pixels[:50]))
    report = inspect_int8(path)
    assert report["boundary_int8"] and report["float_ops"] == []
    outputs = run_model(path, [dataset.test.pixels[:50]], "qat int8")
    # The int8 file computes what the QAT Keras model does, to a few output quantization steps.
    scale, zero_point = load_interpreter(path).get_output_details()[0]["quantization"]
    expected = model.predict(to_float(dataset.test.pixels[:50]), verbose=0)
    assert np.abs((outputs.astype(np.float32) - zero_point) * scale - expected).max() <= 4 * scale
