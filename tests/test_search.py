"""The model search without training: its config refusals (one line each, through the real command), the space
draws, the median rule, constraints and the best trial on real Optuna trials, the found config's round trip,
and `make search` passing its values as data."""
from __future__ import annotations

import dataclasses
import json
import multiprocessing
import sys
from pathlib import Path

import optuna
import pytest
from optuna.distributions import CategoricalDistribution
from optuna.trial import TrialState, create_trial

from pipeline.devices.inventory import DeviceProfile
from pipeline.errors import UserError
from pipeline.results import ResultsStore
from pipeline.search import feasibility
from pipeline.search.early_stopping import should_prune
from pipeline.search.found import config_sections, write_found
from pipeline.search.objective import check_on_devices, time_against_baseline
from pipeline.search.settings import (
    ConstraintsConfig,
    PrunerConfig,
    SearchConfig,
    load_search_config,
    with_overrides,
)
from pipeline.search.space import draw, trial_config
from pipeline.search.study import QUEUED, open_study, sampler, storage_url, top_up
from pipeline.training.config import load_config
from tests.agent_fixtures import agent_models  # noqa: F401
from tests.conftest import REPO, run_cli
from tests.sshd_fixtures import QUICK_BENCH
from tests.test_devices_consistency import altered_weights
from tests.test_makefile_variables import _make

CONFIG = REPO / "configs" / "search.toml"


def _search_file(tmp_path: Path, space: str = "", study: str = "") -> Path:
    path = tmp_path / "search.toml"
    path.write_text(f'[study]\nbase = "{REPO / "configs" / "search" / "base.toml"}"\n{study}\n[space]\n{space}\n')
    return path


def test_the_shipped_config_loads_with_its_documented_defaults() -> None:
    config = load_search_config(CONFIG)
    assert config.study.trials == 24 and config.study.devices == ["local"]
    assert config.space.quantize == ["ptq", "qat", "pqat", "pcqat"]
    assert feasibility.objective_names(config) == ["accuracy", "speedup@local"]


@pytest.mark.parametrize("space, problem", [
    ("quantize = []", "space.quantize is empty"),
    ('quantize = ["pqat"]\nsparsity = [0.0]', "never prunes"),
    ('quantize = ["pcqat"]\nclusters = [0]', "never clusters"),
    ('quantize = ["pqat"]\nclusters = [8]', "has no 0"),
    ("temperature = [4.0, 1.0]", "low <= high"),
    ("sparsity = [0.5, 1.0]", "outside [0, 1)"),
    ("clusters = [1]", "integer >= 2"),
    ('student = ["vgg"]', "choose one of"),
])
def test_an_empty_or_contradictory_space_is_refused_in_one_line(tmp_path: Path, space: str, problem: str) -> None:
    result = run_cli("search", "--config", str(_search_file(tmp_path, space)), "--db", str(tmp_path / "db"))
    assert result.returncode == 1 and problem in result.stderr
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("error: ")
    assert not (tmp_path / "db").exists()  # refused before any study was created


def test_command_line_limits_replace_the_files() -> None:
    config = with_overrides(load_search_config(CONFIG), max_latency_ms=2.0, trials=3, devices=["rpi5"])
    assert (config.constraints.max_latency_ms, config.study.trials, config.study.devices) == (2.0, 3, ["rpi5"])
    with pytest.raises(UserError, match="trials = 0 must be at least 1"):
        with_overrides(config, trials=0)


def test_every_draw_is_a_recipe_the_pipeline_accepts() -> None:
    """Random draws over the whole default space: each becomes a valid pipeline config, named by its trial."""
    config = load_search_config(CONFIG)
    base = load_config(config.study.base_path())
    study = optuna.create_study(directions=["maximize", "maximize"], sampler=optuna.samplers.RandomSampler(seed=3))
    methods = set()
    for number in range(60):
        trial = study.ask()
        pipeline = trial_config(base, draw(trial, config.space), f"search-t{number:03d}")
        methods.add(pipeline.quantize.method)
        assert pipeline.run.name == f"search-t{number:03d}" and pipeline.run.build_dir == base.run.build_dir
        assert pipeline.finetune == base.finetune  # the teacher is the base's: shared by every trial
        if pipeline.quantize.method in ("pqat", "pcqat"):
            assert pipeline.prune.target_sparsity > 0
        study.tell(trial, [0.0, 0.0])
    assert methods == {"ptq", "qat", "pqat", "pcqat"}


