"""Stops and exits on one account: stop-loss, take-profit, trailing stop, an ATR stop and a
time stop, next to the strategy's own signal (issue #16).

The account is `ivybt.kernels.simulate`'s (targets, fills, costs, sizing, marks); these
kernels add exits inside the bar. Conventions (docs/stops.md):

- Levels, from the entry fill F (slippage included) of a long (a short mirrors them):
  stop-loss F x (1 - stop_loss), or F - stop_atr x ATR at entry (the ATR known at the
  decision bar: the bar before a next-open fill, the fill bar itself with close fills; an
  undefined ATR gives no ATR stop for that trade); with both, the nearer (the higher for a
  long). Take-profit F x (1 + take_profit). Trailing: the reference starts at the entry bar's
  close and rises with each later bar's high after that bar has been checked (a bar never
  moves the level it triggers on); the level is reference x (1 - trailing).
- When they act: the stop-loss and take-profit from the fill on (with next-open fills already
  inside the entry bar, whose low and high come after its open; with close fills from the next
  bar), the trailing stop from the bar after the entry bar.
- A bar triggers a long's protective stop when its low reaches the stop-loss or trailing
  level, its take-profit when its high reaches that level. The fill is the level, or the open
  when the bar opens beyond it (a gap; not in the entry bar, whose open is the entry), with
  slippage against the trader. Several in one bar: the protective stop fills first (the
  conservative reading: the bar's path is unknown), at the higher of the stop-loss and
  trailing levels (the one a falling price meets first; equal: stop-loss).
- Time stop: a position held `max_bars` bars (counted from its entry bar) is closed by a
  decision at that bar's close, filled like a signal (next open, or that close).
- After any of these exits the strategy re-enters only on a fresh signal: the stopped side is
  blocked until the target leaves it (a flat bar or the other side).
- Exit reasons: `EXIT_SIGNAL`, `EXIT_STOP_LOSS`, `EXIT_TAKE_PROFIT`, `EXIT_TRAILING`,
  `EXIT_TIME` (names in `EXIT_REASONS`).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from ivybt._typing import Float64Array1D, Float64Array2D, Int8Array1D, RecordArray1D
from ivybt.kernels.evaluate import AccountState, account_start_nb, write_account_metrics_nb
from ivybt.kernels.metrics import return_step_nb, trade_step_nb
from ivybt.kernels.simulate import (
    NO_STOPS,
    TRADE_DTYPE,
    Execution,
    Stops,
    _record_entry,
    _record_exit,
    close_fill_nb,
    open_fill_nb,
    stops_of_nb,
    trade_pnl_nb,
)

EXIT_SIGNAL, EXIT_STOP_LOSS, EXIT_TAKE_PROFIT, EXIT_TRAILING, EXIT_TIME = 0, 1, 2, 3, 4
EXIT_REASONS = ("signal", "stop_loss", "take_profit", "trailing", "time")
"""Trade exit reasons by code (`TRADE_DTYPE["exit_reason"]`)."""

OPEN, CLOSE, HIGH, LOW, ATR = 0, 1, 2, 3, 4
"""Rows of the `bars` array the stop kernels take: float64, (5, n_bars); open and close
first, as in the grid kernels' `prices`."""

# `Stops` and `NO_STOPS` are defined in `ivybt.kernels.simulate`, next to `Execution`, whose
# exit fields they mirror; they are imported here for the users of this module.
__all__ = [
    "EXIT_REASONS", "NO_STOPS", "NoRecords", "Stops", "bar_exit_nb", "entry_levels_nb",
    "no_records_nb", "simulate_stops_nb", "stops_active_nb", "stops_metrics_nb",
    "stops_records_metrics_nb", "stops_returns_nb", "trail_reference_nb",
]  # fmt: skip


