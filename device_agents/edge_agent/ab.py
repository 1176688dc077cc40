"""Back-to-back A/B: two models interleaved in one process on one device, for the host's paired test.

Both models are loaded and warmed up first; then each round times A and B with the same protocol
(its share of --runs and --min-s), alternating the order (A B, then B A, ...) so a drift within a round
falls on both alike. Whatever the board is doing tonight (clock, heat, load) is shared by the two
models, which is the point: the host compares per-round medians, not tonight with last week.
"""
from __future__ import annotations

import argparse
import datetime
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import AGENT_VERSION, SCHEMA_VERSION
from .benchmark import environment_block, file_sha256, state_block
from .device_state import read_device_state
from .energy import PowerSampler
from .errors import AgentError
from .meters import open_meter
from .protocol import NS_PER_MS, InvokeTimer
from .runtimes import load_model, select_runtime
from .samples import check_against_model, load_samples, quantize_images

ORDERS = ("AB", "BA")


@dataclass
class _Side:
    """One model of the pair: its timer and what each round measured."""

    model: Path
    timer: InvokeTimer
    round_samples_ms: list[list[float]] = field(default_factory=list)
    round_energy_mj: list[float] = field(default_factory=list)

    def describe(self) -> dict[str, Any]:
        return {"model": {"sha256": file_sha256(self.model), "bytes": self.model.stat().st_size},
                "round_samples_ms": self.round_samples_ms,
                "round_energy_mj": self.round_energy_mj or None}


def _load(args: argparse.Namespace, runtime: Any, model: Path, samples_path: Path) -> _Side:
    if not model.is_file():
        raise AgentError(f"model file {model} not found: pass the path of a .tflite file")
    samples = load_samples(samples_path)
    loaded = load_model(runtime, model, args.delegate, args.delegate_options, args.threads)
    check_against_model(samples, loaded.input_detail, loaded.output_detail)
    inputs = quantize_images(samples.images, samples.scale, samples.offset, loaded.input_detail)
    return _Side(model, InvokeTimer(loaded.interpreter, loaded.input_detail["index"], inputs))


def _time_round(side: _Side, runs: int, min_s: float, sampler: PowerSampler | None) -> None:
    start = sampler.mark() if sampler else None
    latencies, _ = side.timer.repeat(runs, min_s)
    if sampler and start is not None:
        side.round_energy_mj.append(sampler.window(start, sampler.mark()).joules * 1000.0 / len(latencies))
    side.round_samples_ms.append([latency / NS_PER_MS for latency in latencies])


def _rounds(args: argparse.Namespace, sides: dict[str, _Side], sampler: PowerSampler | None) -> list[str]:
    """Warm both up, then args.rounds rounds, each with 1/rounds of one benchmark's timed budget per model."""
    for side in sides.values():
        side.timer.time_one()
        side.timer.repeat(args.warmup_runs, args.warmup_min_s)
    runs, min_s = math.ceil(args.runs / args.rounds), args.min_s / args.rounds
    orders = [ORDERS[index % 2] for index in range(args.rounds)]
    for order in orders:
        for name in order:
            _time_round(sides[name], runs, min_s, sampler)
    return orders


def run_ab(args: argparse.Namespace) -> dict[str, Any]:
    """A = --model (tonight's), B = --baseline-model; one document with every round of both."""
    started_at = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    sysfs_root = Path(args.sysfs_root)
    runtime = select_runtime(args.runtime)
    meter = open_meter(args.energy_meter, args.meter_options, sysfs_root)
    sides = {"A": _load(args, runtime, Path(args.model), Path(args.samples)),
             "B": _load(args, runtime, Path(args.baseline_model), Path(args.baseline_samples or args.samples))}
    state_before = read_device_state(sysfs_root)
    if meter is None:
        orders = _rounds(args, sides, None)
    else:
        with PowerSampler(meter, args.sample_hz) as sampler:
            orders = _rounds(args, sides, sampler)
    state, warnings = state_block(state_before, read_device_state(sysfs_root))
    return {
        "schema_version": SCHEMA_VERSION,
        **environment_block(args, runtime),
        "ab": {"rounds": args.rounds, "orders": orders, "a": sides["A"].describe(), "b": sides["B"].describe(),
               "energy_meter": args.energy_meter if meter is not None else None},
        "state": state,
        "warnings": warnings,
        "started_at": started_at,
        "agent_version": AGENT_VERSION,
    }
