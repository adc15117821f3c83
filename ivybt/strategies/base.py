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

import contextlib
import difflib
import math
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from ivybt.errors import ConfigError, IvyBTError, StrategyError
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


TA_KIND = "ta"
"""The kind of a pandas-ta indicator (`Indicator.ta`): any function of pandas-ta's catalogue."""


@dataclass(frozen=True)
class Indicator:
    """One indicator row a signal kernel reads: `kind` of `source` with integer `args`.

    Two strategies (or two grid combinations) asking for equal Indicators share one computed
    row. Kinds and their args are listed in `INDICATOR_KINDS`; `Indicator.ta(...)` declares a
    pandas-ta indicator instead (kind "ta": `function`, its settings `keys` = `args`, and the
    output `column`). `timeframe` ("1w", "1d", ... `ivybt.bars.timeframes.TIMEFRAMES`)
    computes the indicator on higher-timeframe bars resampled from the run's bars, each value
    visible from the first bar after its HTF bar closed (docs/strategies.md).

    A grid calls a strategy's `indicators` once with whole parameter columns; the args are
    then arrays, one value per combination, and such an Indicator is a declaration only (not
    hashable).
    """

    kind: str
    args: tuple[Any, ...] = ()
    source: str = "close"
    timeframe: str = ""
    function: str = ""
    keys: tuple[str, ...] = ()
    column: str = ""

    @classmethod
    def ta(
        cls, function: str, *, column: str = "", source: str = "close", timeframe: str = "",
        **settings: Any,
    ) -> Indicator:  # fmt: skip
        """pandas-ta's `function` with `settings` (numbers, bools or strings; parameter columns
        in a grid), its output `column` when it gives several ("SUPERTd" or the full
        "SUPERTd_7_3.0"), fed `source` as its close: e.g. `Indicator.ta("supertrend",
        length=p["length"], multiplier=p["mult"], column="SUPERTd")`. Conventions:
        `ivybt.indicators.ta`."""
        return cls(TA_KIND, tuple(settings.values()), source, timeframe, function,
                   tuple(settings), column)  # fmt: skip

    def __post_init__(self) -> None:
        if self.source not in SOURCES:
            raise ConfigError(f"indicator source must be one of {SOURCES}, got {self.source!r}")
        if self.timeframe:
            from ivybt.bars.timeframes import check_timeframe

            check_timeframe(self.timeframe)
        if self.kind == TA_KIND:
            self._check_ta()
            return
        if self.kind not in INDICATOR_KINDS:
            raise ConfigError(
                f"unknown indicator kind {self.kind!r}"
                f"{_did_you_mean(self.kind, INDICATOR_KINDS)}; kinds: "
                f"{', '.join(INDICATOR_KINDS)}, or Indicator.ta(...) for pandas-ta's"
            )
        n_args = INDICATOR_KINDS[self.kind][0]
        if len(self.args) == n_args and all(type(a) is int and a >= 1 for a in self.args):
            return  # the common case, one combination's windows: nothing to convert
        args = tuple(np.asarray(a) if isinstance(a, np.ndarray) else a for a in self.args)
        integral = all(bool(np.all((np.floor(a) == a) & (a >= 1))) for a in args)
        if len(args) != n_args or not integral:
            raise ConfigError(
                f"indicator {self.kind} takes {n_args} integer argument(s) >= 1 "
                f"({INDICATOR_KINDS[self.kind][1]}), got {self.args}"
            )
        # whole parameter columns (a grid declaring all its indicators at once) stay arrays
        converted = (a.astype(np.int64) if isinstance(a, np.ndarray) else int(a) for a in args)
        object.__setattr__(self, "args", tuple(converted))

    def _check_ta(self) -> None:
        from ivybt.indicators.ta import check_ta_call, ta_value

        if len(self.keys) != len(self.args):
            raise ConfigError("Indicator.ta: give the settings as keywords, e.g. length=10")
        check_ta_call(self.function, dict(zip(self.keys, self.args, strict=True)), self.column)
        values = (np.asarray(a) if isinstance(a, np.ndarray) else ta_value(a) for a in self.args)
        object.__setattr__(self, "args", tuple(values))

    @property
    def settings(self) -> dict[str, Any]:
        """A pandas-ta indicator's settings, name -> value ({} for a built-in kind)."""
        return dict(zip(self.keys, self.args, strict=True))

    @property
    def warmup_bars(self) -> int:
        """Bars before the first defined value (TA-Lib's lookback); for pandas-ta, an estimate
        (`ivybt.indicators.ta.ta_warmup`); on a higher timeframe, counted in its bars (the
        base bars it covers are more)."""
        if self.kind == TA_KIND:
            from ivybt.indicators.ta import ta_warmup

            return ta_warmup(self.settings)
        if self.kind == "price":
            return 0
        if self.kind in ("rsi", "atr"):
            return self.args[0]  # type: ignore[no-any-return]
        if self.kind == "macd_hist":
            return max(self.args[0], self.args[1]) - 1 + self.args[2] - 1  # type: ignore[no-any-return]
        return self.args[0] - 1  # type: ignore[no-any-return]