@njit(cache=True)
def stops_active_nb(stops: Stops) -> bool:
    """Whether any exit is switched on."""
    return (stops.stop_loss > 0.0 or stops.take_profit > 0.0 or stops.trailing > 0.0
            or stops.stop_atr > 0.0 or stops.max_bars > 0)  # fmt: skip


@njit(cache=True)
def entry_levels_nb(side: int, fill: float, atr: float, stops: Stops) -> tuple[float, float]:
    """(stop-loss level, take-profit level) of a position entered at `fill`; NaN: none."""
    loss = np.nan
    if stops.stop_loss > 0.0:
        loss = fill * (1.0 - side * stops.stop_loss)
    if stops.stop_atr > 0.0 and math.isfinite(atr):
        by_atr = fill - side * stops.stop_atr * atr
        if not math.isfinite(loss) or side * (by_atr - loss) > 0.0:
            loss = by_atr  # the nearer of the two
    profit = fill * (1.0 + side * stops.take_profit) if stops.take_profit > 0.0 else np.nan
    return loss, profit


@njit(cache=True)
def intrabar_exit_nb(
    side: int, bars: Float64Array2D, t: int, gap: bool, loss: float, profit: float,
    reference: float, stops: Stops,
) -> tuple[int, float]:  # fmt: skip
    """(reason, raw exit price) of a stop inside bar t for a position on `side`, or
    (EXIT_SIGNAL, 0.0) when none triggers. `gap`: the position was held before the bar's
    open, which may jump beyond a level; `reference`: the trailing reference (NaN: no
    trailing stop yet). `bar_exit_nb` on the bar's open, high and low."""
    return bar_exit_nb(side, (bars[OPEN, t], bars[HIGH, t], bars[LOW, t]), gap,
                       (loss, profit, reference), stops)  # fmt: skip


@njit(cache=True)
def bar_exit_nb(
    side: int, bar: tuple[float, float, float], gap: bool, levels: tuple[float, float, float],
    stops: Stops,
) -> tuple[int, float]:  # fmt: skip
    """(reason, raw exit price) of a stop inside one bar for a position on `side`, or
    (EXIT_SIGNAL, 0.0) when none triggers: the rules of the module docstring on one bar's
    (open, high, low), finite, and the position's (stop-loss, take-profit, trailing
    reference) `levels` (NaN: none). `gap`: the position was held before the bar's open,
    which may jump beyond a level. The one-account kernels and the portfolio account
    (`ivybt.kernels.portfolio`) both decide with it, so their exits agree bit for bit."""
    open_, high, low = bar
    loss, profit, reference = levels
    trail = np.nan
    if stops.trailing > 0.0 and math.isfinite(reference):
        trail = reference * (1.0 - side * stops.trailing)
    protect = loss  # the protective level a move against the position meets first
    reason = EXIT_STOP_LOSS
    if math.isfinite(trail) and (not math.isfinite(protect) or side * (trail - protect) > 0.0):
        protect = trail
        reason = EXIT_TRAILING
    adverse = low if side > 0 else high
    favourable = high if side > 0 else low
    if math.isfinite(protect) and side * (adverse - protect) <= 0.0:
        if gap and side * (open_ - protect) <= 0.0:
            return reason, open_
        return reason, protect
    if math.isfinite(profit) and side * (favourable - profit) >= 0.0:
        if gap and side * (open_ - profit) >= 0.0:
            return EXIT_TAKE_PROFIT, open_
        return EXIT_TAKE_PROFIT, profit
    return EXIT_SIGNAL, 0.0


@njit(cache=True)
def moved_reference_nb(side: int, reference: float, bars: Float64Array2D, t: int) -> float:
    """The trailing reference after bar t: the best of it and the bar's high (long) or low
    (short)."""
    return trail_reference_nb(side, reference, bars[HIGH, t], bars[LOW, t])


@njit(cache=True)
def trail_reference_nb(side: int, reference: float, high: float, low: float) -> float:
    """The trailing reference after a bar with this `high` and `low`: the best of it and
    the high (long) or the low (short)."""
    return max(reference, high) if side > 0 else min(reference, low)


