"""`ivybt.optimize` and `ivybt optimize`: an Optuna search whose trials run in batches.

Each round asks the sampler for a batch of trials, evaluates the whole batch in one call of
the grid kernel, and tells the results back: Optuna only samples, IvyBT only evaluates.

- Every metric goes into each trial's user attributes; the study's user attributes record the
  strategy, space, data hash, execution settings and the sampler's full settings (Optuna 5
  changed TPE's defaults, so nothing is left to library defaults).
- A study resumes by name: rerunning adds trials up to `trials`. Batches run in an in-memory
  copy of the study and are stored whole when finished (`study_storage.working_copy`), so a
  killed run never leaves a trial RUNNING; trials another client left RUNNING (Optuna's
  heartbeat does not cover ask/tell or journal files) are failed, marked
  `ivybt_interrupted`, and redone.
- Inadmissible combinations (a constraint fails) are told PRUNED; combinations with fewer than
  `min_trades` trades or an undefined objective are told FAIL. Both count towards `trials`.
- Reproducibility: the same seed, sampler, batch size and data give the same trials. Within a
  batch the sampler sees no results (TPE's constant liar covers the pending ones), so a
  different batch size gives a different, equally valid, sequence.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pandas as pd
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)
from optuna.trial import TrialState

from ivybt import __version__
from ivybt.bars.timeline import BAR_PARAMS, SignalBars, signal_bars, split_specs
from ivybt.config import RunConfig, StudyConfig
from ivybt.errors import ConfigError, StudyInterrupted
from ivybt.kernels.metrics import METRIC_NAMES
from ivybt.run_inputs import RunInputs, prepare_inputs
from ivybt.strategies import Strategy, get_strategy
from ivybt.studies.grid import Progress, evaluate_space
from ivybt.studies.space import ParamSpace, parse_spec
from ivybt.studies.study_storage import (
    counted,
    open_storage,
    recover_interrupted,
    storage_url_of,
    store_finished,
    working_copy,
)

MINIMIZED = frozenset({"volatility"})


@dataclass
class SearchResult:
    """A finished search: the study and one row per trial of this study."""

    config: RunConfig
    study: optuna.Study
    storage_url: str
    inputs: RunInputs

    @property
    def objectives(self) -> tuple[str, ...]:
        return objectives_of(_study_config(self.config))

    def trials(self) -> pd.DataFrame:
        """number, state, param_* columns, every metric (NaN where not evaluated)."""
        rows = []
        for trial in self.study.get_trials(deepcopy=False):
            row: dict[str, Any] = {"number": trial.number, "state": trial.state.name}
            row.update({f"param_{name}": value for name, value in trial.params.items()})
            row.update({name: trial.user_attrs.get(name, np.nan) for name in METRIC_NAMES})
            rows.append(row)
        return pd.DataFrame(rows)

    def best_trials(self) -> list[optuna.trial.FrozenTrial]:
        """The best trial (one objective) or the Pareto front (several)."""
        return list(self.study.best_trials)

    def evidence(self) -> dict[str, Any] | None:
        """PBO and DSR over the trials evaluated (`ivybt.studies.evidence.search_evidence`)."""
        from ivybt.studies.evidence import search_evidence

        return search_evidence(self)


def objectives_of(study: StudyConfig) -> tuple[str, ...]:
    return study.objectives or (study.objective,)


def run_search(
    config: RunConfig,
    *,
    data: pd.DataFrame | None = None,
    cache_dir: str | Path | None = None,
    results: str | Path | None = None,
    progress: Progress | None = None,
) -> SearchResult:
    """Run (or resume) the search `config` describes."""
    study_config = _study_config(config)
    strategy = get_strategy(config.strategy.name)
    objectives = objectives_of(study_config)
    for name in objectives:
        if name not in METRIC_NAMES:
            raise ConfigError(f"unknown objective {name!r}; metrics: {', '.join(METRIC_NAMES)}")
    split_specs(config, config.strategy.space)  # -p box=... needs --bars renko
    searched, fixed = search_space(strategy, config.strategy.space)
    inputs = prepare_inputs(config, data=data, cache_dir=cache_dir)
    signals = bricks_for(config, inputs, start=inputs.window.start or 0)
    storage_url = storage_url_of(study_config.storage, results)
    sampler, sampler_settings = make_sampler(study_config, searched)
    directions = ["minimize" if name in MINIMIZED else "maximize" for name in objectives]
    study = optuna.create_study(
        storage=open_storage(storage_url),
        study_name=study_config.study_name or f"{strategy.name}-{inputs.record['symbol']}",
        directions=directions,
        sampler=sampler,
        load_if_exists=True,
    )
    _check_same_study(study, config, inputs, objectives)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study.set_metric_names(list(objectives))
    _record_study(study, config, inputs, sampler_settings)
    redo = recover_interrupted(study)
    working = working_copy(study, sampler, directions, redo)
    target = study_config.trials or 100
    if study_config.sampler == "grid":  # the grid sampler stops the study when exhausted
        target = min(target, math.prod(len(v) for v in sampler_settings["search_space"].values()))
    done = counted(study)
    try:
        while done < target:
            batch = min(study_config.batch_size, target - done)
            _run_batch(working, strategy, searched, fixed, inputs, config, batch, signals)
            store_finished(working, study)
            done += batch
            if progress is not None:
                progress(done, target)
    except KeyboardInterrupt as err:
        raise StudyInterrupted(
            counted(study), target, "trials",
            f"they are kept in study {study.study_name!r}; rerun the same command to resume",
        ) from err  # fmt: skip
    return SearchResult(config, study, storage_url, inputs)


def search_space(
    strategy: type[Strategy], specs: Mapping[str, str]
) -> tuple[dict[str, BaseDistribution], dict[str, float | int]]:
    """Optuna distributions of the searched parameters, and the fixed values of the rest.

    `a:b[:step]` becomes an int or float range with that step, `v1,v2,...` a categorical
    choice; a single value, or a parameter without a spec, stays fixed.
    """
    names = strategy.param_names()
    for name in specs:
        if name not in names and name not in BAR_PARAMS:
            strategy.resolve_params({name: 0})  # the "unknown parameter" message
    searched: dict[str, BaseDistribution] = {}
    fixed: dict[str, float | int] = {}
    bar_params = [BAR_PARAMS[name] for name in specs if name in BAR_PARAMS]
    for param in [*strategy.params, *bar_params]:
        spec = specs.get(param.name, param.default)
        values = parse_spec(param, spec, strategy.name)
        if len(values) == 1:
            fixed[param.name] = values[0]
        elif isinstance(spec, str) and ":" in spec:
            step = values[1] - values[0]
            if param.kind is int:
                searched[param.name] = IntDistribution(
                    int(values[0]), int(values[-1]), step=int(step)
                )
            else:
                searched[param.name] = FloatDistribution(values[0], values[-1], step=step)
        else:
            searched[param.name] = CategoricalDistribution(values)
    if not searched:
        raise ConfigError(
            f"nothing to search: give at least one parameter of {strategy.name} a range or a "
            "list, e.g. -p fast=2:50"
        )
    return searched, fixed


def make_sampler(
    study: StudyConfig, searched: Mapping[str, BaseDistribution]
) -> tuple[optuna.samplers.BaseSampler, dict[str, Any]]:
    """The sampler with every setting explicit, and those settings for the study record."""
    seed = study.seed
    if study.sampler == "tpe":
        settings = {"n_startup_trials": 10, "n_ei_candidates": 24, "multivariate": True,
                    "constant_liar": True, "group": False}  # fmt: skip
        sampler: optuna.samplers.BaseSampler = optuna.samplers.TPESampler(seed=seed, **settings)
    elif study.sampler == "random":
        settings = {}
        sampler = optuna.samplers.RandomSampler(seed=seed)
    elif study.sampler == "cmaes":
        settings = {"n_startup_trials": 1, "restart_strategy": None, "popsize": None,
                    "use_separable_cma": False, "with_margin": False}  # fmt: skip
        sampler = optuna.samplers.CmaEsSampler(seed=seed, **settings)
    elif study.sampler == "nsga2":
        settings = {"population_size": 50, "crossover_prob": 0.9, "swapping_prob": 0.5}
        sampler = optuna.samplers.NSGAIISampler(seed=seed, **settings)
    else:
        grid = {name: _grid_values(dist) for name, dist in searched.items()}
        settings = {"search_space": grid}
        sampler = optuna.samplers.GridSampler(grid, seed=seed)
    return sampler, {"name": study.sampler, "seed": seed, "optuna": optuna.__version__, **settings}


def _grid_values(dist: BaseDistribution) -> list[Any]:
    if isinstance(dist, CategoricalDistribution):
        return list(dist.choices)
    assert isinstance(dist, IntDistribution | FloatDistribution)
    count = round((dist.high - dist.low) / dist.step) + 1  # type: ignore[operator]
    return [round(dist.low + i * dist.step, 12) for i in range(count)]  # type: ignore[operator]


def _study_config(config: RunConfig) -> StudyConfig:
    if config.study is None or config.study.kind != "search":
        raise ConfigError("a search needs a study section with kind 'search'")
    return config.study


def _check_same_study(
    study: optuna.Study, config: RunConfig, inputs: RunInputs, objectives: tuple[str, ...]
) -> None:
    recorded = study.user_attrs.get("ivybt")
    if recorded is None:
        return
    mine = {"strategy": config.strategy.name, "space": dict(config.strategy.space),
            "objectives": list(objectives), "data_sha256": inputs.record["sha256"]}  # fmt: skip
    theirs = {key: recorded.get(key) for key in mine}
    if theirs != mine:
        raise ConfigError(
            f"study {study.study_name!r} was made for {theirs}, not {mine}; resume it with the "
            "same settings or give another --study-name"
        )


def _record_study(
    study: optuna.Study, config: RunConfig, inputs: RunInputs, sampler: Mapping[str, Any]
) -> None:
    if "ivybt" in study.user_attrs:
        return
    study.set_user_attr(
        "ivybt",
        {
            "version": __version__,
            "strategy": config.strategy.name,
            "space": dict(config.strategy.space),
            "constraints": list(config.strategy.constraints),
            "objectives": list(objectives_of(_study_config(config))),
            "data_sha256": inputs.record["sha256"],
            "data": inputs.record,
            "execution": config.execution.model_dump(mode="json"),
            "split": inputs.split,
            "periods_per_year": inputs.periods_per_year,
            "sampler": sampler,
        },
    )


def _run_batch(
    study: optuna.Study,
    strategy: type[Strategy],
    searched: Mapping[str, BaseDistribution],
    fixed: Mapping[str, float | int],
    inputs: RunInputs,
    config: RunConfig,
    size: int,
    signals_for: Callable[[tuple[tuple[str, Any], ...]], SignalBars] | None = None,
) -> None:
    """Ask `size` trials, evaluate them in one kernel call per distinct Renko brick setting
    (`signals_for(bar values)` gives the bricks; None: the real bars), tell each its metrics."""
    study_config = _study_config(config)
    trials = [study.ask(dict(searched)) for _ in range(size)]
    combos = np.array(
        [[float({**fixed, **trial.params}[name]) for name in strategy.param_names()]
         for trial in trials], dtype=np.float64,
    ).reshape(size, len(strategy.params))  # fmt: skip
    columns = {name: combos[:, k] for k, name in enumerate(strategy.param_names())}
    admissible = np.ones(size, dtype=bool)
    for constraint in strategy.parsed_constraints(tuple(config.strategy.constraints)):
        admissible &= constraint.mask(columns)
    metrics = np.full((size, len(METRIC_NAMES)), np.nan)
    bar_keys = [tuple((n, v) for n, v in {**fixed, **t.params}.items() if n in BAR_PARAMS)
                for t in trials]  # fmt: skip
    for key in dict.fromkeys(bar_keys):  # one kernel call per distinct brick setting
        rows = admissible & np.array([k == key for k in bar_keys])
        if not rows.any():
            continue
        signals = None if signals_for is None else signals_for(key)
        space = ParamSpace(strategy, strategy.param_names(), combos[rows], size, ())
        metrics[rows] = evaluate_space(
            inputs.columns, space, config.execution, periods_per_year=inputs.periods_per_year,
            first_bar=inputs.window.start or 0,
            memory_budget=int(study_config.memory_budget_mb * 2**20),
            signal_columns=None if signals is None or signals.signal_of is None
            else signals.columns,
            signal_of=None if signals is None else signals.signal_of,
        )  # fmt: skip
    objectives = objectives_of(study_config)
    for trial, ok, row in zip(trials, admissible, metrics, strict=True):
        if not ok:
            trial.set_user_attr("ivybt_reason", "a constraint does not hold")
            _tell(study, trial, state=TrialState.PRUNED)
            continue
        values = dict(zip(METRIC_NAMES, (float(v) for v in row), strict=True))
        for name, value in values.items():
            trial.set_user_attr(name, value)
        scores = [values[name] for name in objectives]
        if values["n_trades"] < study_config.min_trades or any(np.isnan(scores)):
            trial.set_user_attr("ivybt_reason", "too few trades or undefined objective")
            _tell(study, trial, state=TrialState.FAIL)
        else:
            _tell(study, trial, values=scores)


def bricks_for(
    config: RunConfig, inputs: RunInputs, *, start: int
) -> Callable[[tuple[tuple[str, Any], ...]], SignalBars]:
    """`signals_for` of `_run_batch`: the signal bars of each Renko brick setting a search
    tries, built once and kept (a few dozen distinct boxes at most in practice)."""
    frame = inputs.frame.iloc[: len(inputs.columns["close"])]

    @lru_cache(maxsize=256)
    def signals_for(key: tuple[tuple[str, Any], ...]) -> SignalBars:
        return signal_bars(config, frame, inputs.columns, start=start, override=dict(key))

    return signals_for


def _tell(study: optuna.Study, trial: optuna.Trial, **outcome: Any) -> None:
    """`study.tell`, tolerating GridSampler's `study.stop()` after the last grid point: in
    ask-and-tell it raises RuntimeError, after the trial is already stored."""
    try:
        study.tell(trial, **outcome)
    except RuntimeError as err:
        if "Study.stop" not in str(err):
            raise


def optimize(
    strategy: str | type[Strategy] | None = None,
    *,
    symbol: str | None = None,
    data: pd.DataFrame | None = None,
    params: Mapping[str, object] | None = None,
    constraints: tuple[str, ...] | None = None,
    objectives: tuple[str, ...] | None = None,
    trials: int | None = None,
    sampler: str | None = None,
    seed: int | None = None,
    batch_size: int | None = None,
    storage: str | None = None,
    study_name: str | None = None,
    min_trades: int | None = None,
    cache_dir: str | Path | None = None,
    results: str | Path | None = None,
    config: str | Path | None = None,
    **run_options: Any,
) -> SearchResult:
    """Search `params` specs of `strategy` with Optuna; mirrors `ivybt optimize`.

    `run_options` are those of `ivybt.backtest` (interval, start, end, source, costs, ...). A
    keyword left at None takes the file's value, else the model's default (objectives
    ("sharpe",), trials 100, sampler "tpe", batch_size 32, min_trades 1). `config` names a
    YAML file or a run's manifest.json; keywords given override its fields.
    """
    from ivybt.backtesting import api_sections, config_sections
    from ivybt.config import build_config

    space = None if params is None else {name: str(spec) for name, spec in params.items()}
    study = {
        "objective": objectives[0] if objectives else None, "objectives": objectives,
        "trials": trials, "sampler": sampler, "seed": seed, "batch_size": batch_size,
        "storage": storage, "study_name": study_name, "min_trades": min_trades,
    }  # fmt: skip
    sections = config_sections(
        strategy, symbol=symbol, data=data, **run_options,
        extra={"strategy": {"space": space, "constraints": constraints}, "study": study},
    )  # fmt: skip
    sections = api_sections(sections, config)
    sections["study"]["kind"] = "search"
    return run_search(build_config(**sections), data=data, cache_dir=cache_dir, results=results)
