"""Where runs live: one default for the training config, the device commands and the Edge TPU commands."""
from __future__ import annotations

DEFAULT_BUILD_DIR = "build"  # run folders are <build_dir>/<run name>/
DEFAULT_RUN = "demo"
