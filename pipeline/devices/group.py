"""Fan-out over devices: one thread per device, and a failure stays that device's own.

Shaped like fabric's Group: the same verbs as a Connection, returning a mapping
device name -> result or exception, with `.succeeded` and `.failed` views. Ctrl-C cancels every
device's work at once (connections closed, no new command starts) and raises `Interrupted`
carrying what had already finished, so those results can still be kept.
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import Any

from pipeline.devices.inventory import DeviceProfile
from pipeline.devices.transport import open_connection
from pipeline.devices.transport.connection import CommandResult, Connection, DeviceError

# A Ctrl-C that the kernel hands to a device thread instead of the main thread only sets a flag; the main
# thread, blocked in an untimed wait for the devices, would not see it before every device finished (a
# 600 s benchmark in our test did exactly that). Waiting in slices lets it raise KeyboardInterrupt at once.
SIGNAL_CHECK_S = 0.2

LOG = logging.getLogger(__name__)


class GroupResult(dict):
    """device name -> the value returned for it, or the exception it raised."""

    @property
    def succeeded(self) -> dict[str, Any]:
        return {name: value for name, value in self.items() if not isinstance(value, BaseException)}

    @property
    def failed(self) -> dict[str, BaseException]:
        return {name: value for name, value in self.items() if isinstance(value, BaseException)}


class Interrupted(KeyboardInterrupt):
    """Ctrl-C during a fan-out; `finished` holds the devices that were done before it."""

    def __init__(self, finished: GroupResult):
        super().__init__()
        self.finished = finished


def failure_reason(name: str, error: BaseException) -> str:
    """One line for a failed device: DeviceErrors already name it; anything else gets its type."""
    if isinstance(error, DeviceError):
        return str(error)
    return f"device {name}: {type(error).__name__}: {error}"


def _outcomes(futures: list[tuple[Connection, Future]]) -> GroupResult:
    return GroupResult((connection.name, future.result()) for connection, future in futures
                       if future.done() and not future.cancelled())


class Group:
    """Connections to several devices, used in parallel; closing the group closes them all."""

    def __init__(self, connections: Iterable[Connection]):
        self.connections = list(connections)

    @classmethod
    def from_profiles(cls, profiles: Iterable[DeviceProfile]) -> Group:
        return cls(open_connection(profile) for profile in profiles)

    def map(self, action: Callable[[Connection], Any]) -> GroupResult:
        """Call `action(connection)` for every device at once; collect results and exceptions."""
        def guarded(connection: Connection) -> Any:
            try:
                return action(connection)
            except Exception as error:  # noqa: BLE001 - reported per device, the others go on
                LOG.debug("device %s failed", connection.name, exc_info=True)
                return error

        if not self.connections:
            return GroupResult()
        pool = ThreadPoolExecutor(max_workers=len(self.connections), thread_name_prefix="device")
        futures = [(connection, pool.submit(guarded, connection)) for connection in self.connections]
        try:
            pending = {future for _, future in futures}
            while pending:  # waking up now and then lets Ctrl-C in (see SIGNAL_CHECK_S)
                pending = wait(pending, timeout=SIGNAL_CHECK_S).not_done
        except KeyboardInterrupt:
            finished = _outcomes(futures)  # before cancelling: what cancelling breaks was not finished
            for connection in self.connections:
                connection.cancel()
            pool.shutdown(wait=False, cancel_futures=True)
            raise Interrupted(finished) from None
        pool.shutdown()
        return _outcomes(futures)

    def run(self, command: str, timeout: float | None = None) -> GroupResult:
        """The same shell command on every device."""
        def run_one(connection: Connection) -> CommandResult:
            return connection.run(command, timeout)

        return self.map(run_one)

    def close(self) -> None:
        for connection in self.connections:
            connection.close()

    def __enter__(self) -> Group:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
