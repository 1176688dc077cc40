"""Power sampling on a background thread and energy per window.

A window is bounded by two readings taken on the caller's thread at its start and end, so the
integral covers exactly the window; the thread fills in readings between them at --sample-hz.
Power meters are integrated with the trapezoid rule over the reading timestamps; cumulative
energy counters (RAPL) are summed as wrap-aware differences between consecutive readings.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .errors import AgentError
from .meters import Meter

JOIN_TIMEOUT_S = 10.0


@dataclass
class Reading:
    time_s: float  # perf_counter seconds, midway through the read
    value: float  # watts, or joules on the meter's cumulative counter
    unix_s: float = 0.0  # the same instant on the wall clock, to line up with external logs


@dataclass
class WindowEnergy:
    joules: float
    seconds: float
    samples: int
    start_unix_s: float
    end_unix_s: float


def integrate_joules(readings: Sequence[Reading], counter_modulus: float | None = None) -> float:
    """Energy across readings: trapezoid over power, or summed counter steps (wrap at the modulus)."""
    total = 0.0
    for earlier, later in zip(readings, readings[1:]):
        if counter_modulus is None:
            total += (later.time_s - earlier.time_s) * (earlier.value + later.value) / 2.0
        else:
            step = later.value - earlier.value
            total += step if step >= 0 else step + counter_modulus
    return total


class PowerSampler:
    """Reads a meter at a fixed rate on a daemon thread while the benchmark runs."""

    def __init__(self, meter: Meter, sample_hz: float):
        self.meter = meter
        self.sample_hz = sample_hz
        self._readings: list[Reading] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._error: AgentError | None = None
        self._thread = threading.Thread(target=self._run, name="power-sampler", daemon=True)

    def __enter__(self) -> PowerSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self._stop.set()
        self._thread.join(JOIN_TIMEOUT_S)

    def _take(self) -> int:
        """One reading appended in time order, stamped midway through the read; returns its index."""
        with self._lock:
            before, before_unix = time.perf_counter(), time.time()
            value = self.meter.read()
            middle, middle_unix = (before + time.perf_counter()) / 2.0, (before_unix + time.time()) / 2.0
            self._readings.append(Reading(time_s=middle, value=value, unix_s=middle_unix))
            return len(self._readings) - 1

    def _run(self) -> None:
        period = 1.0 / self.sample_hz
        due = time.perf_counter()
        while not self._stop.is_set():
            try:
                self._take()
            except AgentError as exc:
                self._error = exc
                return
            due += period
            delay = due - time.perf_counter()
            if delay < 0:  # fell behind (slow meter): resume the schedule from now, no burst
                due, delay = time.perf_counter(), 0.0
            self._stop.wait(delay)

    def mark(self) -> int:
        """Take a window-boundary reading now; returns its index (raises the sampler thread's error)."""
        if self._error is not None:
            raise self._error
        return self._take()

    def window(self, start: int, end: int) -> WindowEnergy:
        """Energy between two boundary readings (given by index), both included."""
        with self._lock:
            readings = self._readings[start : end + 1]
        return WindowEnergy(
            joules=integrate_joules(readings, self.meter.counter_modulus),
            seconds=readings[-1].time_s - readings[0].time_s,
            samples=len(readings),
            start_unix_s=readings[0].unix_s,
            end_unix_s=readings[-1].unix_s,
        )

    def idle_window(self, seconds: float) -> WindowEnergy | None:
        """Sample while nothing runs: the board's baseline power."""
        if seconds <= 0:
            return None
        start = self.mark()
        time.sleep(seconds)
        return self.window(start, self.mark())


def _window_json(window: WindowEnergy) -> dict[str, Any]:
    return {
        "joules": window.joules,
        "seconds": window.seconds,
        "samples": window.samples,
        "start_unix_s": window.start_unix_s,
        "end_unix_s": window.end_unix_s,
    }


def energy_summary(
    sampler: PowerSampler, idle: WindowEnergy | None, timed: WindowEnergy, runs: int
) -> dict[str, Any]:
    """The `energy` block of the result: averages, per-inference energy, and both windows."""
    idle_w = idle.joules / idle.seconds if idle and idle.seconds > 0 else None
    above_idle = None
    if idle_w is not None:
        above_idle = (timed.joules - idle_w * timed.seconds) * 1000.0 / runs
    return {
        "meter": sampler.meter.name,
        "note": sampler.meter.note,
        "sample_hz": sampler.sample_hz,
        "samples": timed.samples,
        "idle_w": idle_w,
        "avg_w": timed.joules / timed.seconds if timed.seconds > 0 else None,
        "mj_per_inference": timed.joules * 1000.0 / runs,
        "mj_per_inference_above_idle": above_idle,
        "window_s": timed.seconds,
        "windows": {"idle": _window_json(idle) if idle else None, "timed": _window_json(timed)},
    }