def test_the_median_rule() -> None:
    rule = PrunerConfig(kind="median", startup_trials=2, min_step=4)
    finished = [{"6": 0.8}, {"6": 0.6}, {"5": 0.1}]
    assert should_prune(0.69, 6, finished, rule)  # median of 0.8 and 0.6
    assert not should_prune(0.7, 6, finished, rule)
    assert not should_prune(0.1, 5, finished, rule)  # one finished trial at step 5: fewer than startup_trials
    assert not should_prune(0.0, 3, [{"3": 0.9}] * 3, rule)  # before min_step
    assert not should_prune(0.0, 6, finished, dataclasses.replace(rule, kind="none"))


def _trial(number: int, accuracy: float, speedup: float, constraints: dict[str, float],
           state: TrialState = TrialState.COMPLETE) -> optuna.trial.FrozenTrial:
    """A real Optuna trial with its constraints where `Trial.set_constraint` keeps them."""
    attrs = {"val_accuracy": accuracy, "speedup": {"local": speedup}, "latency_ms": {"local": 1 / speedup},
             "bytes": 1000}
    trial = create_trial(state=state, values=[accuracy, speedup] if state == TrialState.COMPLETE else None,
                         params={"quantize": "ptq"}, distributions={"quantize": CategoricalDistribution(["ptq"])},
                         user_attrs=attrs, system_attrs={f"constraints:{k}": v for k, v in constraints.items()})
    trial.number = number
    return trial


def test_a_trial_over_a_constraint_is_infeasible_and_never_best() -> None:
    config = dataclasses.replace(load_search_config(CONFIG),
                                 constraints=ConstraintsConfig(max_latency_ratio=0.5, min_accuracy=0.8))
    fast = {"val_accuracy": 0.85, "speedup": {"local": 2.5}, "latency_ms": {"local": 0.4}, "bytes": 10}
    slow = {**fast, "val_accuracy": 0.95, "speedup": {"local": 1.5}}
    assert all(v <= 0 for v in feasibility.constraint_values(config, fast).values())
    assert feasibility.constraint_values(config, slow)["latency_ratio@local"] > 0  # 1 / 1.5 is above 0.5
    trials = [_trial(0, 0.95, 1.5, feasibility.constraint_values(config, slow)),  # most accurate, too slow
              _trial(1, 0.85, 2.5, feasibility.constraint_values(config, fast)),
              _trial(2, 0.99, 3.0, {}, TrialState.PRUNED)]
    assert trials[0].constraints["latency_ratio@local"] > 0  # what the samplers read
    assert [feasibility.feasible(t) for t in trials] == [False, True, False]
    assert feasibility.best_trial(trials, ["local"]).number == 1
    assert feasibility.best_trial(trials[:1], ["local"]) is None


def test_a_found_config_rebuilds_the_same_pipeline_config(tmp_path: Path) -> None:
    config = load_search_config(CONFIG)
    base = load_config(config.study.base_path())
    trial = optuna.create_study(directions=["maximize", "maximize"]).ask()
    pipeline = trial_config(base, draw(trial, config.space), "search-t007")
    path = write_found(config_sections(pipeline), tmp_path / "found", "a comment\nwith a line break")
    assert path.name == "search-t007.toml" and path.read_text().count("#") == 1
    assert dataclasses.replace(load_config(path), source="") == dataclasses.replace(pipeline, source="")


def test_a_found_config_keeps_an_augmentation_table(tmp_path: Path) -> None:
    base = load_config(load_search_config(CONFIG).study.base_path())
    knobs = {"flip": "none", "rotation": 5.0, "crop_area": [0.9, 1.0]}
    tabled = dataclasses.replace(base, run=dataclasses.replace(base.run, name="search-t008"),
                                 finetune=dataclasses.replace(base.finetune, augment=knobs))
    path = write_found(config_sections(tabled), tmp_path / "found", "augmentation as a table")
    assert load_config(path).finetune.augment == knobs


def test_the_study_lives_in_the_results_database(tmp_path: Path) -> None:
    assert storage_url(str(tmp_path / "r.db"))[0] == f"sqlite:///{tmp_path / 'r.db'}"
    url, options = storage_url("postgresql://u@host:5/db")
    assert url == "postgresql+psycopg://u@host:5/db" and "search_path=optuna" in options["connect_args"]["options"]


def test_make_search_passes_every_value_as_one_argument(tmp_path: Path) -> None:
    marker = tmp_path / "injected"
    hostile = f"2'; touch {marker}; echo '$(shell touch {marker})"
    argv = _make(tmp_path, "search", {"DEVICE": hostile, "LATENCY_MS": hostile, "MAX_BYTES": "65536", "TRIALS": "5"})
    assert argv == ["-m", "pipeline", "search", "--config", "configs/search.toml", "--device", hostile,
                    "--latency-ms", hostile, "--max-bytes", "65536", "--trials", "5"]
    assert _make(tmp_path, "search", {})[-2:] == ["--device", "local"] and not marker.exists()


