"""What a device was like on a night, from the agent's document: the evidence next to "device slower".

The agent records the board's state before and after each run (load, CPU governor and clock,
temperatures, throttling) and its runtime; this boils it down to the few numbers a reader compares.
"""
from __future__ import annotations

from typing import Any


def _state_summary(state: dict[str, Any] | None) -> dict[str, Any]:
    state = state or {}
    cpus = [cpu for cpu in (state.get("cpus") or {}).values() if isinstance(cpu, dict)]
    clocks = [cpu["cur_mhz"] for cpu in cpus if isinstance(cpu.get("cur_mhz"), (int, float))]
    zones = [zone for zone in state.get("thermal") or [] if isinstance(zone, dict)]
    temperatures = [zone["celsius"] for zone in zones if isinstance(zone.get("celsius"), (int, float))]
    load = state.get("load")
    return {
        "load_1m": load[0] if isinstance(load, list) and load else None,
        "cpu_mhz": round(sum(clocks) / len(clocks)) if clocks else None,
        "governors": sorted({str(cpu.get("governor")) for cpu in cpus if cpu.get("governor")}),
        "max_celsius": max(temperatures) if temperatures else None,
    }


def device_evidence(document: dict[str, Any] | None) -> dict[str, Any]:
    """Runtime, threads, throttling and the state before and after one agent run (None fields: unknown)."""
    document = document or {}
    runtime = document.get("runtime") or {}
    state = document.get("state") or {}
    return {
        "runtime": f"{runtime.get('name', '?')} {runtime.get('version', '?')}" if runtime else None,
        "threads": document.get("threads"),
        "throttled": state.get("throttled"),
        "before": _state_summary(state.get("before")),
        "after": _state_summary(state.get("after")),
    }


def evidence_line(baseline: dict[str, Any], tonight: dict[str, Any]) -> str:
    """'load 0.4 -> 3.9; cpu 2500 -> 2500 MHz; ...': the baseline night's state, then tonight's (after each run)."""
    def shown(value: Any) -> str:
        if isinstance(value, list):
            value = ",".join(value)
        return "?" if value is None or value == "" else str(value)

    def pair(label: str, key: str, unit: str = "") -> str:
        before, after = baseline.get("after", {}).get(key), tonight.get("after", {}).get(key)
        return f"{label} {shown(before)} -> {shown(after)}{unit}"

    parts = [pair("load", "load_1m"), pair("cpu", "cpu_mhz", " MHz"), pair("max temperature", "max_celsius", " C"),
             pair("governor", "governors"),
             f"throttled {baseline.get('throttled')} -> {tonight.get('throttled')}",
             f"runtime {baseline.get('runtime')} -> {tonight.get('runtime')}",
             f"threads {baseline.get('threads')} -> {tonight.get('threads')}"]
    return "; ".join(parts)
