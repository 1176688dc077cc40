"""One connection per device: local subprocess or SSH (paramiko), with host-key checking.

`open_connection` picks the transport a profile names; paramiko is imported only when an SSH
device is used.
"""
from __future__ import annotations

from pipeline.devices.inventory import DeviceProfile
from pipeline.devices.transport.connection import CommandResult, Connection, DeviceError
from pipeline.devices.transport.local import LocalConnection

__all__ = ["CommandResult", "Connection", "DeviceError", "LocalConnection", "open_connection"]


def open_connection(profile: DeviceProfile) -> Connection:
    """The connection for a profile's transport (SSH connects lazily, on first use)."""
    if profile.transport == "local":
        return LocalConnection(profile)
    from pipeline.devices.transport.ssh import SshConnection  # paramiko only when an SSH device is used

    return SshConnection(profile)
