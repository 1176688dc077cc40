"""Run and device names: matched in full against one allow-list, because they become folder and file
names (`build/<run>/bench/<device>-....json`) and reach every report."""
from __future__ import annotations

import re

from pipeline.errors import UserError

NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")  # no '.', '..', '/', spaces or newlines
NAME_RULE = "1-64 letters, digits, '.', '_' or '-', starting with a letter or digit"


def check_name(value: object, where: str) -> str:
    """`value` if it is a safe name (re.fullmatch: a trailing newline does not slip through), else UserError."""
    if not isinstance(value, str) or not NAME_PATTERN.fullmatch(value):
        shown = value if not isinstance(value, str) or len(value) <= 80 else value[:80] + "..."
        raise UserError(f"{where} = {shown!r} is not a valid name: use {NAME_RULE}")
    return value
