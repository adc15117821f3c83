"""Look-ahead check: a strategy's signals and positions on truncated histories vs the full run.

A strategy without look-ahead decides bar t with bars <= t only, so cutting the history after
bar t changes nothing up to t. `run_lookahead_check` runs the strategy once on the full
history, then again on the history truncated after each of many cut bars, and compares every
bar up to the cut (`ivybt.runs.lookahead.check_lookahead` takes API keywords):

- each indicator row the strategy reads (bit-identical, NaN equal to NaN), on the signal bars;
- the signal: the signal kernel's side on the signal bars, with both sides allowed (so a leak
  in the short side is seen under ``direction="long"`` too);
- the target on the real bars (after the direction and, for Renko, the bricks' expansion);
- the units held and the equity at each bar's close (`ivybt.engine.simulation.simulate_strategy`).

Cut bars run from the first bar where every indicator is defined (for Renko, the bar that
completes the brick where they are; for a non-dynamic ATR box, also not before bar `atr`,
whose ATR sets the box from bar 0: that documented warm-up look-ahead is not reported) to the
second-to-last bar: half of them evenly spaced, the rest drawn at random with `seed`, all
distinct, checked in increasing order. With fewer candidate bars than `cuts`, every bar is
a cut. The report names the first difference: at the earliest failing cut, the earliest bar,
and there the first series in the order above.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ivybt._typing import Float64Array1D
from ivybt.bars.timeline import SignalBars, signal_bars
from ivybt.config import RunConfig
from ivybt.data.panel import Panel
from ivybt.engine.inputs import prepare_inputs
from ivybt.engine.portfolio import UniverseBars, cross_section_scores, simulate_portfolio
from ivybt.engine.simulation import check_enough_bars, simulate_strategy, strategy_targets
from ivybt.engine.tables import indicator_table
from ivybt.errors import ConfigError
from ivybt.strategies import get_strategy, is_cross_sectional
from ivybt.strategies.base import TA_KIND, Indicator, ParamValue, Strategy

_LABELS = {"signal": "the signal", "target": "the target side", "units": "the units held",
           "equity": "the equity", "bricks": "the number of bricks completed"}  # fmt: skip


@dataclass(frozen=True)
class Difference:
    """The first value that differs between the full and a truncated history.

    cut : last bar of the truncated history (bars [0, cut] kept). bar : the first real bar
    that differs (for a brick, the bar that completed it), <= cut. brick : the brick's
    position with Renko signal bars, else None. kind : "indicator", "signal", "position" or
    "bricks". name : "sma(10) of close" (an indicator), "signal", "target", "units",
    "equity" or "bricks".
    """

    cut: int
    cut_time: str
    bar: int
    time: str
    brick: int | None
    kind: str
    name: str
    full_value: float | int | None  # None for NaN
    truncated_value: float | int | None


@dataclass(frozen=True)
class LookaheadReport:
    """What the check found; `ok` when nothing up to any cut changed."""

    strategy: str
    params: dict[str, ParamValue]
    symbol: str
    interval: str
    bars: str
    n_bars: int
    first_cut_bar: int  # the earliest bar a cut may be (warm-up done)
    cuts: tuple[int, ...]  # every cut bar checked, increasing
    seed: int
    failed_cuts: tuple[int, ...] = ()
    first_difference: Difference | None = None
    compared: tuple[str, ...] = field(default_factory=tuple)

    @property
    def ok(self) -> bool:
        return self.first_difference is None

    @property
    def message(self) -> str:
        """One plain line: the verdict, and the first difference if any."""
        if self.first_difference is None:
            return (
                f"no look-ahead: {len(self.cuts)} cuts, positions and signals identical up "
                "to each cut"
            )
        diff = self.first_difference
        what = (f"indicator {diff.name}" if diff.kind == "indicator"
                else _LABELS.get(diff.name, diff.name))  # fmt: skip
        where = f"bar {diff.bar} ({diff.time})"
        if diff.brick is not None:
            where = f"brick {diff.brick}, completed at {where},"
        return (
            f"look-ahead: {what} at {where} is {_shown(diff.full_value)} on "
            f"the full history but {_shown(diff.truncated_value)} on the history cut after "
            f"bar {diff.cut} ({diff.cut_time}); {len(self.failed_cuts)} of {len(self.cuts)} "
            "cuts differ"
        )

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.update(ok=self.ok, message=self.message, n_cuts=len(self.cuts))
        return data

    def to_json(self) -> str:
        """The report as a JSON object (NaN values as null)."""
        return json.dumps(self.to_dict(), indent=2)


def run_lookahead_check(
    config: RunConfig,
    *,
    data: pd.DataFrame | None = None,
    cache_dir: str | Path | None = None,
    cuts: int = 50,
    seed: int | None = 0,
    strategy: str | type[Strategy] | None = None,
) -> LookaheadReport:
    """The check `config` describes (its split is ignored: the whole history is used).

    `strategy` may give the class itself when `config.strategy.name` cannot import it.
    """
    if isinstance(cuts, bool) or not isinstance(cuts, int) or cuts < 1:
        raise ConfigError(f"cuts >= 1 must hold, but got cuts={cuts!r}; e.g. cuts=50")
    cls = get_strategy(strategy if strategy is not None else config.strategy.name)
    if config.portfolio.select_universe is not None:
        raise ConfigError(
            "--select-universe chooses symbols with the whole history's results, so its "
            "positions see the future by construction (walkforward chooses per fold instead); "
            "drop it: check-lookahead checks the strategy's own decisions"
        )
    params = cls.resolve_params(config.strategy.params)
    full_split = config.split.model_copy(update={"train_split": None, "run_mode": "full"})
    config = config.model_copy(update={"split": full_split})
    inputs = prepare_inputs(config, data=data, cache_dir=cache_dir)
    if isinstance(inputs.columns, UniverseBars):
        return _universe_check(config, cls, params, inputs, cuts, seed)
    frame, n_bars = inputs.frame, inputs.history_bars
    signals = signal_bars(config, frame, inputs.columns)
    check_enough_bars(cls, params, len(signals.columns["close"]), inputs.describe())
    run = _Run(config, cls, params, inputs.periods_per_year)
    full = run.series(inputs.columns, signals)
    first = _first_cut_bar(config, cls.warmup_bars(params), signals.signal_of)
    if first > n_bars - 2:
        raise ConfigError(
            f"the look-ahead check needs a cut bar after the warm-up (bar {first}) and before "
            f"the last bar, but {inputs.describe()} has {n_bars} bars; load more history"
        )
    if seed is None:
        seed = int(np.random.SeedSequence().entropy % 2**32)  # type: ignore[operator]
    chosen = cut_bars(first, n_bars - 2, cuts, seed)
    failed: list[int] = []
    first_difference = None
    for cut in chosen:
        kept = frame.iloc[: cut + 1]
        columns = {name: values[: cut + 1].copy() for name, values in inputs.columns.items()}
        truncated = run.series(columns, signal_bars(config, kept, columns))
        found = _compare(full, truncated, cut, frame.index)
        if found is not None:
            failed.append(cut)
            first_difference = first_difference or found
    return LookaheadReport(
        strategy=config.strategy.name, params=dict(params), symbol=str(config.data.symbol),
        interval=config.data.interval, bars=config.data.bars, n_bars=n_bars,
        first_cut_bar=first, cuts=tuple(int(cut) for cut in chosen), seed=seed,
        failed_cuts=tuple(failed), first_difference=first_difference,
        compared=tuple(full.series),
    )  # fmt: skip


def _universe_check(
    config: RunConfig, cls: type[Strategy], params: dict[str, ParamValue], inputs: Any,
    cuts: int, seed: int | None,
) -> LookaheadReport:  # fmt: skip
    """The check on a universe: at each cut bar t, every symbol's bars after t are changed
    (their prices multiplied by a random walk: a different future, same timestamps and
    listings), and each symbol's indicator rows (or scores), side and held weight and the
    account's equity up to t must stay the same bits (`_compare`)."""
    panel = inputs.panel
    n_bars = panel.n_bars
    first = cls.warmup_bars(params)
    if first > n_bars - 2:
        raise ConfigError(
            f"the look-ahead check needs a cut bar after the warm-up (bar {first}) and before "
            f"the last bar, but {inputs.describe()} has {n_bars} bars; load more history"
        )
    if seed is None:
        seed = int(np.random.SeedSequence().entropy % 2**32)  # type: ignore[operator]
    chosen = cut_bars(first, n_bars - 2, cuts, seed)
    rng = np.random.default_rng(seed)
    full = _universe_series(config, cls, params, panel, inputs.periods_per_year)
    failed: list[int] = []
    first_difference = None
    for cut in chosen:
        changed = _changed_after(panel, cut, rng)
        other = _universe_series(config, cls, params, changed, inputs.periods_per_year)
        found = _compare(full, other, cut, panel.index)
        if found is not None:
            failed.append(cut)
            first_difference = first_difference or found
    return LookaheadReport(
        strategy=config.strategy.name, params=dict(params), symbol=config.data.label,
        interval=config.data.interval, bars=config.data.bars, n_bars=n_bars,
        first_cut_bar=first, cuts=tuple(int(cut) for cut in chosen), seed=seed,
        failed_cuts=tuple(failed), first_difference=first_difference,
        compared=tuple(full.series),
    )  # fmt: skip


