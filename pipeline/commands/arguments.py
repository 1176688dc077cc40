"""Argument types shared by commands: numbers written with ASCII digits only.

`int("١٢")` is 12 in Python; a run id or count typed in another script's digits is refused instead of
being read as something the user may not have meant.
"""
from __future__ import annotations

import argparse

MAX_INT = (1 << 63) - 1  # the stores' integer columns are 64-bit


def ascii_int(text: str) -> int:
    """argparse `type=`: a non-negative decimal integer in ASCII digits that fits a 64-bit column."""
    if not (text.isascii() and text.isdigit()) or int(text) > MAX_INT:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number (0-9 digits, at most {MAX_INT})")
    return int(text)
