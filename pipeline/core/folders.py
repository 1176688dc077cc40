"""Folders the pipeline writes into (build/<run>/, reports/, results/): one writer at a time, and a
read-only or full disk reported as one line that names the folder and the fix.

The lock is an flock on `<folder>/.lock`: the kernel releases it when the process dies, so a killed
run never leaves a folder locked, and a second process refuses instead of deleting the first one's
temporary files (`remove_stale_temporaries`) while it is still writing them.
"""
from __future__ import annotations

import errno
import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pipeline.errors import UserError

LOCK_NAME = ".lock"
# Errors that say the disk or the permissions are wrong, not the code: these become one line.
STORAGE_ERRNOS = {errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOSPC, errno.EDQUOT}


@contextmanager
def writing_into(folder: str | Path, fix: str) -> Iterator[None]:
    """Turn a permission or disk-full error inside the block into a UserError naming `folder`;
    any other OSError is a bug or a surprise and keeps its traceback."""
    try:
        yield
    except OSError as error:
        if error.errno not in STORAGE_ERRNOS:
            raise
        where = f" ({error.filename})" if error.filename else ""
        raise UserError(f"cannot write into {folder}: {error.strerror}{where}; {fix}") from None


@contextmanager
def folder_lock(folder: str | Path, what: str, fix: str) -> Iterator[None]:
    """Hold `folder`'s lock for the block, or refuse at once naming the process that holds it.

    `what` names the job for the message ("pipeline run", "nightly report"); `fix` says how to make the
    folder writable when it is not.
    """
    folder = Path(folder)
    with writing_into(folder, fix):
        folder.mkdir(parents=True, exist_ok=True)
        handle = os.open(folder / LOCK_NAME, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(handle, 32, 0).decode("ascii", "replace").strip() or "unknown"
            raise UserError(f"{folder} is in use by another {what} (pid {holder}); wait for it to finish, "
                            "or use another folder") from None
        os.ftruncate(handle, 0)
        os.pwrite(handle, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(handle)  # releases the lock
