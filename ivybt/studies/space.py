"""Parameter spaces: `-p name=spec` specs -> every admissible combination as a NumPy array.

A spec is a single value (`fast=10`), an inclusive range `a:b` or `a:b:step` (`fast=2:101`,
`fast=2:101:3`, `k=1.5:3.0:0.25`; `a:b` steps by 1 for an integer parameter and by the
declared `step` of a float parameter, which otherwise needs `a:b:step`), or a list
`v1,v2,...`.
Each value is checked like a single backtest's parameter (type, bounds); the strategy's
constraints and any extra `--constraint` are applied to whole columns at once.

Decisions (the same for `ivybt grid`, `ivybt walkforward` and `ivybt optimize`):

- **Default ranges.** When no spec gives a range or a list (no `-p` at all, or only single
  values), every parameter without a spec is searched over its declared range
  `low..high` (`ivybt strategies`), in steps of its declared `step` (1 for an integer
  parameter; a float parameter without a step has no default range and asks for a `-p`
  range). As soon as one range or list is given, the parameters left out keep their
  defaults. `default_ranges` says which ranges were filled in, and the commands print it
  with the number of combinations before any work.
- **Size limit.** A space is counted from its specs (the product of each spec's number of
  values, before the constraints, which can only remove combinations) before anything is
  built, and refused beyond `max_combinations` (default `DEFAULT_MAX_COMBINATIONS`, option
  `--max-combinations`, study field `max_combinations`) with the count and the override.
  The default, 1,000,000, is what the default 1 GiB memory budget holds with the overfitting
  statistics on (about 1 KB a combination, `ivybt.studies.grid.combination_bytes`) and what
  the kernels evaluate in seconds to minutes here (about 500 M bar-combinations a second on
  two cores: 1,000,000 combinations on 5,000 daily bars ~10 s, on 75,000 hourly bars ~2.5
  min). A single range may give at most `MAX_SPEC_VALUES` values whatever the limit.
- **Bounded building.** The admissible combinations are enumerated in chunks of
  `BUILD_CHUNK` candidates, so building never holds the full cartesian product: memory is
  one chunk plus the admissible combinations (8 bytes x parameters each).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ivybt._typing import Float64Array2D
from ivybt.bars.timeline import BAR_PARAMS, renko_settings
from ivybt.config import ExecutionConfig, RunConfig
from ivybt.errors import ConfigError
from ivybt.strategies.base import Param, ParamValue, Strategy
from ivybt.strategies.constraints import Constraint

_FLOAT_DIGITS = 12  # float range values are rounded to this many decimals: 0.1 + 0.2 -> 0.3
DEFAULT_MAX_COMBINATIONS = 1_000_000
"""Combinations (before constraints) a study accepts unless `max_combinations` says more."""
MAX_SPEC_VALUES = 10_000_000
"""Values one range spec may give, whatever the limit (a list of 10 M floats is ~300 MB)."""
BUILD_CHUNK = 1 << 20
"""Candidate combinations enumerated per step of `build_space` (~25 MB for 3 parameters)."""


@dataclass(frozen=True)
class ParamSpace:
    """The admissible combinations of a strategy's parameters.

    combos : float64, shape (n_combos, n_params), columns in the strategy's declaration order.
    n_candidates : size of the full cartesian product before the constraints.
    defaulted : the specs of the parameters searched over their declared default range
        (`default_ranges`), name -> "low:high:step"; empty when the specs gave a range.
    """

    strategy: type[Strategy]
    names: tuple[str, ...]
    combos: Float64Array2D
    n_candidates: int
    constraints: tuple[str, ...]
    defaulted: Mapping[str, str] = field(default_factory=dict)
    exit_names: tuple[str, ...] = ()  # the last columns: exits varied by -p (EXIT_PARAMS)

    def __len__(self) -> int:
        return self.combos.shape[0]

    def combination(self, j: int) -> dict[str, ParamValue]:
        """Combination j as a parameter dict with each parameter's own type."""
        return {
            param.name: param.kind(self.combos[j, k])  # type: ignore[misc]
            for k, param in enumerate(self.strategy.params)
        }

    def subset(self, rows: Any) -> ParamSpace:
        """The combinations `rows` (an index array or a slice) of this space."""
        combos = np.ascontiguousarray(self.combos[rows])
        return ParamSpace(self.strategy, self.names, combos, len(combos), (),
                          exit_names=self.exit_names)  # fmt: skip

    def exits(self, j: int) -> dict[str, ParamValue]:
        """Combination j's exits varied by the space (`EXIT_PARAMS`; 0: off), by name."""
        first = len(self.names) - len(self.exit_names)
        return {name: EXIT_PARAMS[name].kind(self.combos[j, first + k])  # type: ignore[misc]
                for k, name in enumerate(self.exit_names)}  # fmt: skip


