"""One strategy on one bar series, as arrays: indicators -> targets -> fills -> metrics.

This is the thin layer between a strategy's declaration and the kernels; `ivybt.backtest` adds
data loading, labels and files on top, and the grid engine (issue #5) reuses the same pieces
with a table shared by all combinations.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from ivybt._typing import Float64Array1D, Float64Array2D, Int8Array1D, Int64Array1D, RecordArray1D
from ivybt.config import DIRECTION_CODES, ExecutionConfig
from ivybt.engine.tables import indicator_table
from ivybt.engine.user_kernels import run_user_kernel
from ivybt.errors import ConfigError
from ivybt.kernels.evaluate import target_metrics_nb
from ivybt.kernels.grid import expand_to_bars_nb
from ivybt.kernels.holding import close_tables_nb
from ivybt.kernels.metrics import METRIC_NAMES, N_METRICS, metrics_nb, return_metrics_nb
from ivybt.kernels.simulate import (
    TRADE_DTYPE,
    Execution,
    count_entries_nb,
    restrict_direction_nb,
    simulate_nb,
    stops_of_nb,
)
from ivybt.kernels.stops import simulate_stops_nb
from ivybt.strategies.base import ParamValue, Strategy, is_trusted, signal_kernel_errors


@dataclass(frozen=True)
class Simulation:
    """Arrays of one simulated run over the bars `window` of the input columns."""

    window: slice
    target: Int8Array1D  # over the window: the side wanted after each bar's close
    equity: Float64Array1D
    units: Float64Array1D
    trades: RecordArray1D  # TRADE_DTYPE, only the recorded trades
    metrics: dict[str, float]


def strategy_targets(
    columns: Mapping[str, Float64Array1D],
    strategy: type[Strategy],
    params: Mapping[str, ParamValue],
    direction: str,
    *,
    signal_of: Int64Array1D | None = None,
) -> Int8Array1D:
    """Targets for every bar of `columns` (int8, -1/0/+1), with `direction` applied.

    `columns` are the signal bars: the real bars, or Renko bricks (`expand_targets` then puts
    the bricks' targets on the real bars; `signal_of` names a brick's bar in messages). A
    user's signal kernel runs bounds-checked and its targets are checked
    (`ivybt.engine.user_kernels`): StrategyError when it breaks the target rule."""
    indicators = strategy.indicators(params)
    table, rows = indicator_table(columns, indicators)
    slots = np.array([rows[indicator] for indicator in indicators], dtype=np.int64)
    values = np.array([float(params[name]) for name in strategy.param_names()], dtype=np.float64)
    with signal_kernel_errors(strategy):  # a plug-in's exception: one line
        if is_trusted(strategy):
            target = np.zeros(table.shape[1], dtype=np.int8)
            strategy.signal_kernel(table, slots, values, target)
        else:
            target = run_user_kernel(strategy, table, slots, values, signal_of=signal_of)
    restrict_direction_nb(target, DIRECTION_CODES[direction], target)
    return target


def expand_targets(signal_target: Int8Array1D, signal_of: Int64Array1D | None) -> Int8Array1D:
    """Targets per real bar from targets per signal bar (`ivybt.bars.timeline`): the last
    signal bar completed at or before each bar decides; flat before the first."""
    if signal_of is None:
        return signal_target
    target = np.empty(len(signal_of), dtype=np.int8)
    expand_to_bars_nb(signal_target, signal_of, target)
    return target


def execution_tuple(execution: ExecutionConfig) -> Execution:
    """The kernel's view of the execution settings."""
    return Execution(
        fee_rate=float(execution.commission),
        slippage_rate=float(execution.slippage),
        size=float(execution.size),
        fill_on_close=execution.fill == "close",
        initial_cash=float(execution.initial_cash),
        stop_loss=float(execution.sl or 0.0),
        take_profit=float(execution.tp or 0.0),
        trailing=float(execution.trail or 0.0),
        stop_atr=float(execution.sl_atr or 0.0),
        max_bars=int(execution.max_bars or 0),
    )


def stop_bars(
    columns: Mapping[str, Float64Array1D], execution: ExecutionConfig, window: slice
) -> Float64Array2D:
    """float64 (5, n_window): open, close, high, low and the ATR(`atr_length`, Wilder) known at
    each close (warmed up on the bars before the window; NaN when `sl_atr` is off)."""
    rows = [np.asarray(columns[name], dtype=np.float64) for name in ("open", "close", "high",
                                                                     "low")]  # fmt: skip
    if execution.sl_atr is not None:
        from ivybt.indicators.volatility import atr

        rows.append(np.asarray(atr(rows[2], rows[3], rows[1], window=execution.atr_length),
                               dtype=np.float64))  # fmt: skip
    else:
        rows.append(np.full(len(rows[3]), np.nan))
    return np.ascontiguousarray(np.stack([row[window] for row in rows]))


