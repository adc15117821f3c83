"""Parameter spaces: `-p name=spec` specs -> every admissible combination as a NumPy array.

A spec is a single value (`fast=10`), an inclusive range `a:b` or `a:b:step` (`fast=2:101`,
`fast=2:101:3`, `k=1.5:3.0:0.25`; a float range needs its step), or a list `v1,v2,...`.
Parameters without a spec keep their default. Each value is checked like a single backtest's
parameter (type, bounds); the strategy's constraints and any extra `--constraint` are applied
to whole columns at once.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from ivybt._typing import Float64Array2D
from ivybt.errors import ConfigError
from ivybt.strategies.base import Param, ParamValue, Strategy

_FLOAT_DIGITS = 12  # float range values are rounded to this many decimals: 0.1 + 0.2 -> 0.3


@dataclass(frozen=True)
class ParamSpace:
    """The admissible combinations of a strategy's parameters.

    combos : float64, shape (n_combos, n_params), columns in the strategy's declaration order.
    n_candidates : size of the full cartesian product before the constraints.
    """

    strategy: type[Strategy]
    names: tuple[str, ...]
    combos: Float64Array2D
    n_candidates: int
    constraints: tuple[str, ...]

    def __len__(self) -> int:
        return self.combos.shape[0]

    def combination(self, j: int) -> dict[str, ParamValue]:
        """Combination j as a parameter dict with each parameter's own type."""
        return {
            param.name: param.kind(self.combos[j, k])  # type: ignore[misc]
            for k, param in enumerate(self.strategy.params)
        }


def parse_spec(param: Param, spec: object, strategy: str) -> list[ParamValue]:
    """The candidate values of one `param` for a spec (see the module docstring)."""
    if not isinstance(spec, str):
        values: Sequence[object] = spec if isinstance(spec, list | tuple) else [spec]
    elif ":" in spec:
        values = _range_values(param, spec, strategy)
    else:
        values = [part for part in spec.split(",") if part.strip()]
    if not values:
        raise ConfigError(
            f"parameter {param.name} of {strategy} is given no values ({spec!r}); "
            f"e.g. -p {param.name}={param.low}:{param.high}"
        )
    return sorted(set(param.coerce(value, strategy) for value in values))


def _range_values(param: Param, spec: str, strategy: str) -> list[float]:
    parts = spec.split(":")
    if len(parts) not in (2, 3):
        raise ConfigError(
            f"range {spec!r} for {param.name} of {strategy} must be start:stop or "
            "start:stop:step, e.g. 2:101 or 1.5:3.0:0.25"
        )
    try:
        start, stop = float(parts[0]), float(parts[1])
        step = float(parts[2]) if len(parts) == 3 else (1.0 if param.kind is int else math.nan)
    except ValueError:
        raise ConfigError(
            f"range {spec!r} for {param.name} of {strategy} must hold numbers, e.g. 2:101:3"
        ) from None
    if math.isnan(step):
        raise ConfigError(
            f"float range {spec!r} for {param.name} of {strategy} needs a step, "
            f"e.g. {parts[0]}:{parts[1]}:0.25"
        )
    if step <= 0 or stop < start:
        raise ConfigError(
            f"range {spec!r} for {param.name} of {strategy} must have start <= stop and a "
            "positive step"
        )
    count = math.floor((stop - start) / step + 1e-9) + 1
    return [round(start + i * step, _FLOAT_DIGITS) for i in range(count)]


def build_space(
    strategy: type[Strategy],
    specs: Mapping[str, object],
    constraints: Sequence[str] = (),
) -> ParamSpace:
    """Every admissible combination of `specs` (defaults for the parameters not given)."""
    names = strategy.param_names()
    for name in specs:
        if name not in names:
            strategy.resolve_params({name: 0})  # raises the "unknown parameter" message
    candidates = [
        parse_spec(param, specs.get(param.name, param.default), strategy.name)
        for param in strategy.params
    ]
    grids = np.meshgrid(*[np.asarray(values, dtype=np.float64) for values in candidates],
                        indexing="ij")  # fmt: skip
    combos = np.column_stack([grid.reshape(-1) for grid in grids]) if names else np.zeros((1, 0))
    n_candidates = combos.shape[0]
    columns = {name: combos[:, k] for k, name in enumerate(names)}
    keep = np.ones(n_candidates, dtype=bool)
    parsed = strategy.parsed_constraints(tuple(constraints))
    for constraint in parsed:
        keep &= constraint.mask(columns)
    if not keep.any():
        shown = " x ".join(
            f"{name}={_describe(values)}" for name, values in zip(names, candidates, strict=True)
        )
        raise ConfigError(
            f"no admissible parameter combination: the constraints "
            f"{', '.join(repr(c.text) for c in parsed)} remove all {n_candidates} of {shown}; "
            "widen the ranges or relax a constraint"
        )
    return ParamSpace(
        strategy=strategy,
        names=names,
        combos=np.ascontiguousarray(combos[keep]),
        n_candidates=n_candidates,
        constraints=tuple(c.text for c in parsed),
    )


def _describe(values: list[ParamValue]) -> str:
    if len(values) == 1:
        return f"{values[0]}"
    return f"{values[0]}..{values[-1]} ({len(values)} values)"
