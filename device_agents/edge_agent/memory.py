"""Peak resident memory of this process: the agent reports it, and the host's data stage too."""
from __future__ import annotations

import resource
import sys

BYTES_PER_MIB = 1024.0 * 1024.0
PROC_STATUS = "/proc/self/status"


def peak_rss_mb() -> float:
    """Peak resident set of this process in MiB: VmHWM on Linux, else ru_maxrss.

    ru_maxrss would do, except that Linux carries the launching process's peak across
    fork/vfork + exec, so an agent started by a large host process (the `local` device)
    would report the host's memory. VmHWM belongs to this process's own address space.
    """
    try:
        with open(PROC_STATUS) as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / BYTES_PER_MIB if sys.platform == "darwin" else peak / 1024.0
