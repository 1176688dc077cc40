"""Training stages: each a `run(ctx) -> StageOutput` from earlier artifacts to its own
(see pipeline/training/runner.py)."""