@njit(cache=True)
def simulate_stops_nb(
    bars: Float64Array2D,
    target: Int8Array1D,
    execution: Execution,
    stops: Stops,
    out_equity: Float64Array1D,
    out_units: Float64Array1D,
    out_trades: RecordArray1D,
) -> int:
    """`ivybt.kernels.simulate.simulate_nb` with the exits of `stops` (module docstring):
    returns the number of trades recorded, each with its `exit_reason`.

    `bars` : float64, (5, n_bars): open, close, high, low and the ATR known at each bar's
    close (NaN where undefined; unused without `stop_atr`). `out_trades` needs room for
    `count_entries_nb(target)` trades: every entry, also one after a stop, follows a change
    of the target. No look-ahead: bar t uses target[t - 1] (target[t] with close fills), bar
    t's prices and the ATR up to the decision bar.
    """
    return _stops_account_nb(bars, target, execution, stops, out_equity, out_units,
                             out_trades)[0]  # fmt: skip


@njit(cache=True)
def stops_metrics_nb(
    bars: Float64Array2D, target: Int8Array1D, execution: Execution, stops: Stops,
    periods_per_year: float, out_metrics: Float64Array1D,
) -> None:  # fmt: skip
    """The metrics of `simulate_stops_nb` followed by `metrics_nb`, in one pass without
    per-bar arrays or trade records: the same arithmetic in the same order, bit for bit."""
    stops_records_metrics_nb(bars, target, execution, stops, periods_per_year, no_records_nb(),
                             out_metrics)  # fmt: skip


NoRecords = tuple[Float64Array1D, RecordArray1D]
"""Empty per-bar and trade outputs (`no_records_nb`): what an account that only measures
records, so the metrics kernels allocate nothing (a GPU thread cannot)."""


@njit(cache=True)
def no_records_nb() -> NoRecords:
    """Empty per-bar and trade outputs for `stops_records_metrics_nb`."""
    return np.empty(0, dtype=np.float64), np.empty(0, dtype=TRADE_DTYPE)


@njit(cache=True)
def stops_records_metrics_nb(
    bars: Float64Array2D, target: Int8Array1D, execution: Execution, stops: Stops,
    periods_per_year: float, no_records: NoRecords, out_metrics: Float64Array1D,
) -> None:  # fmt: skip
    """`stops_metrics_nb` with its empty outputs given (`no_records_nb`), allocating nothing:
    the grid's GPU threads run it (`ivybt.kernels.grid_cuda`)."""
    no_bars, no_trades = no_records
    state = _stops_account_nb(bars, target, execution, stops, no_bars, no_bars, no_trades)[1]
    write_account_metrics_nb(state, bars.shape[1], execution, periods_per_year, out_metrics)


@njit(cache=True)
def stops_returns_nb(
    bars: Float64Array2D, target: Int8Array1D, execution: Execution, out_returns: Float64Array1D
) -> None:  # fmt: skip
    """Per-bar returns of the account of `simulate_stops_nb` with the exits of `execution`
    (`stops_of_nb`), by the rule of `ivybt.kernels.grid_returns.window_returns_nb`:
    equity_t / equity_(t-1) - 1 with equity_(-1) the initial cash, exactly 0.0 on a bar where
    the equity did not change."""
    no_units = np.empty(0, dtype=np.float64)
    no_trades = np.empty(0, dtype=TRADE_DTYPE)
    _stops_account_nb(bars, target, execution, stops_of_nb(execution), out_returns, no_units,
                      no_trades)  # fmt: skip
    previous = execution.initial_cash
    for t in range(out_returns.shape[0]):
        value = out_returns[t]
        out_returns[t] = value / previous - 1.0 if value != previous else 0.0
        previous = value


