"""Agent JSON -> benchmark row: every stored field, exact sample round trip, one-line refusals."""
from __future__ import annotations

import json
import math

import pytest

from pipeline.errors import UserError
from pipeline.results.documents import benchmark_row, board_fields, runtime_label, unpack_samples
from pipeline.testing.synthetic import benchmark_document

SHA = "56" * 32


def _document(**changes):
    document = benchmark_document(device="coral", model_sha256=SHA, samples=[2.5, 2.25, 3.125], accuracy=0.9,
                                  energy_windows_mj=[4.0, 4.5, 5.0], delegate="edgetpu", threads=None)
    document.update(changes)
    return document


def test_row_keeps_summary_samples_energy_and_the_rest_of_the_document() -> None:
    row = benchmark_row(_document())
    assert row["runtime"] == "litert+edgetpu" and row["latency_median_ms"] == 2.5 and row["invokes"] == 3
    assert unpack_samples(row["latency_samples"]) == [2.5, 2.25, 3.125]
    assert unpack_samples(row["energy_windows_mj"]) == [4.0, 4.5, 5.0] and row["energy_mj_per_inference"] == 4.5
    assert (row["accuracy"], row["accuracy_count"], row["throttled"]) == (0.9, 1000, 0)
    rest = json.loads(row["document_json"])
    assert "latency_samples_ms" not in rest and "per_window_mj" not in rest["energy"]
    assert rest["bytes_sent"] == 100_000 and rest["state"]["throttled"] is False
    assert board_fields(_document()) == ("coral.local", "aarch64")


def test_optional_blocks_may_be_null_and_unknown_throttling_stays_unknown() -> None:
    document = _document(energy=None, accuracy={"value": None, "count": 0}, state={"throttled": None})
    row = benchmark_row(document)
    assert row["energy_windows_mj"] is None and row["energy_mj_per_inference"] is None
    assert row["accuracy"] is None and row["throttled"] is None


@pytest.mark.parametrize(("change", "field"), [
    ({"latency_samples_ms": []}, "latency_samples_ms"),
    ({"latency_samples_ms": [1.0, math.nan]}, "latency_samples_ms"),
    ({"latency_ms": {"mean": 1.0}}, "latency_ms.median"),
    ({"model": {"bytes": 10}}, "model.sha256"),
    ({"runtime": "litert"}, "runtime"),
    ({"threads": 1.5}, "threads"),
    ({"state": {"throttled": "0x50005"}}, "state.throttled"),
    ({"init_ms": True}, "init_ms"),
])
def test_bad_fields_are_refused_with_their_path_and_the_fix(change, field) -> None:
    with pytest.raises(UserError) as caught:
        benchmark_row(_document(**change), "pi5/pqat_int8")
    message = str(caught.value)
    assert f"'{field}'" in message and "pi5/pqat_int8" in message and "re-run the benchmark" in message
    assert "\n" not in message


def test_runtime_label_names_delegate_but_not_threads() -> None:
    assert runtime_label("litert", "xnnpack") == "litert+xnnpack"
    assert runtime_label("tflite_runtime", None) == "tflite_runtime"
