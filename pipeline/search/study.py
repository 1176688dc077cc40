"""The Optuna study in the results store's database, and its queue of trials.

The study lives where the results store does (`--db`, else $RESULTS_DB, else results/results.db): in a
SQLite file Optuna's tables sit beside the store's (no name is shared); in PostgreSQL they get a schema
of their own, `optuna`. Any process on any machine that opens the same study is a worker of it.

The study holds exactly `trials` trials: the first process to start (and every re-run) enqueues empty
trials up to that count, not counting failed ones, and workers take trials from the queue until it is
empty. Optuna's RDB storage hands each queued trial to one worker only, so no trial runs twice, and the
sampler still draws every setting (a queued trial fixes none). A trial whose worker dies stops sending
heartbeats; once it has been silent for the grace period, the next worker to start a trial marks it
failed, and a re-run queues a replacement, leaving completed trials as they are.
"""
from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState

from pipeline.errors import UserError
from pipeline.results.db import POSTGRES_SCHEMES, redact_url, refuse_if_damaged, resolve_url
from pipeline.search import feasibility
from pipeline.search.settings import SearchConfig

SCHEMA = "optuna"  # PostgreSQL schema of the study tables
SQLITE_TIMEOUT_S = 60  # workers of one SQLite file wait this long for its write lock
OBJECTIVES = "objectives"  # study user attribute: the objective names, in order
QUEUED = "queued"  # user attribute of every trial the study queued (one created past the queue has none)
COUNTED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING, TrialState.WAITING)


def storage_url(results_db: str) -> tuple[str, dict]:
    """SQLAlchemy URL and engine options for the results database (a path, sqlite:/// or postgresql://)."""
    url = resolve_url(results_db or None)
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    if scheme in POSTGRES_SCHEMES:
        return ("postgresql+psycopg://" + url.split("://", 1)[1],
                {"connect_args": {"options": f"-c search_path={SCHEMA}"}, "pool_pre_ping": True})
    if scheme not in ("", "sqlite"):
        raise UserError(f"unsupported results database URL scheme {scheme!r}: use postgresql://... or a SQLite "
                        f"file path")
    path = Path(url.removeprefix("sqlite://") if scheme else url)
    refuse_if_damaged(path)  # before Optuna's engine creates its tables in it
    path.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{path.resolve()}", {"connect_args": {"timeout": SQLITE_TIMEOUT_S}}


def _create_schema(url: str) -> None:
    """`CREATE SCHEMA IF NOT EXISTS optuna` (two machines racing on it both end with the schema)."""
    import sqlalchemy

    engine = sqlalchemy.create_engine(url)
    try:
        with engine.begin() as connection:
            connection.execute(sqlalchemy.text(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}"))
    except sqlalchemy.exc.IntegrityError:
        pass  # another worker created it between the check and the insert
    finally:
        engine.dispose()


def _immediate_transactions(engine: Any) -> None:
    """SQLite: every transaction takes the write lock at BEGIN. Optuna hands a queued trial to a worker by
    reading its state and updating it in one transaction with SELECT ... FOR UPDATE, which SQLite ignores:
    two workers could both read it as waiting and both run it. BEGIN IMMEDIATE serializes them (the
    SQLAlchemy recipe for SQLite transactions; pooled connections are dropped so every one gets it)."""
    import sqlalchemy

    def connect(dbapi_connection: Any, record: Any) -> None:
        dbapi_connection.isolation_level = None  # the driver begins nothing itself

    def begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    sqlalchemy.event.listen(engine, "connect", connect)
    sqlalchemy.event.listen(engine, "begin", begin)
    engine.dispose()


def open_storage(config: SearchConfig) -> optuna.storages.RDBStorage:
    url, options = storage_url(config.study.results_db)
    if url.startswith("postgresql"):
        _create_schema(url)
    try:
        with warnings.catch_warnings():  # heartbeats are "experimental" in Optuna 5, and what resume needs
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            storage = optuna.storages.RDBStorage(url, engine_kwargs=options,
                                                 heartbeat_interval=config.study.heartbeat_s,
                                                 grace_period=config.study.grace_s)
        if url.startswith("sqlite"):
            _immediate_transactions(storage.engine)
        return storage
    except Exception as error:  # noqa: BLE001 - SQLAlchemy's many connection errors, said in one line
        shown = redact_url(resolve_url(config.study.results_db or None))
        raise UserError(f"cannot open the study database {shown}: {type(error).__name__}: "
                        f"{str(error).splitlines()[0]}; check --db / $RESULTS_DB") from None


def sampler(config: SearchConfig, worker: int) -> optuna.samplers.BaseSampler:
    """TPE or NSGA-II (both read the constraints each trial sets); each worker its own seed, so parallel
    workers draw differently."""
    seed = config.study.seed + worker
    if config.study.sampler == "nsga2":
        return optuna.samplers.NSGAIISampler(seed=seed)
    return optuna.samplers.TPESampler(seed=seed, n_startup_trials=config.study.startup_trials)


def open_study(config: SearchConfig, worker: int = 0) -> optuna.Study:
    """Create the study, or open it; a study of that name with other objectives is refused."""
    names = feasibility.objective_names(config)
    study = optuna.create_study(storage=open_storage(config), sampler=sampler(config, worker),
                                study_name=config.study.name, directions=feasibility.directions(config),
                                load_if_exists=True)
    recorded = study.user_attrs.get(OBJECTIVES)
    if recorded is None:
        study.set_user_attr(OBJECTIVES, names)
    elif recorded != names:  # other devices or objectives: its trials measured something else
        raise UserError(f"{config.source}: study {config.study.name!r} already exists with the objectives "
                        f"{', '.join(recorded)}, this search asks for {', '.join(names)}; give it another "
                        f"study name (study.name or --study)")
    return study


def top_up(study: optuna.Study, trials: int) -> int:
    """Mark trials of dead workers failed, then queue empty trials up to `trials` not failed; return how many."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)
    missing = trials - len(study.get_trials(deepcopy=False, states=COUNTED))
    for _ in range(max(missing, 0)):
        study.enqueue_trial({}, user_attrs={QUEUED: True})
    return max(missing, 0)


def queued(study: optuna.Study) -> int:
    return len(study.get_trials(deepcopy=False, states=(TrialState.WAITING,)))
