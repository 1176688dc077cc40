"""The results schema as an ordered list of migrations, applied once each and recorded.

`schema_version` holds one row per applied migration. Opening a store applies the missing
ones in order inside one transaction (under a lock, so two processes opening a fresh
database at once do not both migrate). A database newer than this code is refused rather
than written with assumptions that no longer hold.
"""
from __future__ import annotations

from collections.abc import Sequence

from pipeline.errors import UserError
from pipeline.results.db import Database
from pipeline.results.timeutil import utc_now

# Column types that differ between the two backends; everything else is portable SQL.
TYPES = {
    "sqlite": {"id": "INTEGER PRIMARY KEY", "ref": "INTEGER", "big": "INTEGER", "float": "REAL", "blob": "BLOB"},
    "postgresql": {
        "id": "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY",
        "ref": "BIGINT",
        "big": "BIGINT",
        "float": "DOUBLE PRECISION",
        "blob": "BYTEA",
    },
}
PG_MIGRATION_LOCK_KEY = 7_260_431  # any constant; serialises concurrent migrations on PostgreSQL

MIGRATION_1 = (
    """CREATE TABLE runs (
        id {id},
        name TEXT NOT NULL,
        kind TEXT NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('running', 'complete', 'failed')),
        started_at TEXT NOT NULL,
        finished_at TEXT,
        git_commit TEXT,
        config_path TEXT,
        config_json TEXT,
        metrics_json TEXT,
        host TEXT,
        recorder_pid INTEGER
    )""",
    "CREATE INDEX runs_by_status_time ON runs (status, started_at)",
    "CREATE INDEX runs_by_name ON runs (name)",
    """CREATE TABLE devices (
        id {id},
        name TEXT NOT NULL UNIQUE,
        hostname TEXT,
        arch TEXT,
        first_seen TEXT NOT NULL,
        last_seen TEXT NOT NULL
    )""",
    """CREATE TABLE variants (
        id {id},
        run_id {ref} NOT NULL REFERENCES runs (id),
        name TEXT NOT NULL,
        sha256 TEXT,
        bytes {big},
        gzip_bytes {big},
        sparsity {float},
        float_accuracy {float},
        int8_accuracy {float},
        metrics_json TEXT NOT NULL,
        UNIQUE (run_id, name)
    )""",
    """CREATE TABLE benchmarks (
        id {id},
        run_id {ref} NOT NULL REFERENCES runs (id),
        run_started_at TEXT NOT NULL,
        device_id {ref} NOT NULL REFERENCES devices (id),
        variant TEXT NOT NULL,
        runtime TEXT NOT NULL,
        runtime_name TEXT NOT NULL,
        runtime_version TEXT,
        delegate TEXT,
        threads INTEGER,
        model_sha256 TEXT NOT NULL,
        model_bytes {big},
        warmup_runs INTEGER,
        invokes INTEGER,
        init_ms {float},
        first_inference_ms {float},
        latency_mean_ms {float},
        latency_median_ms {float} NOT NULL,
        latency_p90_ms {float},
        latency_p99_ms {float},
        latency_min_ms {float},
        latency_max_ms {float},
        latency_std_ms {float},
        throughput_ips {float},
        peak_rss_mb {float},
        accuracy {float},
        accuracy_count INTEGER,
        output_max_diff {float},
        energy_meter TEXT,
        energy_mj_per_inference {float},
        energy_mj_above_idle {float},
        energy_avg_w {float},
        energy_idle_w {float},
        throttled INTEGER,
        started_at TEXT,
        recorded_at TEXT NOT NULL,
        agent_version TEXT,
        schema_version INTEGER,
        latency_samples {blob} NOT NULL,
        energy_windows_mj {blob},
        document_json TEXT NOT NULL
    )""",
    # run_started_at is the run's (immutable) start, copied here so a series' history is one index range
    "CREATE INDEX benchmarks_by_series ON benchmarks (device_id, variant, runtime, run_started_at, run_id)",
    "CREATE INDEX benchmarks_by_run ON benchmarks (run_id)",
    """CREATE TABLE baseline_pin (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        run_id {ref} NOT NULL REFERENCES runs (id),
        pinned_at TEXT NOT NULL
    )""",
)

# The device name the board reported (evidence; the inventory name is the key) and why a result
# contradicts the host's reference (NULL when it agrees): such a result never enters a baseline.
MIGRATION_2 = (
    "ALTER TABLE benchmarks ADD COLUMN reported_device TEXT",
    "ALTER TABLE benchmarks ADD COLUMN mismatch TEXT",
)

# (version, what it does, statements); append new migrations, never edit applied ones.
MIGRATIONS: tuple[tuple[int, str, Sequence[str]], ...] = (
    (1, "runs, devices, model variants, benchmark results, pinned baseline", MIGRATION_1),
    (2, "benchmarks: device name the board reported, mismatch with the host's reference", MIGRATION_2),
)


def migrate(db: Database, migrations: Sequence[tuple[int, str, Sequence[str]]] = MIGRATIONS) -> int:
    """Apply the migrations the database lacks, in version order; return the schema version."""
    versions = [version for version, _, _ in migrations]
    if versions != sorted(set(versions)):
        raise ValueError("migrations must have unique, increasing versions")
    types = TYPES[db.dialect]
    with db.transaction() as tx:
        if db.dialect == "postgresql":
            tx.execute("SELECT pg_advisory_xact_lock(?)", (PG_MIGRATION_LOCK_KEY,))
        tx.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, "
                   "description TEXT NOT NULL, applied_at TEXT NOT NULL)")
        current = tx.execute("SELECT MAX(version) AS version FROM schema_version")[0]["version"] or 0
        if current > versions[-1]:
            raise UserError(f"results database {db.url} has schema version {current}, newer than this pipeline's "
                            f"{versions[-1]}: update the pipeline (git pull) before using it")
        for version, description, statements in migrations:
            if version <= current:
                continue
            for statement in statements:
                tx.execute(statement.format(**types))
            tx.execute("INSERT INTO schema_version (version, description, applied_at) VALUES (?, ?, ?)",
                       (version, description, utc_now()))
    return versions[-1]


def applied_versions(db: Database) -> list[int]:
    return [row["version"] for row in db.query("SELECT version FROM schema_version ORDER BY version")]