EXIT_PARAMS: dict[str, Param] = {
    "sl": Param("sl", float, 0.05, 0.01, 0.2, minimum=0.0, maximum=0.99, step=0.01),
    "tp": Param("tp", float, 0.1, 0.02, 0.5, minimum=0.0, step=0.02),
    "trail": Param("trail", float, 0.05, 0.01, 0.2, minimum=0.0, maximum=0.99, step=0.01),
    "sl_atr": Param("sl_atr", float, 2.0, 0.5, 5.0, minimum=0.0, step=0.5),
    "max_bars": Param("max_bars", int, 20, 5, 100, minimum=0, step=5),
}
"""Exits a study (grid, search, walk-forward) varies next to the strategy's parameters
(`-p sl=0.01:0.10:0.01`): the execution settings of docs/stops.md, 0 meaning off. In a
combination they are the space's last columns (`ParamSpace.exit_names`), which the grid
kernels read per combination."""


def exit_names_of(strategy: type[Strategy], names: Iterable[str]) -> tuple[str, ...]:
    """The exits among `names` (`EXIT_PARAMS` that are not `strategy`'s own parameters), in
    `EXIT_PARAMS` order: the names a study varies as exits."""
    given, own = set(names), set(strategy.param_names())
    return tuple(name for name in EXIT_PARAMS if name in given and name not in own)


