"""The mark every output puts on a result that contradicts the host's own reference (the bench table,
`results`, summary.md, report.html, the sweep's and the search's tables): one word, the same everywhere,
so a reader and a grep find it."""
from __future__ import annotations

MISMATCH = "MISMATCH"