def check_enough_bars(
    strategy: type[Strategy], params: Mapping[str, ParamValue], n_bars: int, what: str
) -> None:
    """Raise when `n_bars` cannot give one defined signal and a bar to act on it."""
    warmup = strategy.warmup_bars(params)
    if n_bars < warmup + 2:
        shown = ", ".join(f"{name}={value}" for name, value in params.items())
        raise ConfigError(
            f"{strategy.name} with {shown} needs at least {warmup + 2} bars ({warmup} to warm "
            f"up its indicators), but {what} has {n_bars}; start earlier (--start) or use "
            "smaller windows"
        )


def simulate_strategy(
    columns: Mapping[str, Float64Array1D],
    strategy: type[Strategy],
    params: Mapping[str, ParamValue],
    execution: ExecutionConfig,
    *,
    window: slice | None = None,
    periods_per_year: float,
    signal_columns: Mapping[str, Float64Array1D] | None = None,
    signal_of: Int64Array1D | None = None,
) -> Simulation:
    """Run `strategy` on `columns`, trading and measuring only the bars in `window`.

    Indicators and signals use every bar of `columns` up to each decision (bars before the
    window only warm them up); decisions start on the window's first bar, so with next-open
    fills the first possible fill is the window's second bar. With `signal_columns` (Renko
    bricks) and `signal_of` the signals run on those bars and each decision holds from the
    close of the real bar that completed its brick (`expand_targets`).
    """
    n_bars = len(columns["close"])
    window = window or slice(0, n_bars)
    signals = columns if signal_columns is None else signal_columns
    per_signal = strategy_targets(
        signals, strategy, params, execution.direction, signal_of=signal_of
    )
    every_bar = expand_targets(per_signal, signal_of)
    target = every_bar[window].copy()
    open_ = np.ascontiguousarray(columns["open"][window])
    close = np.ascontiguousarray(columns["close"][window])
    n_window = close.shape[0]
    equity = np.empty(n_window, dtype=np.float64)
    units = np.empty(n_window, dtype=np.float64)
    trades = np.empty(count_entries_nb(target), dtype=TRADE_DTYPE)
    kernel_execution = execution_tuple(execution)
    if execution.has_stops:
        bars = stop_bars(columns, execution, window)
        stops = stops_of_nb(kernel_execution)
        n_trades = simulate_stops_nb(bars, target, kernel_execution, stops, equity, units,
                                     trades)  # fmt: skip
        values = metrics_nb(
            equity, units, trades, n_trades, kernel_execution.initial_cash, periods_per_year
        )
    else:
        n_trades = simulate_nb(open_, close, target, kernel_execution, equity, units, trades)
        values = account_metrics(columns, every_bar, window, kernel_execution, periods_per_year)
    metrics = dict(zip(METRIC_NAMES, (float(value) for value in values), strict=True))
    return Simulation(window, target, equity, units, trades[:n_trades].copy(), metrics)


def account_metrics(
    columns: Mapping[str, Float64Array1D],
    target: Int8Array1D,
    window: slice,
    execution: Execution,
    periods_per_year: float,
) -> Float64Array1D:
    """The metrics of `target` (every bar's side, direction applied) traded on `window`, by the
    grid's kernel (`target_metrics_nb`), so a single backtest and its grid row are equal bit
    for bit. They equal `metrics_nb` of the simulated equity and trades to 1e-12 relative
    (`ivybt.kernels.holding`)."""
    close = columns["close"]
    prices = np.ascontiguousarray(np.vstack((columns["open"], close)), dtype=np.float64)
    out = np.full(N_METRICS, np.nan)
    bounds = np.array(window.indices(close.shape[0])[:2], dtype=np.int64)
    target_metrics_nb(prices, np.ascontiguousarray(target), bounds, execution,
                      close_tables_nb(prices[1]), periods_per_year, out)  # fmt: skip
    return out


BENCHMARK_METRICS = ("total_return", "cagr", "volatility", "sharpe", "sortino", "max_drawdown",
                     "calmar")  # fmt: skip


def buy_and_hold_metrics(
    close: Float64Array1D, initial_cash: float, periods_per_year: float
) -> dict[str, float]:
    """Return metrics of holding the instrument from the first bar's close, without costs.

    The yardstick a strategy must beat: the same definitions (docs/metrics.md) on
    equity_t = initial_cash x close_t / close_0.
    """
    equity = initial_cash * close / close[0]
    out = np.full(N_METRICS, np.nan)
    return_metrics_nb(equity, np.ones_like(equity), initial_cash, periods_per_year, out)
    return {name: float(out[METRIC_NAMES.index(name)]) for name in BENCHMARK_METRICS}
