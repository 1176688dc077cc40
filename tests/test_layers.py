"""The package layout is the architecture: imports only point down the layers, and never in a circle.

Layers, lowest first (a module may import its own package and anything in a lower layer):
errors and the device agent (standalone); core; Keras 3 models (read, rebuilt, written); models and
TFLite files; the four domains (training, Edge TPU, devices, results); the nightly and the test
infrastructure; the compression sweep (it reuses the nightly's report pieces) and the model search;
the CLI commands; the CLI.
"""
from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PACKAGES = ("pipeline", "device_agents", "models")
LAYERS: dict[str, int] = {
    "pipeline.errors": 0, "device_agents": 0,
    "pipeline.core": 1,
    "pipeline.keras3": 2,
    "models": 3, "pipeline.tflite": 3,
    "pipeline.training": 4, "pipeline.edgetpu": 4, "pipeline.devices": 4, "pipeline.results": 4,
    "pipeline.nightly": 5, "pipeline.testing": 5,
    "pipeline.sweep": 6, "pipeline.search": 6,
    "pipeline.commands": 7,
    "pipeline.cli": 8, "pipeline.__main__": 9, "pipeline": 9,
}


def project_modules() -> dict[str, Path]:
    modules = {}
    for package in PACKAGES:
        for path in (REPO / package).rglob("*.py"):
            parts = path.relative_to(REPO).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            modules[name] = path
    return modules


def imports_of(path: Path, modules: dict[str, Path]) -> set[str]:
    """Project modules `path` imports; `from package import submodule` counts as the submodule only."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            submodules = {f"{node.module}.{alias.name}" for alias in node.names} & modules.keys()
            found.update(submodules)
            if len(submodules) < len(node.names):
                found.add(node.module)
    return {name for name in found if name in modules}


def layer_of(module: str) -> tuple[str, int]:
    owner = max((prefix for prefix in LAYERS if module == prefix or module.startswith(prefix + ".")), key=len)
    return owner, LAYERS[owner]


def test_every_module_has_a_layer():
    for module in project_modules():
        layer_of(module)  # raises ValueError (max of nothing) for a module outside every layer


def test_imports_only_point_down():
    modules = project_modules()
    wrong = []
    for module, path in modules.items():
        owner, rank = layer_of(module)
        for target in imports_of(path, modules):
            target_owner, target_rank = layer_of(target)
            if target_owner != owner and target_rank >= rank:
                wrong.append(f"{module} -> {target}")
    assert wrong == []


def test_no_import_cycle():
    modules = project_modules()
    graph = {module: imports_of(path, modules) for module, path in modules.items()}
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done

    def visit(module: str, path: list[str]) -> list[str] | None:
        state[module] = 1
        for target in sorted(graph[module]):
            if state.get(target) == 1:
                return path + [module, target]
            if target not in state and (cycle := visit(target, path + [module])):
                return cycle
        state[module] = 2
        return None

    cycles = [cycle for module in sorted(graph) if module not in state and (cycle := visit(module, []))]
    assert cycles == []


def test_no_two_library_modules_share_a_file_name():
    """CLI command modules are named after their command; every other module name is unique."""
    seen: dict[str, list[str]] = {}
    for module in project_modules():
        leaf = module.rsplit(".", 1)[-1]
        if module.startswith("pipeline.commands.") or leaf in ("__main__", "cli", "errors") or "." not in module:
            continue
        seen.setdefault(leaf, []).append(module)
    assert {leaf: names for leaf, names in seen.items() if len(names) > 1} == {}


def test_cache_checks_and_config_errors_do_not_import_tensorflow():
    """`python -m pipeline run` decides what is cached, and refuses bad configs, before TensorFlow loads
    (about 6 s): the runner, the config and the external-input listers must stay free of it."""
    import subprocess
    import sys

    probe = "import sys, pipeline.commands.stages, pipeline.training.runner; print('tensorflow' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"