@njit(cache=True)
def _stops_account_nb(
    bars: Float64Array2D, target: Int8Array1D, execution: Execution, stops: Stops,
    out_equity: Float64Array1D, out_units: Float64Array1D, out_trades: RecordArray1D,
) -> tuple[int, AccountState]:  # fmt: skip
    """The account of `simulate_stops_nb`; records each of the equity, the units and the
    trades whose output is not empty, and always keeps the metrics' accumulators."""
    record = out_trades.shape[0] > 0
    record_equity = out_equity.shape[0] > 0
    record_units = out_units.shape[0] > 0
    n_bars = bars.shape[1]
    _, returns, trades = account_start_nb(execution.initial_cash)
    cash = execution.initial_cash
    units = 0.0
    size = 0.0
    side = np.int64(0)  # not the literal 0, for which Numba compiles each callee again
    entry_price = 0.0
    entry_fee = 0.0
    held = 0
    n_trades = np.int64(0)
    loss = np.nan
    profit = np.nan
    reference = np.nan
    entry_bar = -1
    blocked = 0
    for t in range(n_bars):
        entered = False
        decision = t
        for phase in range(3):  # 0: the open, 1: inside the bar, 2: the close
            if phase == 1:
                if side == 0 or not (entered or entry_bar < t):
                    continue
                reason, price = intrabar_exit_nb(side, bars, t, not entered, loss, profit,
                                                 reference, stops)  # fmt: skip
                if reason == EXIT_SIGNAL:
                    reference = (moved_reference_nb(side, reference, bars, t)
                                 if t > entry_bar else bars[CLOSE, t])  # fmt: skip
                    continue
                wanted = 0
            else:
                if (phase == 0) == execution.fill_on_close or (phase == 0 and t == 0):
                    continue
                decision = t - 1 if phase == 0 else t
                wanted = target[decision]
                if blocked != 0 and wanted != blocked:
                    blocked = 0  # a fresh signal
                if wanted == blocked:
                    wanted = 0
                reason = EXIT_SIGNAL
                if (side != 0 and wanted == side and stops.max_bars > 0
                        and decision - entry_bar >= stops.max_bars):  # fmt: skip
                    wanted = 0
                    reason = EXIT_TIME
                if wanted == side:
                    continue
                price = bars[OPEN, t] if phase == 0 else bars[CLOSE, t]
            if side != 0:
                cash, fill, fee = close_fill_nb(price, side, abs(units), cash, execution)
                _, net, trade_return = trade_pnl_nb(side, size, entry_price, fill, entry_fee,
                                                    fee)  # fmt: skip
                trades = trade_step_nb(trades, net, trade_return)
                if record:
                    _record_exit(out_trades, n_trades - 1, t, fill, fee, np.bool_(False))
                    out_trades[n_trades - 1]["exit_reason"] = reason
                if reason != EXIT_SIGNAL:
                    blocked = side
                units = 0.0
                side = np.int64(0)
            if wanted != 0 and cash > 0.0:
                cash, size, entry_price, entry_fee = open_fill_nb(price, wanted, cash, execution)
                if record:
                    _record_entry(out_trades, n_trades, t, wanted, size, entry_price,
                                  entry_fee)  # fmt: skip
                units = wanted * size
                side = wanted
                n_trades += 1
                loss, profit = entry_levels_nb(side, entry_price, bars[ATR, decision], stops)
                reference = np.nan if phase == 0 else bars[CLOSE, t]
                entry_bar = t
                entered = phase == 0
        value = cash + units * bars[CLOSE, t]
        returns = return_step_nb(returns, value)
        if units != 0.0:
            held += 1
        if record_equity:
            out_equity[t] = value
        if record_units:
            out_units[t] = units
    if side != 0 and record:
        _record_exit(out_trades, n_trades - 1, n_bars - 1, bars[CLOSE, n_bars - 1], 0.0,
                     np.bool_(True))  # fmt: skip
    position = (cash, units, size, side, entry_price, entry_fee, held)
    return n_trades, (position, returns, trades)
