"""Per-method evidence of a sweep, read from the stage metrics each run's manifest recorded (never recomputed):
what distillation gained over the same student trained alone, what channel pruning and factorization did to
MACs and parameters layer by layer, what clustering kept."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pipeline.core.variants import Recipe

TEACHER_INT8 = Recipe().name  # the run's fine-tuned model, quantized after training: its teacher when it distils

# stage -> the metrics of its record the report shows (everything else stays in the manifest)
STAGE_FIELDS: dict[str, tuple[str, ...]] = {
    "distill": ("student", "student_width", "teacher_params", "student_params", "teacher_macs", "student_macs",
                "teacher_accuracy", "distilled_accuracy", "plain_student_accuracy", "distillation_gain",
                "labelled_images", "soft_label_only_images"),
    "slim": ("macs_before", "macs_after", "params_before", "params_after", "val_accuracy_before",
             "val_accuracy_after", "channel_pruned_layers", "factorized_layers"),
    "cluster": ("clusters", "sparsity_preserved", "sparsity", "distinct_kernel_values", "clustered_val_accuracy"),
}


def stage_evidence(manifest: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """stage -> its recorded metrics, for each compression stage that did its work in this run."""
    evidence = {}
    for stage, fields in STAGE_FIELDS.items():
        record = manifest.get("stages", {}).get(stage) or {}
        metrics = record.get("metrics") or {}
        if record.get("skipped") or not metrics:
            continue
        evidence[stage] = {key: metrics[key] for key in fields if key in metrics}
    if "cluster" in evidence:  # which kernels were clustered is config, not a metric (empty: every kernel)
        layers = ((manifest["stages"]["cluster"].get("config") or {}).get("cluster") or {}).get("layers") or []
        evidence["cluster"]["clustered_layers"] = list(layers)
    teacher_int8 = ((manifest.get("metrics") or {}).get("variants") or {}).get(TEACHER_INT8) or {}
    if "distill" in evidence and teacher_int8.get("accuracy") is not None:  # the bar a student is held to
        evidence["distill"]["teacher_int8_accuracy"] = teacher_int8["accuracy"]
    return evidence


def _percent(value: Any) -> str:
    return "-" if value is None else f"{value * 100:.2f} %"


def _count(value: Any) -> str:
    return "-" if value is None else f"{value:,}"


def _change(before: Any, after: Any) -> str:
    if not before or after is None:
        return f"{_count(before)} -> {_count(after)}"
    return f"{_count(before)} -> {_count(after)} ({(after / before - 1) * 100:+.1f} %)"


def _distill_lines(m: Mapping[str, Any]) -> list[str]:
    lines = [f"student {m.get('student')} at width {m.get('student_width')}: parameters "
             f"{_change(m.get('teacher_params'), m.get('student_params'))}, MACs "
             f"{_change(m.get('teacher_macs'), m.get('student_macs'))} (teacher -> student)",
             f"float top-1 on the test set: teacher {_percent(m.get('teacher_accuracy'))}, distilled student "
             f"{_percent(m.get('distilled_accuracy'))}"]
    if m.get("teacher_int8_accuracy") is not None:
        lines.append(f"teacher's full-int8 top-1 (this run's {TEACHER_INT8}): {_percent(m['teacher_int8_accuracy'])}")
    if m.get("plain_student_accuracy") is not None:
        lines.append(f"same student trained on the labels alone: {_percent(m['plain_student_accuracy'])}; "
                     f"distillation gain {m['distillation_gain'] * 100:+.2f} points")
    if m.get("labelled_images") is not None:
        lines.append(f"distilled on {_count(m['labelled_images'])} labelled and "
                     f"{_count(m.get('soft_label_only_images'))} soft-label-only images")
    return lines


def _slim_lines(m: Mapping[str, Any]) -> list[str]:
    lines = [f"model MACs {_change(m.get('macs_before'), m.get('macs_after'))}, parameters "
             f"{_change(m.get('params_before'), m.get('params_after'))}; validation top-1 "
             f"{_percent(m.get('val_accuracy_before'))} -> {_percent(m.get('val_accuracy_after'))} after fine-tuning"]
    pruned = m.get("channel_pruned_layers") or []
    if pruned:
        lines.append("channel-pruned filters: " + ", ".join(
            f"{r['layer']} {r['filters_before']} -> {r['filters_after']}" for r in pruned))
    factorized = [r for r in m.get("factorized_layers") or [] if r.get("factorized")]
    if factorized:
        before = sum(r["macs_before"] for r in factorized)
        after = sum(r["macs_after"] for r in factorized)
        lines.append(f"MACs in the {len(factorized)} factorized layers {_change(before, after)}: " + ", ".join(
            f"{r['layer']} rank {r['rank']}/{r['full_rank']} ({r['energy_kept'] * 100:.0f} % energy)"
            for r in factorized))
    kept = [r["layer"] for r in m.get("factorized_layers") or [] if not r.get("factorized")]
    if kept:
        lines.append(f"kept unfactorized (the rank would not save MACs): {', '.join(kept)}")
    return lines


def _cluster_lines(m: Mapping[str, Any]) -> list[str]:
    values = m.get("distinct_kernel_values")
    layers = m.get("clustered_layers") or []
    if isinstance(values, dict) and layers:
        values = {name: count for name, count in values.items() if name in layers}
    most = max(values.values()) if isinstance(values, dict) and values else values
    which = f"in each of {len(layers)} kernels ({', '.join(layers)}; the others unclustered)" if layers \
        else "per kernel"
    return [f"{m.get('clusters')} clusters {which}, at most {most} distinct values in a clustered kernel; sparsity "
            f"{_percent(m.get('sparsity'))}{' preserved' if m.get('sparsity_preserved') else ''}; validation top-1 "
            f"{_percent(m.get('clustered_val_accuracy'))}"]


STAGE_TITLES = {"distill": "distillation", "slim": "channel pruning / low-rank factorization",
                "cluster": "weight clustering"}
_LINES = {"distill": _distill_lines, "slim": _slim_lines, "cluster": _cluster_lines}


def evidence_lines(stage: str, metrics: Mapping[str, Any]) -> list[str]:
    """A stage's evidence as sentences, the same in every report format."""
    return _LINES[stage](metrics)
