"""One benchmark run, start to finish, and the JSON document it produces (schema in docs/agent.md)."""
from __future__ import annotations

import argparse
import datetime
import hashlib
import platform
import socket
from pathlib import Path
from typing import Any

from . import AGENT_VERSION, SCHEMA_VERSION
from .device_state import read_device_state, throttle_events
from .energy import PowerSampler, energy_summary
from .errors import AgentError
from .memory import peak_rss_mb
from .meters import Meter, open_meter
from .protocol import InvokeTimer, ProtocolResult, ProtocolSettings, run_protocol
from .runtimes import LoadedModel, Runtime, load_model, select_runtime
from .samples import check_against_model, evaluate, load_samples, quantize_images, tensor_summary
from .stats import summarize_latencies


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _measure(
    timer: InvokeTimer, settings: ProtocolSettings, meter: Meter | None, sample_hz: float
) -> tuple[ProtocolResult, dict[str, Any] | None]:
    """Run the protocol, with the power sampler around it when a meter is in use."""
    if meter is None:
        return run_protocol(timer, settings, None), None
    with PowerSampler(meter, sample_hz) as sampler:
        result = run_protocol(timer, settings, sampler)
    assert result.timed_energy is not None
    return result, energy_summary(sampler, result.idle_energy, result.timed_energy, len(result.latencies_ms))


def environment_block(args: argparse.Namespace, runtime: Runtime) -> dict[str, Any]:
    hostname = socket.gethostname()
    return {
        "device": args.device or hostname,
        "hostname": hostname,
        "arch": platform.machine(),
        "python": platform.python_version(),
        "runtime": runtime.describe(),
        "delegate": args.delegate,
        "threads": args.threads,
    }


def _model_block(model_path: Path, loaded: LoadedModel) -> dict[str, Any]:
    return {
        "sha256": file_sha256(model_path),
        "bytes": model_path.stat().st_size,
        "input": tensor_summary(loaded.input_detail),
        "output": tensor_summary(loaded.output_detail),
    }


def _timing_block(loaded: LoadedModel, result: ProtocolResult) -> dict[str, Any]:
    return {
        "warmup_runs": result.warmup_runs,
        "runs": len(result.latencies_ms),
        "init_ms": loaded.init_ms,
        "first_inference_ms": result.first_inference_ms,
        "latency_ms": summarize_latencies(result.latencies_ms),
        "latency_samples_ms": result.latencies_ms,
        "timed_wall_s": result.timed_wall_s,
        "throughput_ips": len(result.latencies_ms) / result.timed_wall_s,
    }


def state_block(before: dict[str, Any], after: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """state {before, after, throttled, throttle_events} and the warnings a throttled run carries."""
    events = throttle_events(before, after)
    state = {"before": before, "after": after, "throttled": None if events is None else bool(events),
             "throttle_events": events}
    warnings = []
    if events:
        warnings.append(f"throttled during the run ({', '.join(events)}): latency and energy are not at full clock")
    return state, warnings


def _settings(args: argparse.Namespace) -> ProtocolSettings:
    return ProtocolSettings(
        warmup_runs=args.warmup_runs, warmup_min_s=args.warmup_min_s, runs=args.runs, min_s=args.min_s,
        idle_s=args.idle_s,
    )


def run_benchmark(args: argparse.Namespace) -> dict[str, Any]:
    """Validate everything first, then load, time, evaluate, and describe the run."""
    started_at = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    model_path, sysfs_root = Path(args.model), Path(args.sysfs_root)
    if not model_path.is_file():
        raise AgentError(f"model file {model_path} not found: pass the path of a .tflite file")
    samples = load_samples(Path(args.samples))
    runtime = select_runtime(args.runtime)
    meter = open_meter(args.energy_meter, args.meter_options, sysfs_root)
    state_before = read_device_state(sysfs_root)
    loaded = load_model(runtime, model_path, args.delegate, args.delegate_options, args.threads)
    check_against_model(samples, loaded.input_detail, loaded.output_detail)
    inputs = quantize_images(samples.images, samples.scale, samples.offset, loaded.input_detail)
    timer = InvokeTimer(loaded.interpreter, loaded.input_detail["index"], inputs)
    result, energy = _measure(timer, _settings(args), meter, args.sample_hz)
    agreement = evaluate(loaded.interpreter, inputs, samples, loaded.output_detail, args.eval_limit)
    state, warnings = state_block(state_before, read_device_state(sysfs_root))
    return {
        "schema_version": SCHEMA_VERSION,
        **environment_block(args, runtime),
        "model": _model_block(model_path, loaded),
        **_timing_block(loaded, result),
        "peak_rss_mb": peak_rss_mb(),
        **agreement,
        "class_names": samples.class_names,
        "energy": energy,
        "state": state,
        "warnings": warnings,
        "started_at": started_at,
        "agent_version": AGENT_VERSION,
    }
