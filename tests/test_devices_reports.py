"""The bench table and the result files."""
from __future__ import annotations

import json
from datetime import UTC, datetime

from pipeline.devices.result_table import format_table, result_path, save_result

MEASURED = {
    "device": "rpi5", "runtime": {"name": "tflite_runtime", "version": "2.14.0"}, "delegate": "xnnpack",
    "threads": 4, "latency_ms": {"median": 1.23456, "p90": 1.5}, "throughput_ips": 810.04,
    "accuracy": {"value": 0.875, "count": 200}, "output_max_diff": 1.0,
    "energy": {"mj_per_inference": 2.5}, "peak_rss_mb": 61.25, "bytes_sent": 123456,
    "state": {"throttled": True}, "run": "demo",
}


def test_table_formats_values_and_marks_what_was_not_measured():
    unmetered = {**MEASURED, "device": "local", "energy": None, "state": {"throttled": None}, "bytes_sent": 0}
    header, first, second = format_table([MEASURED, unmetered]).splitlines()
    assert header.split()[:5] == ["device", "runtime", "delegate", "threads", "median"]
    assert first.split() == ["rpi5", "tflite_runtime", "xnnpack", "4", "1.235", "1.500", "810.0", "0.8750", "1",
                             "2.500", "61.2", "123,456", "yes", "ok"]
    assert second.split()[9] == "-" and second.split()[-2] == "-" and second.split()[-3] == "0"
    mismatched = format_table([{**MEASURED, "mismatch": "result contradicts the host: ..."}]).splitlines()[1]
    assert mismatched.split()[-1] == "MISMATCH"
    assert len({len(line) for line in (header, first)}) == 1  # columns line up


def test_class_names_follow_the_table_once_per_model():
    named = {**MEASURED, "class_names": ["cat", "dog"]}
    lines = format_table([named, {**named, "device": "local"}, MEASURED]).splitlines()
    assert lines[-1] == "classes: 0=cat, 1=dog" and len(lines) == 5


def test_result_file_name_and_content(tmp_path):
    when = datetime(2026, 3, 4, 5, 6, 7, 890123, tzinfo=UTC)
    assert result_path(tmp_path, "demo", "rpi5", when) == tmp_path / "demo/bench/rpi5-20260304T050607.890123Z.json"
    path = save_result(MEASURED, tmp_path, "rpi5")
    assert path.parent == tmp_path / "demo" / "bench" and path.name.startswith("rpi5-")
    assert json.loads(path.read_text()) == MEASURED
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary left behind
