"""Static Edge TPU check on tiny models converted here with the real TFLite converter."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from pipeline.cli import main
from pipeline.edgetpu.compatibility import CompatReport, check_model
from pipeline.edgetpu.compatibility_report import format_report

pytestmark = pytest.mark.filterwarnings("ignore:Statistics for quantized inputs:UserWarning")

INPUT_SHAPE = (8, 8, 1)
CALIBRATION_BATCHES = 4


def _classifier(inputs, middle=None):
    """Conv -> max pool -> flatten -> dense -> softmax, with an optional op after the flatten."""
    from pipeline.core.tf_env import keras

    x = keras.layers.Conv2D(4, 3, activation="relu")(inputs)
    x = keras.layers.MaxPooling2D()(x)
    x = keras.layers.Flatten()(x)
    if middle is not None:
        x = middle(x)
    x = keras.layers.Dense(3)(x)
    return keras.Model(inputs, keras.layers.Softmax()(x))


def _convert(model, *, calibrate=True, int8_io=True, float_fallback=False) -> bytes:
    from pipeline.core.tf_env import tf

    def calibration_data():
        rng = np.random.default_rng(0)
        for _ in range(CALIBRATION_BATCHES):
            yield [rng.random((1, *INPUT_SHAPE), dtype=np.float32)]

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if calibrate:
        converter.representative_dataset = calibration_data
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8] + (
            [tf.lite.OpsSet.TFLITE_BUILTINS] if float_fallback else [])
    if int8_io:
        converter.inference_input_type = tf.int8
        converter.inference_output_type = tf.int8
    return converter.convert()


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Path]:
    """Each model is converted once for the module (about half a second each)."""
    from pipeline.core.tf_env import keras, tf

    folder = tmp_path_factory.mktemp("edgetpu-models")
    plain = _classifier(keras.Input(INPUT_SHAPE))
    with_sin = _classifier(keras.Input(INPUT_SHAPE), middle=keras.layers.Lambda(tf.math.sin))
    dynamic_input = keras.Input((None, None, 1))
    fixed_input = keras.Input(INPUT_SHAPE, batch_size=1)
    channel_mean = keras.layers.Lambda(lambda v: tf.reduce_mean(v, axis=-1))(keras.layers.Conv2D(3, 3)(fixed_input))
    pooled = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(4, 3)(dynamic_input))
    built = {
        "int8": _convert(plain),
        "float_io": _convert(plain, int8_io=False),
        "dynamic_range": _convert(plain, calibrate=False, int8_io=False),
        "sin": _convert(with_sin, float_fallback=True),
        "dynamic_shape": _convert(keras.Model(dynamic_input, keras.layers.Dense(3)(pooled))),
        "batch2": _convert(_classifier(keras.Input(INPUT_SHAPE, batch_size=2))),
        "limits": _convert(keras.Model(fixed_input, keras.layers.Softmax()(channel_mean))),
    }
    paths = {}
    for name, flatbuffer in built.items():
        paths[name] = folder / f"{name}.tflite"
        paths[name].write_bytes(flatbuffer)
    return paths


def _placements(report: CompatReport) -> list[tuple[str, str]]:
    return [(v.op.name, v.placement) for v in report.verdicts]


def test_int8_conv_dense_model_runs_entirely_on_the_edgetpu(models):
    report = check_model(models["int8"])
    assert _placements(report) == [("CONV_2D", "edgetpu"), ("MAX_POOL_2D", "edgetpu"), ("RESHAPE", "edgetpu"),
                                   ("FULLY_CONNECTED", "edgetpu"), ("SOFTMAX", "edgetpu")]
    assert report.first_unsupported is None and report.fallback is None
    assert report.segment == (0, 4)
    assert any("batch dimension is dynamic" in note for note in report.notes)


def test_float_output_leaves_quantize_and_dequantize_on_the_cpu(models):
    report = check_model(models["float_io"])
    names = [v.op.name for v in report.verdicts]
    assert names[0] == "QUANTIZE" and names[-1] == "DEQUANTIZE"
    assert report.segment == (1, len(names) - 2)
    assert report.ops_on_edgetpu == len(names) - 2
    assert report.first_unsupported.op.name == "QUANTIZE"
    assert "input 'serving_default" in report.first_unsupported.reasons[0]
    assert "float32" in report.first_unsupported.reasons[0]
    assert report.fallback.op.name == "DEQUANTIZE"
    assert any("float32" in reason for reason in report.fallback.reasons)


def test_dynamic_range_model_has_float_ops_and_nothing_on_the_edgetpu(models):
    report = check_model(models["dynamic_range"])
    assert report.ops_on_edgetpu == 0 and report.segment is None
    first = report.first_unsupported
    assert first.op.index == 0 and first.op.name == "CONV_2D"
    assert "not int8/uint8 quantized" in first.reasons[0] and "float32" in first.reasons[0]


def test_sin_is_unsupported_and_everything_after_the_fallback_runs_on_the_cpu(models):
    report = check_model(models["sin"])
    names = [v.op.name for v in report.verdicts]
    sin = names.index("SIN")
    assert report.fallback_index == sin - 1 and names[sin - 1] == "DEQUANTIZE"
    assert report.ops_on_edgetpu == sin - 1
    assert "SIN is not in the Edge TPU's supported operations" in report.verdicts[sin].reasons
    dense = report.verdicts[names.index("FULLY_CONNECTED")]
    assert dense.supported and dense.placement == "cpu"
    assert dense.cpu_because.startswith(f"after #{sin - 1} DEQUANTIZE")


def test_dynamic_input_size_is_reported_as_dynamic_shape(models):
    report = check_model(models["dynamic_shape"])
    assert report.ops_on_edgetpu == 0
    assert report.first_unsupported.op.name == "CONV_2D"
    assert report.first_unsupported.reasons[0].startswith("dynamic shape")
    assert "int8[-1,-1,-1,1]" in report.first_unsupported.reasons[0]


def test_batch_of_two_breaks_the_rank_limit(models):
    report = check_model(models["batch2"])
    assert report.ops_on_edgetpu == 0
    assert "more than 3 dimensions larger than 1" in report.first_unsupported.reasons[0]
    assert "int8[2,8,8,1]" in report.first_unsupported.reasons[0]


def test_documented_op_limits_mean_over_3_channels_and_2d_softmax(models):
    report = check_model(models["limits"])
    assert _placements(report) == [("CONV_2D", "edgetpu"), ("MEAN", "cpu"), ("SOFTMAX", "cpu")]
    assert report.verdicts[1].reasons == ["reduces over 3 channels; a channel reduction needs a multiple of 4"]
    assert report.verdicts[2].reasons == ["input int8[1,6,6] is not 1-D; the Edge TPU's Softmax takes a 1-D input only"]
    assert not any("dynamic" in note for note in report.notes)


def test_table_names_each_op_and_the_first_unsupported_one(models):
    report = check_model(models["sin"])
    table = format_report(report)
    lines = table.splitlines()
    assert lines[2].split()[:5] == ["#", "op", "output", "supported", "runs"]
    assert sum(line.split()[1:2] == ["SIN"] for line in lines) == 1
    assert f"{report.ops_on_edgetpu} of {len(report.verdicts)} ops on the Edge TPU" in table
    assert f"First unsupported op: #{report.fallback_index} DEQUANTIZE" in table


def test_cli_json_lists_every_op_in_execution_order(models, capsys):
    assert main(["edgetpu-check", str(models["float_io"]), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert [op["index"] for op in report["ops"]] == list(range(report["ops_total"]))
    assert report["ops_on_edgetpu"] + report["ops_on_cpu"] == report["ops_total"]
    assert report["fallback_at"]["op"] == "DEQUANTIZE"
    conv = report["ops"][1]
    assert (conv["op"], conv["edgetpu_op"], conv["supported"], conv["placement"]) == (
        "CONV_2D", "Conv2d", True, "edgetpu")


def test_cli_uses_the_demo_manifest_model_by_default(models, tmp_path, monkeypatch, capsys):
    run_dir = tmp_path / "build" / "demo"
    (run_dir / "convert").mkdir(parents=True)
    (run_dir / "convert" / "pruned_qat_int8.tflite").write_bytes(models["int8"].read_bytes())
    (run_dir / "convert" / "pruned_qat_int8.samples.npz").write_bytes(b"samples")
    (run_dir / "manifest.json").write_text(json.dumps({
        "artifacts": {"pruned_qat_int8_tflite": "convert/pruned_qat_int8.tflite",
                      "pruned_qat_int8_samples": "convert/pruned_qat_int8.samples.npz"},
        "metrics": {"variants": {"float": {}, "pruned_qat_int8": {}}, "compressed_variant": "pruned_qat_int8"}}))
    monkeypatch.chdir(tmp_path)
    assert main(["edgetpu-check", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["model"] == "build/demo/convert/pruned_qat_int8.tflite"  # the run's compressed variant
    assert report["ops_on_edgetpu"] == 5


@pytest.mark.parametrize("content, expected", [
    (None, "does not exist: run `make demo`"),
    ("{}", "has no metrics.variants"),
    ('{"metrics": {"variants": {"float": {}}}}', "names no compressed variant it made"),
    ("{not json", "is not valid JSON"),
])
def test_cli_without_a_model_or_manifest_says_how_to_get_one(content, expected, tmp_path, monkeypatch, capsys):
    if content is not None:
        (tmp_path / "build" / "demo").mkdir(parents=True)
        (tmp_path / "build" / "demo" / "manifest.json").write_text(content)
    monkeypatch.chdir(tmp_path)
    assert main(["edgetpu-check"]) == 1
    error = capsys.readouterr().err
    assert expected in error and len(error.strip().splitlines()) == 1


@pytest.mark.parametrize("content, expected", [
    (None, "model not found"),
    (b"\x00" * 16, "is not a TFLite model"),
    ("first 200 bytes of a real model", "could not be parsed as a TFLite flatbuffer (truncated or corrupt)"),
])
def test_cli_rejects_a_bad_model_file_in_one_line(content, expected, models, tmp_path, capsys):
    path = tmp_path / "bad.tflite"
    if isinstance(content, str):
        content = models["int8"].read_bytes()[:200]
    if content is not None:
        path.write_bytes(content)
    assert main(["edgetpu-check", str(path)]) == 1
    error = capsys.readouterr().err
    assert expected in error and len(error.strip().splitlines()) == 1
