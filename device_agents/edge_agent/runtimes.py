"""Pick a TFLite runtime and build an interpreter with the requested delegate.

Three runtimes expose the same Python interpreter API; the agent uses whichever the device
has, in the order a Raspberry Pi user is most likely to have installed them.
"""
from __future__ import annotations

import ctypes
import importlib
import platform
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy

from .errors import AgentError, one_line

# runtime name -> (module with Interpreter/load_delegate/OpResolverType, module with __version__)
RUNTIME_MODULES = {
    "ai_edge_litert": ("ai_edge_litert.interpreter", "ai_edge_litert"),
    "tflite_runtime": ("tflite_runtime.interpreter", "tflite_runtime"),
    "tensorflow": ("tensorflow.lite.python.interpreter", "tensorflow"),
}
AUTO_ORDER = ("ai_edge_litert", "tflite_runtime", "tensorflow")
RUNTIME_CHOICES = ("auto",) + AUTO_ORDER
CPU_DELEGATES = ("xnnpack", "none")
EDGETPU_LIBRARIES = {"Linux": "libedgetpu.so.1", "Darwin": "libedgetpu.1.dylib", "Windows": "edgetpu.dll"}
EDGETPU_HELP = (
    "install libedgetpu1-std from Coral's apt repo, plug the USB Accelerator into a USB 3 port "
    "(lsusb shows 1a6e:089a or 18d1:9302) and give this user access (plugdev group, Coral's udev rules)"
)


@dataclass
class Runtime:
    """One importable TFLite runtime: its classes and the version to report."""

    name: str
    version: str
    module: Any

    def describe(self) -> dict[str, str]:
        return {"name": self.name, "version": self.version}


@dataclass
class LoadedModel:
    """An interpreter with allocated tensors and what loading it cost."""

    interpreter: Any
    init_ms: float
    input_detail: dict[str, Any]
    output_detail: dict[str, Any]


def import_runtime(name: str) -> Runtime:
    """Import one runtime by name; any failure (missing, numpy ABI mismatch) is an AgentError."""
    module_name, version_module_name = RUNTIME_MODULES[name]
    try:
        module = importlib.import_module(module_name)
        version = getattr(importlib.import_module(version_module_name), "__version__", "unknown")
    except Exception as exc:  # ImportError, or AttributeError/RuntimeError from a numpy ABI mismatch
        raise AgentError(f"{name}: {one_line(exc)}") from exc
    return Runtime(name=name, version=str(version), module=module)


def select_runtime(requested: str) -> Runtime:
    """`auto` tries each runtime in AUTO_ORDER and reports every failure if none imports."""
    if requested != "auto":
        try:
            return import_runtime(requested)
        except AgentError as exc:
            raise AgentError(f"--runtime {exc}: install it on the device or pick another --runtime") from exc
    failures: list[str] = []
    for name in AUTO_ORDER:
        try:
            return import_runtime(name)
        except AgentError as exc:
            failures.append(str(exc))
    raise AgentError(
        "no TFLite runtime could be imported (" + "; ".join(failures) + "): "
        "install one on the device, e.g. `pip install ai-edge-litert` or `pip install tflite-runtime`"
    )


def _load_delegate(runtime: Runtime, library: str, options: dict[str, str], help_text: str) -> Any:
    """Load a delegate library; dlopen it first so a missing library fails before the runtime's
    Delegate object exists (its destructor prints a spurious traceback when construction failed)."""
    try:
        ctypes.CDLL(library)
        return runtime.module.load_delegate(library, options or None)
    except (ValueError, RuntimeError, OSError) as exc:
        raise AgentError(f"cannot load delegate {library} ({one_line(exc)}): {help_text}") from exc


def _interpreter_kwargs(runtime: Runtime, delegate: str, options: dict[str, str]) -> dict[str, Any]:
    """Constructor arguments selecting the delegate: xnnpack is the runtime's default CPU path."""
    if delegate == "xnnpack":
        return {}
    if delegate == "none":
        resolver = runtime.module.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
        return {"experimental_op_resolver_type": resolver}
    if delegate == "edgetpu":
        library = EDGETPU_LIBRARIES.get(platform.system(), EDGETPU_LIBRARIES["Linux"])
        return {"experimental_delegates": [_load_delegate(runtime, library, options, EDGETPU_HELP)]}
    if not Path(delegate).is_file():
        raise AgentError(
            f"--delegate {delegate}: no such file; use xnnpack, none, edgetpu or the path of a delegate .so"
        )
    help_text = "check the path and that it was built for this runtime and architecture"
    return {"experimental_delegates": [_load_delegate(runtime, delegate, options, help_text)]}


def _single(details: list[dict[str, Any]], kind: str, model_path: Path) -> dict[str, Any]:
    if len(details) != 1:
        raise AgentError(
            f"model {model_path} has {len(details)} {kind} tensors: the agent benchmarks "
            f"single-input, single-output classifiers"
        )
    return details[0]


def load_model(
    runtime: Runtime, model_path: Path, delegate: str, delegate_options: dict[str, str], threads: int | None
) -> LoadedModel:
    """Build the interpreter and allocate tensors; init_ms covers delegate loading too."""
    started = time.perf_counter_ns()
    kwargs = _interpreter_kwargs(runtime, delegate, delegate_options)
    try:
        interpreter = runtime.module.Interpreter(model_path=str(model_path), num_threads=threads, **kwargs)
        interpreter.allocate_tensors()
    except (ValueError, RuntimeError) as exc:
        hint = "; is it compiled for the Edge TPU and the accelerator free?" if delegate == "edgetpu" else ""
        raise AgentError(
            f"cannot load model {model_path} with {runtime.name} ({one_line(exc)}): "
            f"check it is a valid .tflite file{hint}"
        ) from exc
    except (SystemError, ImportError) as exc:  # a runtime built against numpy 1.x imports, then fails here
        raise AgentError(
            f"{runtime.name} {runtime.version} cannot run with numpy {numpy.__version__} ({one_line(exc)}): "
            "it was built for another numpy major version; install numpy<2 (tflite-runtime <= 2.14) or ai-edge-litert"
        ) from exc
    init_ms = (time.perf_counter_ns() - started) / 1e6
    return LoadedModel(
        interpreter=interpreter,
        init_ms=init_ms,
        input_detail=_single(interpreter.get_input_details(), "input", model_path),
        output_detail=_single(interpreter.get_output_details(), "output", model_path),
    )