def split_exits(
    strategy: type[Strategy], combination: Mapping[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the exits, the rest) of a study's chosen combination (`exit_names_of`)."""
    exits = exit_names_of(strategy, combination)
    return ({name: combination[name] for name in exits},
            {name: v for name, v in combination.items() if name not in exits})  # fmt: skip


def execution_with(execution: ExecutionConfig, exits: Mapping[str, Any]) -> ExecutionConfig:
    """`execution` with the exits of a combination laid over it (0: off, so None): the
    execution of a backtest equal to that combination's grid row."""
    if not exits:
        return execution
    update = {name: EXIT_PARAMS[name].kind(value) if value else None  # type: ignore[misc]
              for name, value in exits.items()}  # fmt: skip
    return execution.model_copy(update=update)


def with_exits(
    space: ParamSpace, specs: Mapping[str, object], *, max_combinations: int
) -> ParamSpace:
    """`space` crossed with every combination of the exit `specs` (names of `EXIT_PARAMS`):
    each strategy combination with each exit setting, exit settings innermost."""
    if not specs:
        return space
    names = tuple(name for name in EXIT_PARAMS if name in specs)
    values = [parse_spec(EXIT_PARAMS[name], specs[name], "the exits") for name in names]
    grid = np.array(list(itertools.product(*values)), dtype=np.float64).reshape(-1, len(names))
    check_size(len(space) * len(grid), max_combinations,
               f"{len(space):,} strategy combinations x {len(grid):,} exit settings")  # fmt: skip
    combos = np.hstack([np.repeat(space.combos, len(grid), axis=0),
                        np.tile(grid, (len(space), 1))])  # fmt: skip
    return ParamSpace(space.strategy, (*space.names, *names), np.ascontiguousarray(combos),
                      space.n_candidates * len(grid), space.constraints, space.defaulted,
                      names)  # fmt: skip


def parse_spec(
    param: Param, spec: object, strategy: str, *, max_values: int = MAX_SPEC_VALUES
) -> list[ParamValue]:
    """The candidate values of one `param` for a spec (see the module docstring).

    A range is counted before its values are made: more than `max_values` is a ConfigError.
    """
    if not isinstance(spec, str):
        values: Sequence[object] = spec if isinstance(spec, list | tuple) else [spec]
    elif ":" in spec:
        values = _range_values(param, spec, strategy, max_values)
    else:
        values = [part for part in spec.split(",") if part.strip()]
    if not values:
        raise ConfigError(
            f"parameter {param.name} of {strategy} is given no values ({spec!r}); "
            f"e.g. -p {param.name}={param.low}:{param.high}"
        )
    return sorted(set(param.coerce(value, strategy) for value in values))


def spec_count(param: Param, spec: object, strategy: str) -> int:
    """How many values `spec` gives `param`, without making a range's values."""
    if isinstance(spec, str) and ":" in spec:
        start, _, step, count = _range_terms(param, spec, strategy)
        # the ends are checked like any value (type, bounds) before the count is trusted
        param.coerce(start, strategy)
        param.coerce(start + (count - 1) * step, strategy)
        return count
    return len(parse_spec(param, spec, strategy))


def _range_terms(param: Param, spec: str, strategy: str) -> tuple[float, float, float, int]:
    """(start, stop, step, number of values) of a range spec, checked."""
    parts = spec.split(":")
    if len(parts) not in (2, 3):
        raise ConfigError(
            f"range {spec!r} for {param.name} of {strategy} must be start:stop or "
            "start:stop:step, e.g. 2:101 or 1.5:3.0:0.25"
        )
    try:
        start, stop = float(parts[0]), float(parts[1])
        step = float(parts[2]) if len(parts) == 3 else _implicit_step(param)
    except ValueError:
        raise ConfigError(
            f"range {spec!r} for {param.name} of {strategy} must hold numbers, e.g. 2:101:3"
        ) from None
    if math.isnan(step) and len(parts) == 2:
        raise ConfigError(
            f"float range {spec!r} for {param.name} of {strategy} needs a step, "
            f"e.g. {parts[0]}:{parts[1]}:0.25"
        )
    if not (math.isfinite(start) and math.isfinite(stop) and math.isfinite(step)):
        raise ConfigError(
            f"range {spec!r} for {param.name} of {strategy} must hold finite numbers, e.g. 2:101:3"
        )
    if step <= 0 or stop < start:
        raise ConfigError(
            f"range {spec!r} for {param.name} of {strategy} must have start <= stop and a "
            "positive step"
        )
    count = math.floor((stop - start) / step + 1e-9) + 1
    return start, stop, step, count


def _implicit_step(param: Param) -> float:
    """The step of a range written `a:b`: 1 for an integer parameter, the declared `step` of a
    float parameter (NaN when it declares none: the range then needs its step)."""
    if param.kind is int:
        return 1.0
    return math.nan if param.step is None else float(param.step)


def _range_values(param: Param, spec: str, strategy: str, max_values: int) -> list[float]:
    start, _, step, count = _range_terms(param, spec, strategy)
    if count > max_values:
        raise ConfigError(
            f"range {spec!r} for {param.name} of {strategy} gives {count:,} values, more than "
            f"{max_values:,}; use a coarser step, e.g. "
            f"{_with_step(spec, step * math.ceil(count / 1000))}"
        )
    return [round(start + i * step, _FLOAT_DIGITS) for i in range(count)]


def _with_step(spec: str, step: float) -> str:
    """`spec` with `step` as its step: "1:40000" -> "1:40000:40"."""
    parts = spec.split(":")
    shown = int(step) if float(step).is_integer() else round(step, _FLOAT_DIGITS)
    return f"{parts[0]}:{parts[1]}:{shown}"


def default_spec(param: Param, strategy: str) -> str:
    """`param`'s declared range as a spec, "low:high:step" (the module's default-range rule)."""
    step = param.step if param.step is not None else (1 if param.kind is int else None)
    if step is None:
        raise ConfigError(
            f"parameter {param.name} of {strategy} is a float without a declared step, so it "
            f"has no default range; give it one, e.g. -p {param.name}={param.low}:{param.high}:"
            f"{_suggested_step(param)}"
        )
    return f"{param.low}:{param.high}:{step}"


def _suggested_step(param: Param) -> str:
    return f"{(float(param.high) - float(param.low)) / 10:g}"


def default_ranges(
    strategy: type[Strategy],
    specs: Mapping[str, object],
    other_specs: Mapping[str, tuple[Param, object]] | None = None,
) -> dict[str, str]:
    """The default-range specs the module's rule adds to `specs`: one per parameter without a
    spec when no spec (nor any of `other_specs`, e.g. Renko bar parameters, name -> (Param,
    spec)) gives more than one value; {} as soon as one does."""
    given = [(param, specs[param.name]) for param in strategy.params if param.name in specs]
    given += list((other_specs or {}).values())
    if any(_is_search(param, spec, strategy.name) for param, spec in given):
        return {}
    return {
        param.name: default_spec(param, strategy.name)
        for param in strategy.params
        if param.name not in specs
    }


def _is_search(param: Param, spec: object, strategy: str) -> bool:
    """Whether `spec` is a range or a list (more than one value)."""
    return spec_count(param, spec, strategy) > 1


def describe_defaults(strategy: type[Strategy], defaulted: Mapping[str, str]) -> str:
    """The line a command prints when it searches default ranges."""
    ranges = ", ".join(f"{name}={spec}" for name, spec in defaulted.items())
    return (
        f"no -p range given: searching {strategy.name}'s default ranges {ranges} "
        "(`ivybt strategies`; give -p name=start:stop[:step] to choose)"
    )


def check_size(
    n_combinations: int, max_combinations: int, shown: str, *, fix: str | None = None
) -> None:
    """Refuse a space of more than `max_combinations` (the module's size limit); `fix` is
    the last remedy the message offers (default: raising --max-combinations)."""
    if n_combinations > max_combinations:
        fix = fix or (
            "search it with `ivybt optimize`, or raise the limit with --max-combinations "
            f"{n_combinations} (study.max_combinations)"
        )
        raise ConfigError(
            f"the parameter space has {n_combinations:,} combinations ({shown}) before "
            f"constraints, more than the limit of {max_combinations:,}; narrow the ranges or "
            f"use steps (e.g. -p fast=2:200:2), or {fix}"
        )


def build_space(
    strategy: type[Strategy],
    specs: Mapping[str, object],
    constraints: Sequence[str] = (),
    *,
    max_combinations: int = DEFAULT_MAX_COMBINATIONS,
    multiplier: int = 1,
    other_specs: Mapping[str, tuple[Param, object]] | None = None,
) -> ParamSpace:
    """Every admissible combination of `specs` (module docstring: default ranges, limit).

    `multiplier` counts other combinations the space is crossed with (Renko brick settings)
    towards `max_combinations`; `other_specs` are their specs (name -> (Param, spec)): a range
    among them also turns the default ranges off (`default_ranges`).
    """
    names = strategy.param_names()
    for name in specs:
        if name not in names:
            strategy.resolve_params({name: 0})  # raises the "unknown parameter" message
    added = default_ranges(strategy, specs, other_specs)
    full = {**specs, **added}
    chosen = [full.get(param.name, param.default) for param in strategy.params]
    counts = [spec_count(param, spec, strategy.name)
              for param, spec in zip(strategy.params, chosen, strict=True)]  # fmt: skip
    n_candidates = math.prod(counts)
    shown = (
        " x ".join(
            f"{count:,} {param.name}" for param, count in zip(strategy.params, counts, strict=True)
        )
        or "no parameters"
    )
    if multiplier > 1:
        shown += f" x {multiplier:,} brick settings"
    check_size(n_candidates * multiplier, max_combinations, shown)
    candidates = [
        parse_spec(param, spec, strategy.name)
        for param, spec in zip(strategy.params, chosen, strict=True)
    ]
    parsed = strategy.parsed_constraints(tuple(constraints))
    combos = _admissible(names, candidates, parsed)
    if len(combos) == 0:
        listed = " x ".join(
            f"{name}={_describe(values)}" for name, values in zip(names, candidates, strict=True)
        )
        raise ConfigError(
            f"no admissible parameter combination: the constraints "
            f"{', '.join(repr(c.text) for c in parsed)} remove all {n_candidates} of {listed}; "
            "widen the ranges or relax a constraint"
        )
    return ParamSpace(
        strategy=strategy,
        names=names,
        combos=combos,
        n_candidates=n_candidates,
        constraints=tuple(c.text for c in parsed),
        defaulted=added,
    )


def _admissible(
    names: tuple[str, ...], candidates: list[list[ParamValue]], parsed: tuple[Constraint, ...]
) -> Float64Array2D:
    """The candidates' cartesian product (first parameter slowest, as `np.meshgrid(...,
    indexing="ij")`) without the combinations a constraint removes, built `BUILD_CHUNK`
    candidates at a time."""
    if not names:
        return np.zeros((1, 0), dtype=np.float64)
    values = [np.asarray(v, dtype=np.float64) for v in candidates]
    shape = tuple(len(v) for v in values)
    n_candidates = math.prod(shape)
    kept = []
    for first in range(0, n_candidates, BUILD_CHUNK):
        index = np.arange(first, min(first + BUILD_CHUNK, n_candidates), dtype=np.int64)
        coords = np.unravel_index(index, shape)
        block = np.empty((len(index), len(names)), dtype=np.float64)
        for k, column in enumerate(values):
            block[:, k] = column[coords[k]]
        del index, coords
        keep = np.ones(len(block), dtype=bool)
        columns = {name: block[:, k] for k, name in enumerate(names)}
        for constraint in parsed:
            keep &= constraint.mask(columns)
        kept.append(block if keep.all() else block[keep])
    combos = kept[0] if len(kept) == 1 else np.concatenate(kept)
    return np.ascontiguousarray(combos)


def _describe(values: list[ParamValue]) -> str:
    if len(values) == 1:
        return f"{values[0]}"
    return f"{values[0]}..{values[-1]} ({len(values)} values)"


def bar_grid(config: RunConfig, bar_specs: Mapping[str, str]) -> list[dict[str, Any]]:
    """Every combination of the bar parameters' values (one empty dict without any),
    counted first and refused beyond the study's `max_combinations` (`check_size`)."""
    counts = [spec_count(BAR_PARAMS[name], spec, "renko") for name, spec in bar_specs.items()]
    limit = config.study.max_combinations if config.study else DEFAULT_MAX_COMBINATIONS
    shown = " x ".join(f"{n:,} {name}" for name, n in zip(bar_specs, counts, strict=True))
    check_size(math.prod(counts), limit, f"{shown} brick settings")
    values = [parse_spec(BAR_PARAMS[name], spec, "renko") for name, spec in bar_specs.items()]
    grid = [dict(zip(bar_specs, combo, strict=True)) for combo in itertools.product(*values)]
    if config.data.bars == "renko":
        for combo in grid:
            renko_settings(config, combo)  # validates every combination up front
    return grid
