"""The host's checks on a board's document before anything shows or stores it.

Every document a device sends passes here (bench, nightly, sweep): the agent's own schema
(device_agents/edge_agent/document_schema.py), the host's recomputation of the latency summary from the raw
samples, and energy only from a board whose inventory names a meter. A document that fails is refused
as that device's failure, in one line naming the device and the field; it is never a result.
"""
from __future__ import annotations

from typing import Any

from device_agents.edge_agent.document_schema import SchemaError, check_ab_document, check_benchmark_document
from pipeline.devices.inventory import DeviceProfile
from pipeline.devices.transport.connection import DeviceError

NOT_KEPT = ("the result is not kept; a board that prints this runs a broken or altered agent, "
            "or something rewrites its output")


def _refused(name: str, problem: str) -> DeviceError:
    return DeviceError(f"device {name}: result refused: {problem}; {NOT_KEPT}")


def checked_benchmark(profile: DeviceProfile, document: dict[str, Any]) -> dict[str, Any]:
    """The document with the host's own latency summary and throughput, or a DeviceError naming the field."""
    try:
        summary = check_benchmark_document(document)
    except SchemaError as error:
        raise _refused(profile.name, str(error)) from None
    if document.get("energy") is not None and profile.energy_meter == "none":
        raise _refused(profile.name, "field 'energy' holds a measurement, but the inventory names no energy meter "
                                     "for this device (energy_meter = \"none\")")
    return {**document, **summary}


def checked_ab(profile: DeviceProfile, document: dict[str, Any]) -> dict[str, Any]:
    """An A/B document that passed the schema, or a DeviceError naming the field."""
    try:
        check_ab_document(document)
    except SchemaError as error:
        raise _refused(profile.name, str(error)) from None
    if document["ab"].get("energy_meter") is not None and profile.energy_meter == "none":
        raise _refused(profile.name, "field 'ab.energy_meter' names a meter, but the inventory names none for this "
                                     "device (energy_meter = \"none\")")
    return document
