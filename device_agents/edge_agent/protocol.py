"""The timing protocol: first inference, idle window, warm-up, timed runs.

Each invoke is timed on its own with perf_counter_ns; copying the input in (set_tensor) stays
outside the timed section so the numbers are the runtime's, not numpy's.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from .energy import PowerSampler, WindowEnergy

NS_PER_MS = 1e6


@dataclass
class ProtocolSettings:
    """How long each phase lasts: each phase needs both its run count and its duration."""

    warmup_runs: int
    warmup_min_s: float
    runs: int
    min_s: float
    idle_s: float


@dataclass
class ProtocolResult:
    first_inference_ms: float
    warmup_runs: int
    latencies_ms: list[float]
    timed_wall_s: float
    idle_energy: WindowEnergy | None
    timed_energy: WindowEnergy | None


class InvokeTimer:
    """Feeds the real samples in turn (cycling) and times each invoke alone."""

    def __init__(self, interpreter: Any, input_index: int, inputs: np.ndarray):
        self._interpreter = interpreter
        self._input_index = input_index
        self._batches = [inputs[position : position + 1] for position in range(len(inputs))]
        self._next = 0

    def time_one(self) -> int:
        """Nanoseconds of one invoke on the next sample."""
        batch = self._batches[self._next % len(self._batches)]
        self._next += 1
        self._interpreter.set_tensor(self._input_index, batch)
        started = time.perf_counter_ns()
        self._interpreter.invoke()
        return time.perf_counter_ns() - started

    def repeat(self, min_runs: int, min_seconds: float) -> tuple[list[int], float]:
        """Invoke until at least min_runs AND min_seconds; returns per-invoke ns and wall seconds."""
        latencies: list[int] = []
        started = time.perf_counter()
        while len(latencies) < min_runs or time.perf_counter() - started < min_seconds:
            latencies.append(self.time_one())
        return latencies, time.perf_counter() - started


def run_protocol(timer: InvokeTimer, settings: ProtocolSettings, sampler: PowerSampler | None) -> ProtocolResult:
    """First inference, idle window (energy only), warm-up, then the timed window."""
    first_ns = timer.time_one()
    idle_energy = sampler.idle_window(settings.idle_s) if sampler else None
    warmup, _ = timer.repeat(settings.warmup_runs, settings.warmup_min_s)
    timed_start = sampler.mark() if sampler else None
    latencies_ns, wall_s = timer.repeat(settings.runs, settings.min_s)
    timed_energy = sampler.window(timed_start, sampler.mark()) if sampler and timed_start is not None else None
    return ProtocolResult(
        first_inference_ms=first_ns / NS_PER_MS,
        warmup_runs=len(warmup),
        latencies_ms=[latency / NS_PER_MS for latency in latencies_ns],
        timed_wall_s=wall_s,
        idle_energy=idle_energy,
        timed_energy=timed_energy,
    )
