"""The edgetpu-compile step: the "not on PATH" message, and invocation/parsing against a stand-in.

The real edgetpu_compiler is not installed here (x86-64 Debian package from Coral's apt repo).
FIXTURE_COMPILER below is a TEST FIXTURE, not the compiler: a small script put first on PATH
under the same name, which records its arguments, writes `<name>_edgetpu.tflite` and a log
into the `-o` folder, and prints output in the real compiler's format (counts given by the test).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import flatbuffers
import numpy as np
import pytest
from ai_edge_litert import schema_py_generated as schema
from ai_edge_litert.interpreter import Interpreter

from pipeline.cli import main
from pipeline.edgetpu.compiler_log import parse_compiler_log

REPO_ROOT = Path(__file__).resolve().parents[1]
FIXTURE_VERSION = "0.0-test-fixture"
FIXTURE_COMPILER = r'''#!{python}
"""TEST FIXTURE standing in for edgetpu_compiler (it compiles nothing)."""
import json, os, pathlib, sys

args = sys.argv[1:]
pathlib.Path(os.environ["FIXTURE_ARGV_FILE"]).write_text(json.dumps(args))
out_dir, model = pathlib.Path(args[2]), pathlib.Path(args[3])
output = out_dir / (model.stem + "_edgetpu.tflite")
mode = os.environ.get("FIXTURE_MODE", "ok")
if mode == "fail":
    output.write_bytes(b"half-written")
    print("Edge TPU Compiler version {version}")
    print("ERROR: Didn't find op for builtin opcode 'SIN' version '1'")
    print("Compilation failed: Model not quantized")
    sys.exit(1)
table = json.loads(os.environ["FIXTURE_TABLE"])
total = sum(count for _, count, _ in table)
mapped = sum(count for _, count, status in table if status == "Mapped to Edge TPU")
rows = "".join(f"{{op:<31}}{{count:<11}}{{status}}\n" for op, count, status in table)
header = "Operator                       Count      Status\n\n"
log = out_dir / (model.stem + "_edgetpu.log")
log.write_text(f"Edge TPU Compiler version {version}\nInput: {{model}}\nOutput: {{output}}\n\n" + header + rows)
if mode != "no_output":
    output.write_bytes(model.read_bytes())
split = "" if mapped == total else (
    "Model successfully compiled but not all operations are supported by the Edge TPU.\n"
    f"Number of operations that will run on Edge TPU: {{mapped}}\n"
    f"Number of operations that will run on CPU: {{total - mapped}}\n\n")
print(f"Edge TPU Compiler version {version}\nStarted a compilation timeout timer of 180 seconds.\n\n"
      f"Model compiled successfully in 1 ms.\n\nInput model: {{model}}\nOutput model: {{output}}\n"
      f"Number of Edge TPU subgraphs: 1\nTotal number of operations: {{total}}\nOperation log: {{log}}\n\n"
      + split + header + rows + "Compilation child process completed within timeout period.\nCompilation succeeded!")
'''
ALL_MAPPED = [["RELU", 1, "Mapped to Edge TPU"]]
PARTLY_MAPPED = [["CONV_2D", 2, "Mapped to Edge TPU"],
                 ["DEQUANTIZE", 1, "Operation is working on an unsupported data type"],
                 ["SIN", 1, "Operation not supported"],
                 ["FULLY_CONNECTED", 1, "More than one subgraph is not supported"]]


def _write_relu_model(path: Path) -> None:
    """A one-op int8 model (RELU on [1, 4]) built with the TFLite flatbuffer schema, no TensorFlow."""
    def int8_tensor(name: str, buffer: int) -> schema.TensorT:
        tensor = schema.TensorT()
        tensor.name, tensor.shape, tensor.type, tensor.buffer = name, [1, 4], schema.TensorType.INT8, buffer
        tensor.quantization = schema.QuantizationParametersT()
        tensor.quantization.scale, tensor.quantization.zeroPoint = [0.1], [0]
        return tensor

    operator = schema.OperatorT()
    operator.opcodeIndex, operator.inputs, operator.outputs = 0, [0], [1]
    subgraph = schema.SubGraphT()
    subgraph.tensors, subgraph.inputs, subgraph.outputs = [int8_tensor("x", 1), int8_tensor("y", 2)], [0], [1]
    subgraph.operators = [operator]
    code = schema.OperatorCodeT()
    code.builtinCode = code.deprecatedBuiltinCode = schema.BuiltinOperator.RELU
    code.version = 1
    model = schema.ModelT()
    model.version, model.operatorCodes, model.subgraphs = 3, [code], [subgraph]
    model.buffers = [schema.BufferT() for _ in range(3)]
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    path.write_bytes(builder.Output())


@pytest.fixture
def model(tmp_path) -> Path:
    path = tmp_path / "models" / "tiny_int8.tflite"
    path.parent.mkdir()
    _write_relu_model(path)
    return path


@pytest.fixture
def fixture_compiler(tmp_path, monkeypatch) -> Path:
    """Put the stand-in script first on PATH; returns the file where it records its arguments."""
    bin_dir = tmp_path / "fixture-bin"
    bin_dir.mkdir()
    script = bin_dir / "edgetpu_compiler"
    script.write_text(FIXTURE_COMPILER.format(python=sys.executable, version=FIXTURE_VERSION))
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FIXTURE_TABLE", json.dumps(ALL_MAPPED))
    argv_file = tmp_path / "fixture-argv.json"
    monkeypatch.setenv("FIXTURE_ARGV_FILE", str(argv_file))
    return argv_file


def test_tiny_model_is_a_real_tflite_model(model):
    interpreter = Interpreter(model_path=str(model))
    interpreter.allocate_tensors()
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], np.array([[-3, -1, 0, 5]], dtype=np.int8))
    interpreter.invoke()
    assert interpreter.get_tensor(interpreter.get_output_details()[0]["index"]).tolist() == [[0, 0, 0, 5]]


def test_missing_compiler_gives_one_line_saying_how_to_install_it(model, tmp_path):
    empty_bin = tmp_path / "empty-bin"
    empty_bin.mkdir()
    env = {**os.environ, "PATH": str(empty_bin), "PYTHONPATH": str(REPO_ROOT)}
    done = subprocess.run([sys.executable, "-m", "pipeline", "edgetpu-compile", str(model)],
                          capture_output=True, text=True, env=env, cwd=REPO_ROOT, check=False)
    assert done.returncode == 1 and done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: edgetpu_compiler is not on PATH")
    for hint in ("`edgetpu-compiler` package", "coral-edgetpu-stable", "x86-64 Debian/Ubuntu only"):
        assert hint in lines[0]
    assert list(model.parent.iterdir()) == [model]


def test_compiles_next_to_the_model_with_the_documented_arguments(model, fixture_compiler, capsys):
    assert main(["edgetpu-compile", str(model), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    argv = json.loads(fixture_compiler.read_text())
    assert argv[:2] == ["-s", "-o"] and argv[3] == str(model.resolve())
    work_dir = Path(argv[2])
    assert work_dir.parent == model.parent and work_dir.name.startswith(".tmp-") and not work_dir.exists()
    output = model.parent / "tiny_int8_edgetpu.tflite"
    assert result["output"] == str(output) and output.read_bytes() == model.read_bytes()
    assert result["log_file"] == str(model.parent / "tiny_int8_edgetpu.log")
    assert (result["compiler_version"], result["ops_total"], result["ops_on_edgetpu"], result["ops_on_cpu"]) == (
        FIXTURE_VERSION, 1, 1, 0)
    assert result["static_check"] == {"ops_total": 1, "ops_on_edgetpu": 1}
    assert sorted(p.name for p in model.parent.iterdir()) == [
        "tiny_int8.tflite", "tiny_int8_edgetpu.log", "tiny_int8_edgetpu.tflite"]


def test_partly_mapped_model_into_an_output_dir(model, fixture_compiler, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("FIXTURE_TABLE", json.dumps(PARTLY_MAPPED))
    out_dir = tmp_path / "compiled"
    assert main(["edgetpu-compile", str(model), "--output-dir", str(out_dir)]) == 0
    text = capsys.readouterr().out
    assert "2 of 5 ops mapped to the Edge TPU, 3 on the CPU (static check predicted 1 of 1)" in text
    assert "SIN" in text and "Operation not supported" in text
    assert sorted(p.name for p in out_dir.iterdir()) == ["tiny_int8_edgetpu.log", "tiny_int8_edgetpu.tflite"]


@pytest.mark.parametrize("mode, expected", [
    ("fail", "failed on"),
    ("no_output", "wrote no tiny_int8_edgetpu.tflite"),
])
def test_failed_compile_leaves_nothing_behind(mode, expected, model, fixture_compiler, monkeypatch, capsys):
    monkeypatch.setenv("FIXTURE_MODE", mode)
    assert main(["edgetpu-compile", str(model)]) == 1
    error = capsys.readouterr().err
    assert expected in error and len(error.strip().splitlines()) == 1
    assert list(model.parent.iterdir()) == [model]


def test_compiler_failure_names_the_compilers_reason(model, fixture_compiler, monkeypatch, capsys):
    monkeypatch.setenv("FIXTURE_MODE", "fail")
    main(["edgetpu-compile", str(model)])
    assert "(exit 1): ERROR: Didn't find op for builtin opcode 'SIN'" in capsys.readouterr().err


def test_not_a_tflite_file_is_refused_before_running_the_compiler(fixture_compiler, tmp_path, capsys):
    bogus = tmp_path / "notes.tflite"
    bogus.write_text("not a model")
    assert main(["edgetpu-compile", str(bogus)]) == 1
    assert "is not a TFLite model" in capsys.readouterr().err
    assert not fixture_compiler.exists()


def test_parser_reads_counts_from_the_log_file_format():
    log_file_text = (f"Edge TPU Compiler version {FIXTURE_VERSION}\nInput: m.tflite\nOutput: m_edgetpu.tflite\n\n"
                     "Operator                       Count      Status\n\n"
                     "CONV_2D                        3          Mapped to Edge TPU\n"
                     "SIN                            1          Operation not supported\n"
                     "SOFTMAX                        1          More than one subgraph is not supported\n")
    log = parse_compiler_log(log_file_text)
    assert (log.ops_total, log.ops_on_edgetpu, log.ops_on_cpu, log.subgraphs) == (5, 3, 2, None)
    assert [line.op for line in log.operators] == ["CONV_2D", "SIN", "SOFTMAX"]


def test_parser_prefers_the_compilers_own_split_and_rejects_unrelated_text():
    summary = "Total number of operations: 9\nNumber of operations that will run on Edge TPU: 7\n"
    log = parse_compiler_log(summary)
    assert (log.ops_total, log.ops_on_edgetpu, log.operators) == (9, 7, [])
    assert parse_compiler_log("Segmentation fault (core dumped)") is None
