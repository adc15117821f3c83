"""One Optuna search's machinery: ask a batch of trials, evaluate it in one kernel call, tell.

Optuna only samples, IvyBT only evaluates: `search_batch` asks `size` trials, evaluates the
admissible ones in one call of the grid kernel per distinct Renko brick setting
(`bricks_for`), each trial with its own exits when the search varies them (`-p sl=...`: the
space's last columns, `ParamSpace.exit_names`), stores every metric in each trial's user
attributes and tells the objective values back (inadmissible combinations PRUNED; too few
trades or an undefined objective FAIL).
`ivybt.runs.optimize` drives the batches of a search (`ivybt.optimize`, `ivybt optimize`) and
`ivybt.studies.wf_search` those of each walk-forward fold; `ivybt.studies.evidence` re-evaluates
a search's trials with `bricks_for`. `MINIMIZED` names the metrics a study minimises.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Any

import numpy as np
import optuna
from optuna.distributions import BaseDistribution
from optuna.trial import TrialState

from ivybt.bars.timeline import BAR_PARAMS, SignalBars, signal_bars, signal_columns
from ivybt.config import RunConfig, StudyConfig
from ivybt.engine.inputs import RunInputs
from ivybt.errors import ConfigError
from ivybt.kernels.metrics import METRIC_NAMES
from ivybt.strategies import Strategy
from ivybt.studies.grid import evaluate_space
from ivybt.studies.space import ParamSpace, exit_names_of

MINIMIZED = frozenset({"volatility"})


def objectives_of(study: StudyConfig) -> tuple[str, ...]:
    return study.objectives or (study.objective,)


def search_config(config: RunConfig) -> StudyConfig:
    if config.study is None or config.study.kind != "search":
        raise ConfigError("a search needs a study section with kind 'search'")
    return config.study


def search_batch(
    study: optuna.Study,
    strategy: type[Strategy],
    searched: Mapping[str, BaseDistribution],
    fixed: Mapping[str, float | int],
    inputs: RunInputs,
    config: RunConfig,
    size: int,
    signals_for: Callable[[tuple[tuple[str, Any], ...]], SignalBars] | None = None,
    asked: Callable[[list[optuna.Trial]], None] | None = None,
) -> None:
    """Ask `size` trials, evaluate them in one kernel call per distinct Renko brick setting
    (`signals_for(bar values)` gives the bricks; None: the real bars), tell each its metrics.
    `asked(trials)` is called once they are asked, before any is evaluated (the workers of
    a shared study reserve them there: `study_storage.run_shared_batches`)."""
    study_config = search_config(config)
    trials = [study.ask(dict(searched)) for _ in range(size)]
    if asked is not None:
        asked(trials)
    exits = exit_names_of(strategy, [*fixed, *searched])  # each trial's own, last (0: off)
    names = (*strategy.param_names(), *exits)
    combos = np.array(
        [[float({**fixed, **trial.params}[name]) for name in names] for trial in trials],
        dtype=np.float64,
    ).reshape(size, len(names))  # fmt: skip
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
        space = ParamSpace(strategy, names, combos[rows], size, (), exit_names=exits)
        metrics[rows] = evaluate_space(
            inputs.columns, space, config.execution, periods_per_year=inputs.periods_per_year,
            first_bar=inputs.window.start or 0,
            memory_budget=int(study_config.memory_budget_mb * 2**20),
            signal_columns=signal_columns(signals),
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
    """`signals_for` of `search_batch`: the signal bars of each Renko brick setting a search
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
