"""The worker's place in a multi-machine run, read from TF_CONFIG without importing TensorFlow
(the runner decides what to run and where to write before any stage loads TensorFlow)."""
from __future__ import annotations

import json
import os
from typing import Any

from pipeline.errors import UserError


def tf_config() -> dict[str, Any]:
    """TF_CONFIG as a dict ({} when unset); a malformed one is refused in one line."""
    raw = os.environ.get("TF_CONFIG", "")
    if not raw:
        return {}
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as error:
        raise UserError(f"TF_CONFIG is not valid JSON ({error}); "
                        f"see the README section 'When one machine is not enough'") from None
    if not isinstance(value, dict) or not isinstance(value.get("cluster", {}), dict):
        raise UserError('TF_CONFIG must look like {"cluster": {"worker": ["host:port", ...]}, '
                        '"task": {"type": "worker", "index": 0}}')
    return value


def worker_count() -> int:
    cluster = tf_config().get("cluster", {})
    return sum(len(cluster.get(role, [])) for role in ("chief", "worker"))


def is_multi_worker(strategy: str) -> bool:
    """Whether training runs across processes: asked for, or `auto` with a cluster of several."""
    if strategy == "multi_worker":
        if not tf_config():
            raise UserError('run.strategy = "multi_worker" needs TF_CONFIG naming the workers '
                            '({"cluster": {"worker": [...]}, "task": {"type": "worker", "index": N}})')
        return True
    return strategy == "auto" and worker_count() > 1


def is_chief() -> bool:
    """The one worker that writes artifacts: the `chief` task, else worker 0 (TensorFlow's convention)."""
    config = tf_config()
    task = config.get("task", {})
    if not task:
        return True
    if "chief" in config.get("cluster", {}):
        return task.get("type") == "chief"
    return task.get("type") == "worker" and int(task.get("index", 0)) == 0