def _changed_after(panel: Panel, cut: int, rng: np.random.Generator) -> Panel:
    """`panel` with every symbol's open, high, low and close after bar `cut` multiplied by
    its own random walk (one factor per bar and symbol, so each bar stays a valid bar)."""
    steps = rng.normal(0.0, 0.03, size=(panel.n_bars - cut - 1, panel.n_symbols))
    factor = np.exp(np.cumsum(steps, axis=0)) * 1.5
    changed = {}
    for name in ("open", "high", "low", "close"):
        values = getattr(panel, name).copy()
        values[cut + 1 :] *= factor
        changed[name] = values
    return replace(panel, **changed)


def _universe_series(
    config: RunConfig, cls: type[Strategy], params: dict[str, ParamValue], panel: Panel,
    periods_per_year: float,
) -> _Series:  # fmt: skip
    """Each symbol's side and held weight and the account's equity, per union bar; first
    each symbol's score for a cross-sectional strategy, else each symbol's indicator rows."""
    run = simulate_portfolio(panel, cls, params, config.execution, config.portfolio,
                             periods_per_year=periods_per_year)  # fmt: skip
    weights = run.units * np.nan_to_num(panel.mark) / run.equity[:, None]
    out: dict[str, tuple[str, np.ndarray]] = {}
    if is_cross_sectional(cls):  # the scores the ranks come from, first
        scores = cross_section_scores(panel, cls, params, config.portfolio.rebalance)
        for s, symbol in enumerate(panel.symbols):
            out[f"score of {symbol}"] = ("signal", np.ascontiguousarray(scores[:, s]))
    else:  # each symbol's indicator rows, on its own bars, placed on the union bars
        indicators = tuple(dict.fromkeys(cls.indicators(params)))
        for s, symbol in enumerate(panel.symbols):
            own = panel.bars_of(s)
            table, rows = indicator_table(panel.columns(s), indicators)
            for indicator in indicators:
                values = np.full(panel.n_bars, np.nan)
                values[own] = table[rows[indicator]]
                out[f"{indicator_name(indicator)} of {symbol}"] = ("indicator", values)
    for s, symbol in enumerate(panel.symbols):
        out[f"side of {symbol}"] = ("position", np.ascontiguousarray(run.target[:, s]))
        out[f"weight of {symbol}"] = ("position", np.ascontiguousarray(weights[:, s]))
    out["equity"] = ("position", run.equity)
    return _Series(out, frozenset(), None)