def test_a_limit_that_is_not_a_number_is_refused_in_one_line(tmp_path: Path) -> None:
    result = run_cli("search", "--config", str(CONFIG), "--latency-ms", "nan", "--db", str(tmp_path / "db"))
    assert result.returncode == 1 and "constraints.max_latency_ms = nan must be a finite number" in result.stderr
    assert result.stderr.count("\n") == 1 and not (tmp_path / "db").exists()


def test_the_study_and_the_results_store_share_one_sqlite_file(tmp_path: Path) -> None:
    database = tmp_path / "results.db"
    with ResultsStore.open(str(database)) as store:
        run_id = store.begin_run("before")
    config = with_overrides(load_search_config(CONFIG), results_db=str(database))
    study = open_study(config)
    study.enqueue_trial({}, user_attrs={QUEUED: True})
    with ResultsStore.open(str(database)) as store:
        assert store.run(run_id)["name"] == "before" and store.begin_run("after") > run_id
    assert len(open_study(config).get_trials()) == 1


@pytest.mark.parametrize("kind", ["tpe", "nsga2"])
def test_both_samplers_draw_the_conditional_space_under_constraints(kind: str) -> None:
    """Past their random start-up, with every third trial infeasible: the draws stay valid recipes."""
    config = load_search_config(CONFIG)
    config = dataclasses.replace(config, study=dataclasses.replace(config.study, sampler=kind, startup_trials=3))
    base = load_config(config.study.base_path())
    study = optuna.create_study(directions=feasibility.directions(config), sampler=sampler(config, 0))
    for number in range(16):
        trial = study.ask()
        pipeline = trial_config(base, draw(trial, config.space), f"t{number}")
        trial.set_constraint("bytes", 1.0 if number % 3 == 0 else -1.0)
        study.tell(trial, [pipeline.prune.target_sparsity, 1 + pipeline.slim.channel_ratio])
    assert len(study.best_trials) >= 1 and all(t.constraints["bytes"] <= 0 for t in study.best_trials)


def _take_trials(config: SearchConfig, worker: int, count: int, out: Path) -> None:
    """A worker's side of the queue: ask (takes a queued trial), tell, `count` times; the numbers it got."""
    study = open_study(config, worker)
    numbers = []
    for _ in range(count):
        trial = study.ask()
        numbers.append(trial.number)
        study.tell(trial, [0.5, 1.0])
    out.write_text(json.dumps(numbers))


def test_workers_of_one_sqlite_study_never_take_the_same_queued_trial(tmp_path: Path) -> None:
    """SQLite ignores SELECT ... FOR UPDATE; without BEGIN IMMEDIATE two workers took trial 0 both."""
    config = with_overrides(load_search_config(CONFIG), results_db=str(tmp_path / "results.db"))
    assert top_up(open_study(config), 16) == 16
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_take_trials, args=(config, index, 4, tmp_path / f"{index}.json"))
               for index in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=300)
    taken = [number for index in range(4) for number in json.loads((tmp_path / f"{index}.json").read_text())]
    assert sorted(taken) == list(range(16))


def test_a_study_is_not_reopened_with_other_objectives(tmp_path: Path) -> None:
    config = with_overrides(load_search_config(CONFIG), results_db=str(tmp_path / "results.db"))
    open_study(config)
    with pytest.raises(UserError, match="already exists with the objectives accuracy, speedup@local"):
        open_study(with_overrides(config, devices=["rpi5"]))
    assert open_study(config).user_attrs["objectives"] == ["accuracy", "speedup@local"]


def test_a_board_that_contradicts_the_host_fails_the_trial_instead_of_timing_it(agent_models, tmp_path):
    """The candidate's weights differ from what the host built (its reference outputs): no speed-up is taken."""
    int8 = agent_models.int8
    profile = DeviceProfile(name="local", transport="local", workdir=str(tmp_path / "device"),
                            python=sys.executable, **QUICK_BENCH)
    altered = (altered_weights(int8.model, tmp_path / "altered.tflite"), int8.samples)
    with pytest.raises(UserError, match="checking on local failed: result contradicts the host"):
        check_on_devices([profile], "search-mismatch", altered)
    check_on_devices([profile], "search-honest", (int8.model, int8.samples))
    assert time_against_baseline([profile], "search-honest", (int8.model, int8.samples),
                                 (int8.model, int8.samples), rounds=3)["local"].rounds == 3
