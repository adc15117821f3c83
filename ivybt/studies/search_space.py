"""A search's space as Optuna sees it: distributions from `-p` specs, the samplers with every
setting explicit, and the small spaces a search enumerates instead of sampling.

- `search_space`: `a:b[:step]` becomes an int or float range with that step, `v1,v2,...` a
  categorical choice, a single value (or no spec) a fixed value; with no range at all the
  strategy's declared default ranges are searched (`ivybt.studies.space.default_ranges`).
- `make_sampler`: TPE, random, CMA-ES, NSGA-II or grid, each with its settings written out
  (Optuna 5 changed TPE's defaults, so nothing is left to library defaults) and recorded.
- `small_space`: when the admissible combinations (constraints applied) are no more than the
  trials asked for, the search evaluates each untried one once (`untried_of`) and stops.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import optuna
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)
from optuna.trial import TrialState

from ivybt.bars.timeline import BAR_PARAMS
from ivybt.config import StudyConfig
from ivybt.errors import ConfigError
from ivybt.strategies import Strategy
from ivybt.studies.space import (
    DEFAULT_MAX_COMBINATIONS,
    EXIT_PARAMS,
    check_size,
    default_ranges,
    exit_names_of,
    parse_spec,
)
from ivybt.studies.study_storage import RESEED_RULE, is_interrupted, param_key

MAX_ENUMERATED = 1_000_000  # larger cartesian products are not enumerated to count them
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
"""The states of a finished trial (Optuna's RUNNING and WAITING are not)."""


def search_space(
    strategy: type[Strategy], specs: Mapping[str, str]
) -> tuple[dict[str, BaseDistribution], dict[str, float | int]]:
    """Optuna distributions of the searched parameters, and the fixed values of the rest.

    `a:b[:step]` becomes an int or float range with that step, `v1,v2,...` a categorical
    choice; a single value, or a parameter without a spec, stays fixed. Exits given a spec
    (`-p sl=0.01:0.1:0.01`, `ivybt.studies.space.EXIT_PARAMS`; 0: off) are searched or fixed
    the same way, under their plain names, next to the strategy's parameters.
    """
    names = strategy.param_names()
    exits = exit_names_of(strategy, specs)
    for name in specs:
        if name not in names and name not in BAR_PARAMS and name not in exits:
            strategy.resolve_params({name: 0})  # the "unknown parameter" message
    specs = {**specs, **default_ranges_of(strategy, specs)}  # no range given: the defaults
    searched: dict[str, BaseDistribution] = {}
    fixed: dict[str, float | int] = {}
    bar_params = [BAR_PARAMS[name] for name in specs if name in BAR_PARAMS]
    exit_params = [EXIT_PARAMS[name] for name in exits]
    for param in [*strategy.params, *bar_params, *exit_params]:
        spec = specs.get(param.name, param.default)
        owner = "the exits" if param.name in exits else strategy.name
        values = parse_spec(param, spec, owner)
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


def default_ranges_of(strategy: type[Strategy], specs: Mapping[str, str]) -> dict[str, str]:
    """`ivybt.studies.space.default_ranges` of a search's specs (Renko bar parameters too)."""
    return default_ranges(
        strategy, {name: spec for name, spec in specs.items() if name not in BAR_PARAMS},
        {name: (BAR_PARAMS[name], spec) for name, spec in specs.items() if name in BAR_PARAMS},
    )  # fmt: skip


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
    else:  # the grid sampler lists every point: the limit of every grid (ivybt.studies.space)
        grid = {name: grid_values(dist) for name, dist in searched.items()}
        check_size(math.prod(len(values) for values in grid.values()), DEFAULT_MAX_COMBINATIONS,
                   " x ".join(f"{len(values):,} {name}" for name, values in grid.items()),
                   fix="sample it with another --sampler (tpe, random, cmaes, nsga2)")  # fmt: skip
        settings = {"search_space": grid}
        sampler = optuna.samplers.GridSampler(grid, seed=seed)
    recorded = {"name": study.sampler, "seed": seed, "optuna": optuna.__version__, **settings,
                "batch_size": study.batch_size, "reseed": RESEED_RULE}  # fmt: skip
    return sampler, recorded


def small_space(
    strategy: type[Strategy], searched: Mapping[str, BaseDistribution],
    fixed: Mapping[str, float | int], constraints: tuple[str, ...] | list[str], limit: int,
) -> list[dict[str, Any]] | None:  # fmt: skip
    """Every admissible combination of the searched parameters, in grid order, when there
    are no more than `limit` of them (None otherwise, or when the cartesian product exceeds
    `MAX_ENUMERATED` and counting is not worth it)."""
    values = {name: grid_values(dist) for name, dist in searched.items()}
    total = math.prod(len(v) for v in values.values())
    if total > MAX_ENUMERATED:
        return None
    names = list(values)
    grids = np.meshgrid(*[np.arange(len(values[n])) for n in names], indexing="ij")
    index = np.column_stack([grid.reshape(-1) for grid in grids])
    columns = {
        param: np.asarray(values[param], dtype=np.float64)[index[:, names.index(param)]]
        if param in values else np.full(total, float(fixed[param]))
        for param in strategy.param_names()
    }  # fmt: skip
    keep = np.ones(total, dtype=bool)
    for constraint in strategy.parsed_constraints(tuple(constraints)):
        keep &= constraint.mask(columns)
    if keep.sum() > limit:
        return None
    return [{n: values[n][i] for n, i in zip(names, row, strict=True)} for row in index[keep]]


def small_space_message(n_combinations: int, trials: int) -> str:
    return (
        f"the search space has only {n_combinations:,} admissible combinations, no more than "
        f"the {trials:,} trials asked for (--trials): each untried one is evaluated once, in "
        "grid order, and the search stops when all are tried (`ivybt grid` evaluates them in "
        "one pass)"
    )


def untried_of(
    combos: list[dict[str, Any]],
) -> Callable[[optuna.Study], list[dict[str, Any]]]:
    """`untried(study)` of `run_batches`: the combinations no finished trial tried yet
    (interrupted trials do not count), in the order of `combos`."""

    def untried(study: optuna.Study) -> list[dict[str, Any]]:
        tried = {
            tuple(param_key(t.params.get(name)) for name in combos[0])
            for t in study.get_trials(deepcopy=False, states=FINISHED)
            if not is_interrupted(t)
        }  # fmt: skip
        return [c for c in combos if tuple(param_key(v) for v in c.values()) not in tried]

    return untried


def grid_values(dist: BaseDistribution) -> list[Any]:
    if isinstance(dist, CategoricalDistribution):
        return list(dist.choices)
    assert isinstance(dist, IntDistribution | FloatDistribution)
    count = round((dist.high - dist.low) / dist.step) + 1  # type: ignore[operator]
    return [round(dist.low + i * dist.step, 12) for i in range(count)]  # type: ignore[operator]
