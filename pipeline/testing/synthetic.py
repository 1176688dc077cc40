"""Benchmark documents shaped like the device agent's, built from given samples: for the store benchmark and tests.

Summary fields are computed from the samples, so a document is self-consistent; nothing
here pretends to be a measurement of a real device.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from device_agents.edge_agent import SCHEMA_VERSION
from device_agents.edge_agent.stats import summarize_latencies


def benchmark_document(*, device: str, model_sha256: str, samples: Sequence[float], model_bytes: int = 100_000,
                       runtime: str = "litert", delegate: str | None = "xnnpack", threads: int | None = 4,
                       accuracy: float | None = None, energy_windows_mj: Sequence[float] | None = None,
                       throttled: bool | None = False, run: str = "synthetic") -> dict[str, Any]:
    """A complete agent-style result document for the given raw latencies (and energy windows, if any)."""
    summary = summarize_latencies(samples)
    wall_s = float(np.sum(samples)) / 1000.0  # as if nothing ran between the invokes
    energy = None
    if energy_windows_mj is not None:
        energy = {"meter": "synthetic", "note": "generated", "sample_hz": None, "samples": len(energy_windows_mj),
                  "idle_w": None, "avg_w": None, "mj_per_inference": float(np.median(energy_windows_mj)),
                  "mj_per_inference_above_idle": None, "window_s": None,
                  "per_window_mj": [float(v) for v in energy_windows_mj]}
    return {
        "schema_version": SCHEMA_VERSION, "device": device, "hostname": f"{device}.local", "arch": "aarch64",
        "runtime": {"name": runtime, "version": "2.3.0"}, "delegate": delegate, "threads": threads,
        "model": {"sha256": model_sha256, "bytes": model_bytes}, "warmup_runs": 5, "runs": len(samples),
        "init_ms": 12.5, "first_inference_ms": summary["max"], "latency_ms": summary,
        "latency_samples_ms": [float(v) for v in samples], "timed_wall_s": wall_s,
        "throughput_ips": len(samples) / wall_s,
        "peak_rss_mb": 48.0, "accuracy": None if accuracy is None else {"value": accuracy, "count": 1000},
        "top1_agreement": 1.0, "output_max_diff": 0.0, "energy": energy,
        "state": {"before": {}, "after": {}, "throttled": throttled},
        "started_at": "2025-01-01T00:00:00Z", "agent_version": "synthetic", "bytes_sent": model_bytes,
        "model_path": f"/tmp/{model_sha256[:8]}.tflite", "run": run,
    }