@dataclass(frozen=True)
class Param:
    """A strategy parameter.

    `low`/`high` are the sensible search range (inclusive) that `ivybt strategies` shows and
    studies search when no `-p` range is given, in steps of `step` (None: 1 for an int
    parameter; a float parameter needs one for that default range, see
    `ivybt.studies.space.default_spec`); `minimum`/`maximum` are hard validity bounds
    (inclusive).
    """

    name: str
    kind: type[int] | type[float]
    default: ParamValue
    low: ParamValue
    high: ParamValue
    minimum: ParamValue | None = None
    maximum: ParamValue | None = None
    doc: str = ""
    step: ParamValue | None = None

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

    def __init_subclass__(cls, abstract: bool = False, **kwargs: Any) -> None:
        """Check a new strategy class declares everything, so mistakes fail at import time
        (`TypeError`; `ivybt.strategies.get_strategy` reports it as one line naming the
        module and line), and check what its `indicators` returns each time it runs
        (`StrategyError`, see `_checked_indicators`). `abstract=True` marks a base class of
        a kind of strategy (`ivybt.strategies.cross_sectional`), checked in its subclasses."""
        super().__init_subclass__(**kwargs)
        if abstract:
            return
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
        _check_declarations(cls)
        names = [param.name for param in cls.params]
        if len(set(names)) != len(names):
            raise TypeError(f"strategy {cls.name} declares a parameter twice: {names}")
        raw = cls.__dict__.get("indicators")
        if raw is not None:
            cls.indicators = _checked_indicators(raw)  # type: ignore[assignment]

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


def _check_declarations(cls: type[Strategy]) -> None:
    """The types of a strategy's declarations (`TypeError` naming the class and the fix)."""
    where = f"strategy class {cls.__qualname__}"
    if not isinstance(cls.name, str) or not cls.name.isidentifier():
        raise TypeError(f"{where}: name must be an identifier such as 'my_breakout', got "
                        f"{cls.name!r}")  # fmt: skip
    if not isinstance(cls.summary, str):
        raise TypeError(f"{where}: summary must be a one-line string, got {cls.summary!r}")
    bad = _first_not(cls.params, Param)
    if bad is not None:
        raise TypeError(
            f"{where}: params must be a tuple of ivybt.strategies.Param, got {bad}; e.g. "
            "params = (Param('window', int, 20, 10, 60, minimum=2),)"
        )
    bad = _first_not(cls.constraints, str)
    if bad is not None:
        raise TypeError(f"{where}: constraints must be a tuple of strings such as "
                        f"'fast < slow', got {bad}")  # fmt: skip
    kernel = cls.signal_kernel
    if not callable(kernel) or not hasattr(kernel, "py_func"):
        raise TypeError(
            f"{where}: signal_kernel must be a Numba function (decorate it with "
            f"@njit(cache=True)), got {getattr(kernel, '__name__', kernel)!r} (a "
            f"{type(kernel).__name__}); see docs/strategies.md"
        )
    raw = cls.__dict__.get("indicators", classmethod(lambda owner, p: ()))
    if not isinstance(raw, classmethod | staticmethod):
        raise TypeError(
            f"{where}: indicators must be a @classmethod taking the parameters, "
            "`def indicators(cls, p)`, returning a tuple of Indicator"
        )


def _first_not(values: object, kind: type) -> str | None:
    """None when `values` is a tuple or list of `kind`, else what is wrong, for messages."""
    if not isinstance(values, tuple | list):
        return f"a {type(values).__name__} ({_short(values)})"
    for index, value in enumerate(values):
        if not isinstance(value, kind):
            return f"item {index} {_short(value)} (a {type(value).__name__})"
    return None


