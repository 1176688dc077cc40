"""Ctrl-C for the tests that send it, however the suite was started.

A non-interactive shell starts background jobs with SIGINT ignored, and so does `nohup`; Python
installs its KeyboardInterrupt handler only when SIGINT is not ignored at start-up, and a child
inherits the ignored disposition. A test that sends Ctrl-C therefore sets up the handling it relies
on: Python's handler in its own process (`ctrl_c`), and SIGINT's default in each child it will
interrupt (`interruptible`), before that child's Python starts.
"""
from __future__ import annotations

import signal
from collections.abc import Iterator

import pytest


@pytest.fixture
def ctrl_c() -> Iterator[None]:
    """Python's own Ctrl-C handler (KeyboardInterrupt) in this process while the test runs."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def interruptible() -> None:
    """`preexec_fn` of a child the test will interrupt: SIGINT at its default, so Python installs its handler."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
