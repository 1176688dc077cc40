"""Deployment to devices and the host side of benchmarking (docs/devices.md).

For other code (e.g. a nightly job), the whole flow is:

    profiles = select_devices(load_inventory(inventory_path()), ["rpi5"], False, None)
    results = run_on_devices(profiles, model, samples, run, benchmark)   # GroupResult
    for name, document in results.succeeded.items():
        save_result(document, BUILD_DIR, name)
    for name, error in results.failed.items():
        print(failure_reason(name, error))
"""
from pipeline.devices.bench_run import BenchJob, benchmark, deploy, run_on_devices
from pipeline.devices.group import Group, GroupResult, failure_reason
from pipeline.devices.inventory import DeviceProfile, inventory_path, load_inventory, select_devices
from pipeline.devices.result_table import format_table, save_result
from pipeline.devices.targets import BUILD_DIR
from pipeline.devices.transport import open_connection
from pipeline.devices.transport.connection import CommandResult, Connection, DeviceError

__all__ = [
    "BUILD_DIR", "BenchJob", "CommandResult", "Connection", "DeviceError", "DeviceProfile", "Group", "GroupResult",
    "benchmark", "deploy", "failure_reason", "format_table", "inventory_path", "load_inventory",
    "open_connection", "run_on_devices", "save_result", "select_devices",
]