def cut_bars(first: int, last: int, cuts: int, seed: int) -> list[int]:
    """Up to `cuts` distinct bars in [first, last], increasing: ceil(cuts / 2) evenly spaced
    (both ends included), the rest drawn uniformly at random with `seed`; every bar when
    there are no more than `cuts` of them."""
    candidates = np.arange(first, last + 1, dtype=np.int64)
    if len(candidates) <= cuts:
        return [int(cut) for cut in candidates]
    even = np.unique(np.rint(np.linspace(first, last, (cuts + 1) // 2)).astype(np.int64))
    rest = np.setdiff1d(candidates, even)
    drawn = np.random.default_rng(seed).choice(rest, size=cuts - len(even), replace=False)
    return [int(cut) for cut in np.sort(np.concatenate([even, drawn]))]


def _first_cut_bar(config: RunConfig, warmup: int, signal_of: np.ndarray | None) -> int:
    """The first bar whose signal bar has every indicator defined."""
    if signal_of is None:
        return warmup
    first = int(np.searchsorted(signal_of, warmup, side="left"))
    renko = config.data.renko
    if renko is not None and renko.atr is not None and not renko.atr_dynamic:
        first = max(first, renko.atr)  # the box is the ATR at bar `atr`, from bars 0..atr
    return first


@dataclass(frozen=True)
class _Series:
    """What one history gives: named series on the signal bars and on the real bars."""

    series: dict[str, tuple[str, np.ndarray]]  # name -> (kind, values)
    on_bricks: frozenset[str]
    signal_of: np.ndarray | None


@dataclass(frozen=True)
class _Run:
    config: RunConfig
    strategy: type[Strategy]
    params: dict[str, ParamValue]
    periods_per_year: float

    def series(self, columns: dict[str, Float64Array1D], signals: SignalBars) -> _Series:
        indicators = tuple(dict.fromkeys(self.strategy.indicators(self.params)))
        table, rows = indicator_table(signals.columns, indicators)
        out: dict[str, tuple[str, np.ndarray]] = {
            indicator_name(indicator): ("indicator", table[rows[indicator]])
            for indicator in indicators
        }
        signal = strategy_targets(
            signals.columns, self.strategy, self.params, "both", signal_of=signals.signal_of
        )  # a user's kernel checked (ivybt.engine.user_kernels), on every truncated history too
        out["signal"] = ("signal", signal)
        simulation = simulate_strategy(
            columns, self.strategy, self.params, self.config.execution,
            periods_per_year=self.periods_per_year, signal_columns=signals.columns,
            signal_of=signals.signal_of,
        )  # fmt: skip
        out["target"] = ("position", simulation.target)
        out["units"] = ("position", simulation.units)
        out["equity"] = ("position", simulation.equity)
        renko = signals.signal_of is not None
        on_bricks = frozenset(out) - {"target", "units", "equity"} if renko else frozenset()
        return _Series(out, on_bricks, signals.signal_of)


def indicator_name(indicator: Indicator) -> str:
    """'sma(10) of close', 'atr(14)', 'close' (a price column), 'supertrend(length=10,
    multiplier=3.0) SUPERTd' (pandas-ta), with ' on 1w' for a higher timeframe."""
    on = f" on {indicator.timeframe}" if indicator.timeframe else ""
    if indicator.kind == TA_KIND:
        settings = ", ".join(f"{key}={value}" for key, value in indicator.settings.items())
        column = f" {indicator.column}" if indicator.column else ""
        source = f" of {indicator.source}" if indicator.source != "close" else ""
        return f"{indicator.function}({settings}){column}{source}{on}"
    if indicator.kind == "price":
        return f"{indicator.source}{on}"
    args = ", ".join(str(arg) for arg in indicator.args)
    if indicator.kind == "atr":
        return f"atr({args}){on}"
    return f"{indicator.kind}({args}) of {indicator.source}{on}"


def _compare(full: _Series, truncated: _Series, cut: int, index: pd.Index) -> Difference | None:
    """The earliest difference at bars <= `cut` (series order breaks ties), or None."""
    n_bricks = None if full.signal_of is None else int(full.signal_of[cut]) + 1
    found: list[tuple[int, int, Difference]] = []

    def add(bar: int, order: int, brick: int | None, kind: str, name: str, a: Any, b: Any) -> None:
        found.append((bar, order, Difference(
            cut=cut, cut_time=_time(index[cut]), bar=bar, time=_time(index[bar]), brick=brick,
            kind=kind, name=name, full_value=_value(a), truncated_value=_value(b),
        )))  # fmt: skip

    if n_bricks is not None and truncated.signal_of is not None:
        got = int(truncated.signal_of[cut]) + 1
        if got != n_bricks:
            add(cut, -1, None, "bricks", "bricks", n_bricks, got)
    for order, (name, (kind, values)) in enumerate(full.series.items()):
        other = truncated.series[name][1]
        if name in full.on_bricks:
            length = min(n_bricks or 0, len(other))
        else:
            length = cut + 1
        a, b = values[:length], other[:length]
        differs = np.flatnonzero(~_identical(a, b))
        if differs.size == 0:
            continue
        at = int(differs[0])
        if name in full.on_bricks and full.signal_of is not None:  # the bar completing it
            bar = int(np.searchsorted(full.signal_of, at, side="left"))
            add(bar, order, at, kind, name, a[at], b[at])
        else:
            add(at, order, None, kind, name, a[at], b[at])
    if not found:
        return None
    return min(found, key=lambda item: (item[0], item[1]))[2]


def _identical(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Element-wise: the same bits, or both NaN (floats); equal (integers)."""
    if a.dtype.kind != "f":
        return a == b
    same_bits = a.view(np.int64) == b.view(np.int64)
    return same_bits | (np.isnan(a) & np.isnan(b))


def _value(value: Any) -> float | int | None:
    if isinstance(value, np.integer):
        return int(value)
    number = float(value)
    return None if math.isnan(number) else number


def _shown(value: float | int | None) -> str:
    return "NaN" if value is None else repr(value)


def _time(stamp: Any) -> str:
    stamp = pd.Timestamp(stamp)
    return stamp.strftime("%Y-%m-%d") if stamp == stamp.normalize() else stamp.isoformat()
