"""Pack the device agent into one runnable zipapp with deterministic bytes (host side).

The host content-addresses the agent by sha256 so an unchanged agent is never uploaded again:
the archive must not depend on file timestamps, permissions, directory order or caches.
Entries are stored uncompressed so the bytes do not depend on the host's zlib either.
"""
from __future__ import annotations

import zipfile
from pathlib import Path

from pipeline.core.artifacts import atomic_path

AGENT_PACKAGE = Path(__file__).resolve().parents[2] / "device_agents" / "edge_agent"
ARCHIVE_NAME = "agent.pyz"
SHEBANG = b"#!/usr/bin/env python3\n"
FIXED_DATE_TIME = (1980, 1, 1, 0, 0, 0)  # the earliest time a zip entry can hold
FILE_MODE = 0o644 << 16
MAIN_SOURCE = b"import sys\n\nfrom edge_agent.cli import main\n\nsys.exit(main())\n"


def _entry(archive: zipfile.ZipFile, name: str, data: bytes) -> None:
    info = zipfile.ZipInfo(name, date_time=FIXED_DATE_TIME)
    info.external_attr = FILE_MODE
    info.create_system = 3  # Unix, whatever the host OS
    archive.writestr(info, data, compress_type=zipfile.ZIP_STORED)


def agent_sources() -> list[Path]:
    """The agent's modules in a stable order (no caches, no stray files)."""
    return sorted(AGENT_PACKAGE.glob("*.py"))


def build_agent_zipapp(dest: Path) -> Path:
    """Write the zipapp to `dest` (or to dest/agent.pyz if dest is a folder) atomically; return its path.

    `python3 agent.pyz --help` runs it; the bytes depend only on the agent's source files.
    """
    dest = Path(dest)
    target = dest / ARCHIVE_NAME if dest.is_dir() else dest
    with atomic_path(target) as tmp:
        with open(tmp, "wb") as handle:
            handle.write(SHEBANG)
            with zipfile.ZipFile(handle, "w") as archive:
                _entry(archive, "__main__.py", MAIN_SOURCE)
                for source in agent_sources():
                    _entry(archive, f"edge_agent/{source.name}", source.read_bytes())
        tmp.chmod(0o755)
    return target
