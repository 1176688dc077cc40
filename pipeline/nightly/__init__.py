"""The nightly job and its regression reports (docs/nightly.md).

`config` reads configs/nightly.toml, `job` orchestrates a night (train, record, benchmark, check),
`report` reads one run back from the results store into the model every publisher renders,
`publish` writes the report folder atomically with one module per format (`html_report`,
`markdown_report`, `junit_report`, `json_report`); `plots` draws, `table` and `text` hold what
several formats share. The regression rules (thresholds and tests against a baseline) stay in
pipeline/results/regression.py.
"""
