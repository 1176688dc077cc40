"""Results store and regression detection: record runs and benchmark results, query histories, flag changes.

See docs/results.md for the API; the names most callers need are re-exported here.
"""
from pipeline.results.check import Finding, check_run
from pipeline.results.manifest import begin_pipeline_run, variants_from_manifest
from pipeline.results.queries import Series
from pipeline.results.regression import (
    DEFAULT_RULES,
    Comparison,
    Observation,
    Rule,
    compare,
    rules_with_overrides,
    select_baseline,
)
from pipeline.results.store import ResultsStore, VariantRecord

__all__ = [
    "DEFAULT_RULES", "Comparison", "Finding", "Observation", "ResultsStore", "Rule", "Series",
    "VariantRecord", "begin_pipeline_run", "check_run", "compare", "rules_with_overrides", "select_baseline",
    "variants_from_manifest",
]
