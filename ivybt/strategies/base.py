"""What a strategy declares: parameters, constraints, indicators and a Numba signal kernel.

A strategy is a subclass of `Strategy` with class attributes only (no instances are made):

    class SmaCross(Strategy):
        name = "sma_cross"
        summary = "Long when the fast SMA crosses above the slow SMA, short when below."
        params = (
            Param("fast", int, 10, 2, 100, minimum=1),
            Param("slow", int, 50, 5, 300, minimum=2),
        )
        constraints = ("fast < slow",)
        signal_kernel = cross_signal_nb

        @classmethod
        def indicators(cls, p):
            return (Indicator("sma", (p["fast"],)), Indicator("sma", (p["slow"],)))

The signal kernel has the signature documented in `ivybt.kernels.signals`; the indicators feed
its slots in the order returned. docs/strategies.md has a worked example of a user strategy.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from ivybt.errors import ConfigError
from ivybt.strategies.constraints import Constraint

ParamValue = int | float

INDICATOR_KINDS: dict[str, tuple[int, str]] = {
    # kind: (number of integer args, what they are)
    "price": (0, "the source column itself"),
    "sma": (1, "window"),
    "ema": (1, "window"),
    "rma": (1, "window"),
    "std": (1, "window (population std, ddof = 0)"),
    "rsi": (1, "window"),
    "atr": (1, "window (uses high, low, close)"),
    "rolling_max": (1, "window (bar t included)"),
    "rolling_min": (1, "window (bar t included)"),
    "macd_hist": (3, "fast, slow, signal"),
}
SOURCES = ("open", "high", "low", "close", "volume")


@dataclass(frozen=True)
class Indicator:
    """One indicator row a signal kernel reads: `kind` of `source` with integer `args`.

    Two strategies (or two grid combinations) asking for equal Indicators share one computed
    row. Kinds and their args are listed in `INDICATOR_KINDS`. A grid calls a strategy's
    `indicators` once with whole parameter columns; the args are then int64 arrays, one value
    per combination, and such an Indicator is a declaration only (not hashable).
    """

    kind: str
    args: tuple[int, ...] = ()
    source: str = "close"

    def __post_init__(self) -> None:
        if self.kind not in INDICATOR_KINDS:
            raise ConfigError(
                f"unknown indicator kind {self.kind!r}"
                f"{_did_you_mean(self.kind, INDICATOR_KINDS)}; kinds: {', '.join(INDICATOR_KINDS)}"
            )
        if self.source not in SOURCES:
            raise ConfigError(f"indicator source must be one of {SOURCES}, got {self.source!r}")
        args = tuple(np.asarray(a) if isinstance(a, np.ndarray) else a for a in self.args)
        n_args = INDICATOR_KINDS[self.kind][0]
        integral = all(bool(np.all((np.floor(a) == a) & (a >= 1))) for a in args)
        if len(args) != n_args or not integral:
            raise ConfigError(
                f"indicator {self.kind} takes {n_args} integer argument(s) >= 1 "
                f"({INDICATOR_KINDS[self.kind][1]}), got {self.args}"
            )
        # whole parameter columns (a grid declaring all its indicators at once) stay arrays
        converted = (a.astype(np.int64) if isinstance(a, np.ndarray) else int(a) for a in args)
        object.__setattr__(self, "args", tuple(converted))

    @property
    def warmup_bars(self) -> int:
        """Bars before the first defined value (TA-Lib's lookback)."""
        if self.kind == "price":
            return 0
        if self.kind in ("rsi", "atr"):
            return self.args[0]
        if self.kind == "macd_hist":
            return max(self.args[0], self.args[1]) - 1 + self.args[2] - 1
        return self.args[0] - 1


@dataclass(frozen=True)
class Param:
    """A strategy parameter.

    `low`/`high` are the sensible search range (inclusive) that `ivybt strategies` shows and
    grids default to; `minimum`/`maximum` are hard validity bounds (inclusive).
    """

    name: str
    kind: type[int] | type[float]
    default: ParamValue
    low: ParamValue
    high: ParamValue
    minimum: ParamValue | None = None
    maximum: ParamValue | None = None
    doc: str = ""

    def coerce(self, value: object, strategy: str) -> ParamValue:
        """`value` (a number or a CLI string) as this parameter's type, checked against bounds."""
        number = _as_number(value, self, strategy)
        if self.minimum is not None and number < self.minimum:
            raise ConfigError(
                f"parameter {self.name} of {strategy} must be >= {self.minimum}, got {number}; "
                f"a sensible range is {self.low}..{self.high}"
            )
        if self.maximum is not None and number > self.maximum:
            raise ConfigError(
                f"parameter {self.name} of {strategy} must be <= {self.maximum}, got {number}; "
                f"a sensible range is {self.low}..{self.high}"
            )
        return number


def _as_number(value: object, param: Param, strategy: str) -> ParamValue:
    where = f"parameter {param.name} of {strategy}"
    text = value.strip() if isinstance(value, str) else value
    try:
        number = float(text)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ConfigError(
            f"{where} must be a number, got {value!r}; e.g. -p {param.name}={param.default}"
        ) from None
    if isinstance(value, bool) or not math.isfinite(number):
        raise ConfigError(f"{where} must be a finite number, got {value!r}")
    if param.kind is int:
        if number != int(number):
            raise ConfigError(
                f"{where} must be an integer, got {value!r}; e.g. -p {param.name}={param.default}"
            )
        return int(number)
    return number


class Strategy:
    """Base class of every strategy; see the module docstring for a complete example."""

    name: ClassVar[str]
    summary: ClassVar[str]
    params: ClassVar[tuple[Param, ...]]
    constraints: ClassVar[tuple[str, ...]] = ()
    signal_kernel: ClassVar[Callable[..., None]]

    # indicators(cls, p) -> tuple[Indicator, ...]: a classmethod every subclass defines,
    # returning the indicators that feed the signal kernel's slots, in slot order.
    indicators: ClassVar[Callable[[Mapping[str, Any]], tuple[Indicator, ...]]]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """Check a new strategy class declares everything, so mistakes fail at import time."""
        super().__init_subclass__(**kwargs)
        missing = [
            attribute
            for attribute in ("name", "summary", "params", "signal_kernel", "indicators")
            if not hasattr(cls, attribute)
        ]
        if missing:
            raise TypeError(
                f"strategy class {cls.__qualname__} must define {', '.join(missing)}; "
                "see docs/strategies.md for a complete example"
            )
        names = [param.name for param in cls.params]
        if len(set(names)) != len(names):
            raise TypeError(f"strategy {cls.name} declares a parameter twice: {names}")
        if not cls.name.isidentifier():
            raise TypeError(f"strategy name must be an identifier, got {cls.name!r}")

    @classmethod
    def param_names(cls) -> tuple[str, ...]:
        return tuple(param.name for param in cls.params)

    @classmethod
    def defaults(cls) -> dict[str, ParamValue]:
        return {param.name: param.default for param in cls.params}

    @classmethod
    def parsed_constraints(cls, extra: tuple[str, ...] = ()) -> tuple[Constraint, ...]:
        parsed = tuple(Constraint(text) for text in (*cls.constraints, *extra))
        for constraint in parsed:
            unknown = constraint.names - set(cls.param_names())
            if unknown:
                name = sorted(unknown)[0]
                raise ConfigError(
                    f"constraint {constraint.text!r} names {name!r}, which is not a parameter of "
                    f"{cls.name}{_did_you_mean(name, cls.param_names())}; "
                    f"parameters: {', '.join(cls.param_names())}"
                )
        return parsed

    @classmethod
    def resolve_params(cls, given: Mapping[str, object] | None = None) -> dict[str, ParamValue]:
        """Defaults overridden by `given`, each coerced and checked, constraints enforced."""
        given = dict(given or {})
        names = cls.param_names()
        for name in given:
            if name not in names:
                raise ConfigError(
                    f"unknown parameter {name!r} for {cls.name}{_did_you_mean(name, names)}; "
                    f"parameters: {', '.join(names)} (see `ivybt strategies`)"
                )
        values = {
            param.name: param.coerce(given.get(param.name, param.default), cls.name)
            for param in cls.params
        }
        for constraint in cls.parsed_constraints():
            if not constraint.holds(values):
                shown = ", ".join(f"{name}={values[name]}" for name in sorted(constraint.names))
                raise ConfigError(
                    f"constraint {constraint.text!r} of {cls.name} does not hold for {shown}; "
                    "choose parameters that satisfy it"
                )
        return values

    @classmethod
    def warmup_bars(cls, p: Mapping[str, Any]) -> int:
        """Bars before every indicator slot is defined, for parameters `p`."""
        return max((indicator.warmup_bars for indicator in cls.indicators(p)), default=0)


def _did_you_mean(name: str, choices: object) -> str:
    matches = difflib.get_close_matches(name, list(choices), n=1)  # type: ignore[call-overload]
    return f" (did you mean {matches[0]!r}?)" if matches else ""
