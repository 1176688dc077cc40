"""Content-addressed uploads: `<workdir>/cache/<sha256><suffix>` on the device.

A file is sent to a temporary name, its hash is checked on the device and only then renamed
into place, so the cache never holds a file whose name lies about its content. A cached
file is re-hashed before each use; an intact one is not sent again. Files are hashed through
stdin: sha256sum escapes file names holding a backslash or a newline, which would not match.

Temporaries of uploads that died (sshd or the board killed mid-upload) are removed by the next
connection's first command, while two host processes may upload to the same board at once. The
owner of a temporary is the device-side shell that writes it: it holds an `flock` on the temporary
from creating it until the file is verified and renamed, and the kernel drops that lock when the
shell exits or is killed. A temporary whose lock can be taken therefore has no live owner and is
removed; one whose lock is held is an upload in progress and is left alone. Creating a temporary
and locking it are two steps, so both happen under `<workdir>/uploads.lock`, which the cleanup holds
too: it can never see a temporary between those steps. The uploads lock is held for milliseconds
(never during a transfer), so uploads and cleanups do not wait on each other's transfers. Age is no
evidence: a stalled upload is not dead, and a dead one need not be old. A cut link keeps its shell,
and so its lock, until sshd notices; the temporary goes with the next connection after that (or the
shell, reading end-of-file, finds the hash wrong and removes it itself).
"""
from __future__ import annotations

import logging
import secrets
import shlex
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path

from pipeline.core.artifacts import TMP_PREFIX, sha256_file
from pipeline.devices.transport.connection import Connection, DeviceError

LOG = logging.getLogger(__name__)
CACHE_DIR = "cache"
CORRUPTED_EXIT = 3  # the verify command's exit when the hash differs
MISSING = "-"  # what the hash command prints for a file that is not there
UPLOADS_LOCK = "uploads.lock"  # in the workdir: held while a temporary is created and locked, or cleaned up


class UploadCorrupted(DeviceError):
    """The bytes on the device do not hash to what was sent; the copy was deleted."""


@dataclass(frozen=True)
class Upload:
    local: Path
    remote: str  # the verified cached copy on the device
    sha256: str
    bytes_sent: int  # 0 when the device already had it


def cache_dir(connection: Connection) -> str:
    return f"{connection.workdir}/{CACHE_DIR}"


def _hash_command(path: str) -> str:
    """Print the file's sha256 (read through stdin, so its name never appears), or MISSING."""
    return f"{{ sha256sum < {shlex.quote(path)}; }} 2>/dev/null || echo {MISSING}"


def _uploads_lock(connection: Connection) -> str:
    """Shell: open the workdir's uploads lock as file descriptor 8 and wait for it."""
    return f"exec 8>>{shlex.quote(f'{connection.workdir}/{UPLOADS_LOCK}')} && flock 8"


def _remove_dead_temporaries(connection: Connection) -> str:
    """Shell: under the uploads lock, remove each upload temporary whose own lock is free (its writer
    is gone); `flock -n` leaves the ones still being written at once."""
    return (f"( {_uploads_lock(connection)} && cd {shlex.quote(cache_dir(connection))} && "
            f"for tmp in {TMP_PREFIX}*; do [ -f \"$tmp\" ] && flock -n \"$tmp\" rm -f -- \"$tmp\"; done; true )")


def cached_hashes(connection: Connection, paths: list[str]) -> dict[str, str]:
    """Create the cache folder, remove the temporaries of dead uploads and hash the wanted files in it,
    in one round trip; missing files are left out of the answer."""
    cache = shlex.quote(cache_dir(connection))
    hashes = "; ".join(_hash_command(path) for path in paths)
    result = connection.check(f"mkdir -p -- {cache} && {_remove_dead_temporaries(connection)} && {{ {hashes}; }}")
    digests = [line.split()[0] if line.split() else MISSING for line in result.stdout.splitlines()]
    return {path: digest for path, digest in zip(paths, digests, strict=False) if digest != MISSING}


def _verify_command(tmp: str, digest: str, final: str) -> str:
    """On the device: rename `tmp` to `final` if it hashes to `digest`, else delete it, print the
    hash it had and exit with CORRUPTED_EXIT."""
    tmp, final = shlex.quote(tmp), shlex.quote(final)
    return (f"sha256sum < {tmp} | {{ read -r received rest; if [ \"$received\" = {digest} ]; "
            f"then mv -f -- {tmp} {final}; else rm -f -- {tmp}; echo \"${{received:-unreadable}}\"; "
            f"exit {CORRUPTED_EXIT}; fi; }}")


def _upload_command(connection: Connection, tmp: str, digest: str, final: str) -> str:
    """Shell, reading the file on stdin: create `tmp` and lock it (file descriptor 9) under the uploads
    lock, write it, then verify and rename it while still holding its lock; a failed write removes it."""
    quoted = shlex.quote(tmp)
    return (f"{_uploads_lock(connection)} && exec 9>{quoted} && flock 9 && exec 8>&- || exit 1; "
            f"cat >&9 || {{ rm -f -- {quoted}; exit 1; }}; {_verify_command(tmp, digest, final)}")


def _send_verified(connection: Connection, local: Path, digest: str, final: str) -> None:
    """Send to a temporary name that this upload's device-side shell holds locked, check the hash on the
    device, then rename atomically."""
    tmp = f"{cache_dir(connection)}/{TMP_PREFIX}{secrets.token_hex(6)}-{Path(final).name}"
    try:
        result = connection.run(_upload_command(connection, tmp, digest, final), stdin=local)
    except BaseException:
        with suppress(Exception):  # keep the original error if the link is gone too
            connection.run(f"rm -f -- {shlex.quote(tmp)}")
        raise
    if result.exit_code == CORRUPTED_EXIT:
        raise UploadCorrupted(
            f"device {connection.name}: upload of {local.name} arrived corrupted (sha256 {result.stdout.strip()} "
            f"instead of {digest}); the copy was deleted and nothing was benchmarked; check free space on the "
            f"device (df -h {connection.workdir}) and retry")
    if result.exit_code != 0:
        raise DeviceError(f"device {connection.name}: could not store {final} (exit {result.exit_code}): "
                          f"{result.stderr_tail()}")


def upload_files(connection: Connection, files: list[Path]) -> list[Upload]:
    """Make sure the device's cache holds each file, sending only what is missing or damaged."""
    wanted = [(local, sha256_file(local)) for local in files]
    finals = [f"{cache_dir(connection)}/{digest}{local.suffix}" for local, digest in wanted]
    cached = cached_hashes(connection, finals)
    uploads = []
    for (local, digest), final in zip(wanted, finals, strict=True):
        bytes_sent = 0
        if cached.get(final) != digest:
            if final in cached:
                LOG.warning("device %s: cached %s is damaged (sha256 %s), sending it again",
                            connection.name, final, cached[final])
            _send_verified(connection, local, digest, final)
            bytes_sent = local.stat().st_size
        uploads.append(Upload(local, final, digest, bytes_sent))
    return uploads