def _short(value: object, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else f"{text[: limit - 3]}..."


def _checked_indicators(
    raw: classmethod | staticmethod,  # type: ignore[type-arg]
) -> classmethod:  # type: ignore[type-arg]
    """`indicators` as declared, checked each time it runs.

    What it returns must be a tuple (or list) of `Indicator`, else `StrategyError`. An
    exception it raises becomes `StrategyError` naming the strategy, the parameters and the
    exception (exit status 1 on the command line), except an `IvyBTError` (an `Indicator`
    refusing its arguments: it gets the strategy's name) and, when called with whole
    parameter columns, `TypeError`/`ValueError`: the grid then calls it once per
    combination (`ivybt.studies.grid.space_indicators`).
    """
    function = raw.__func__

    def indicators(owner: type[Strategy], p: Mapping[str, Any]) -> tuple[Indicator, ...]:
        columns = any(isinstance(value, np.ndarray) for value in dict(p).values())
        try:
            declared = function(owner, p) if isinstance(raw, classmethod) else function(p)
        except IvyBTError as err:
            if isinstance(err, ConfigError) and not str(err).startswith("strategy "):
                raise ConfigError(f"strategy {owner.name}: {err}") from err
            raise
        except Exception as err:
            if columns and isinstance(err, TypeError | ValueError):
                raise
            shown = "whole parameter columns" if columns else _params_text(p)
            raise StrategyError(
                f"strategy {owner.name} failed in indicators({shown}): "
                f"{type(err).__name__}: {err}; fix {owner.__module__}.{owner.__qualname__}"
                ".indicators (rerun with --debug for the traceback)"
            ) from err
        bad = _first_not(declared, Indicator)
        if bad is not None:
            raise StrategyError(
                f"strategy {owner.name}: indicators() must return a tuple of "
                f"ivybt.strategies.Indicator, one per signal-kernel slot, but returned {bad}; "
                "e.g. return (Indicator('sma', (p['window'],)),), see docs/strategies.md"
            )
        return tuple(declared)

    indicators.__doc__ = function.__doc__
    indicators.__name__ = "indicators"
    indicators.__qualname__ = function.__qualname__
    indicators.__wrapped__ = function  # type: ignore[attr-defined]
    return classmethod(indicators)


def is_trusted(strategy: type[Strategy]) -> bool:
    """True for a built-in signal kernel (`ivybt.kernels.grid.SIGNAL_CODES`), which runs
    unchecked (`ivybt.engine.user_kernels`)."""
    from ivybt.kernels.grid import SIGNAL_CODES

    return strategy.signal_kernel in SIGNAL_CODES


@contextlib.contextmanager
def signal_kernel_errors(strategy: type[Strategy]) -> Iterator[None]:
    """Run a plug-in's signal kernel (or a grid kernel compiled around it) in this block: an
    exception it raises, or Numba's refusal to compile it, becomes one `StrategyError` line
    naming the strategy, the kernel and the exception (exit status 1 on the command line).

    Built-in signal kernels (`is_trusted`, the rule that also spares them the checks of
    `ivybt.engine.user_kernels`) are IvyBT's own code: their errors stay internal errors, as
    do an `IvyBTError` and a `MemoryError` (the buffers, not the kernel).
    """
    try:
        yield
    except (IvyBTError, MemoryError):
        raise
    except Exception as err:
        if is_trusted(strategy):
            raise
        raise StrategyError(_kernel_failure(strategy, err)) from err


def _kernel_failure(strategy: type[Strategy], err: Exception) -> str:
    kernel = getattr(strategy.signal_kernel, "__name__", "signal_kernel")
    where = f"strategy {strategy.name}: its signal kernel {kernel}"
    fix = f"fix {strategy.signal_kernel.__module__}.{kernel}"
    if type(err).__module__.startswith("numba"):  # a TypingError and its kin: compiling
        return (
            f"{where} does not compile with Numba ({_numba_reason(str(err))}); {fix}: it may "
            "use only NumPy arrays, numbers and what Numba's nopython mode supports (rerun "
            "with --debug for Numba's whole message)"
        )
    return (
        f"{where} raised {type(err).__name__}: {' '.join(str(err).split())}; {fix} (rerun "
        "with --debug for the traceback)"
    )


def _numba_reason(text: str) -> str:
    """'x.py, line 12: No implementation of function ... add(Literal[str](x), ...)': the
    first reason Numba gives and the user's line, from its many-line message."""
    lines = [line.strip() for line in text.splitlines()]
    reasons = [line for line in lines if line and not line.startswith(("Failed in", "During"))]
    reason = reasons[0] if reasons else "no reason given"
    if reason.endswith(":") and len(reasons) > 1:
        reason = f"{reason} {reasons[1].removeprefix('>>> ')}"
    places = [match for match in re.findall(r'File "([^"]+)", line (\d+)', text)
              if "ivybt" not in Path(match[0]).parts]  # fmt: skip
    return f"{places[-1][0]}, line {places[-1][1]}: {reason}" if places else reason


def _params_text(p: Mapping[str, Any]) -> str:
    return ", ".join(f"{name}={value}" for name, value in dict(p).items())


def _did_you_mean(name: str, choices: object) -> str:
    matches = difflib.get_close_matches(name, list(choices), n=1)  # type: ignore[call-overload]
    return f" (did you mean {matches[0]!r}?)" if matches else ""
