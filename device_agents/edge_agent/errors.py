"""Errors the agent reports as one JSON line instead of a traceback."""
from __future__ import annotations


class AgentError(Exception):
    """A problem the user can fix (bad file, missing runtime, unreadable meter): exit code 1."""


class UsageError(AgentError):
    """A malformed command line: exit code 2."""


def one_line(exc: BaseException) -> str:
    """An exception's message squeezed onto one line (runtimes raise multi-line messages)."""
    text = " ".join(str(exc).split())
    return text or type(exc).__name__
